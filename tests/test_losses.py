import logging

import pytest
import torch

from pconv import losses
from pconv.losses import InpaintingLoss, LossWeights, gram, hole_loss, tv_loss, valid_loss


def test_hole_and_valid_losses_by_hand():
    gt = torch.zeros(1, 1, 2, 2)
    out = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    valid = torch.tensor([[[[1.0, 0.0], [1.0, 0.0]]]])  # right column is the hole
    assert hole_loss(out, gt, valid).item() == pytest.approx((2 + 4) / 4)
    assert valid_loss(out, gt, valid).item() == pytest.approx((1 + 3) / 4)


def test_tv_uses_adjacent_pixels_in_the_dilated_hole():
    # 1×1×3×4 image, hole at (0, 0) only; dilated by one pixel P = rows 0-1, cols 0-1
    comp = torch.tensor([[[[1.0, 3.0, 7.0, 20.0], [2.0, 5.0, 11.0, 30.0], [40.0, 50.0, 60.0, 70.0]]]])
    valid = torch.ones(1, 1, 3, 4)
    valid[0, 0, 0, 0] = 0
    # horizontal pairs inside P: (0,0)-(0,1): |3-1| = 2; (1,0)-(1,1): |5-2| = 3
    # vertical pairs inside P: (0,0)-(1,0): |2-1| = 1; (0,1)-(1,1): |5-3| = 2
    assert tv_loss(comp, valid).item() == pytest.approx((2 + 3 + 1 + 2) / 12)


def test_tv_does_not_wrap_around():
    """A popular implementation subtracts the first row from the last: a hole in the last row
    must see nothing of the first."""
    comp = torch.zeros(1, 1, 4, 4)
    comp[0, 0, 0, :] = 100.0  # first row very different
    valid = torch.ones(1, 1, 4, 4)
    valid[0, 0, 3, :] = 0  # hole in the last row; P = rows 2-3
    assert tv_loss(comp, valid).item() == 0.0


def test_gram_by_hand():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])  # N=1, C=2, H=1, W=2
    expected = torch.tensor([[[1 * 1 + 2 * 2, 1 * 3 + 2 * 4], [3 * 1 + 4 * 2, 3 * 3 + 4 * 4]]]) / (2 * 1 * 2)
    assert torch.allclose(gram(f), expected)


def test_total_uses_the_paper_weights_without_vgg(caplog):
    losses.InpaintingLoss._warned = False
    with caplog.at_level(logging.WARNING):
        criterion = InpaintingLoss()
        InpaintingLoss()
    assert sum("perceptual and style loss terms are off" in r.message for r in caplog.records) == 1
    torch.manual_seed(0)
    gt, out = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    valid = (torch.rand(2, 1, 16, 16) > 0.5).float()
    total, terms = criterion(out, gt, valid)
    assert set(terms) == {"valid", "hole", "tv"}
    assert total.item() == pytest.approx((terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"]).item(), rel=1e-6)


def test_extra_terms_are_logged_separately():
    criterion = InpaintingLoss(LossWeights(multiscale=2.0, ssim=3.0))
    gt = torch.rand(1, 3, 32, 32)
    valid = torch.ones(1, 1, 32, 32)
    valid[..., 8:20, 8:20] = 0
    total, terms = criterion(gt.clone(), gt, valid)
    assert set(terms) == {"valid", "hole", "tv", "multiscale", "ssim"}
    assert terms["hole"] == 0 and terms["multiscale"] == 0 and terms["ssim"].abs() < 1e-5
    _, noisy = criterion((gt + 0.2 * torch.randn_like(gt)).clamp(0, 1), gt, valid)
    assert noisy["ssim"] > 0.05 and noisy["multiscale"] > 0


def test_perceptual_and_style_with_a_local_vgg_file(tmp_path):
    from torchvision.models import vgg16

    torch.manual_seed(0)
    features = {f"features.{k}": v for k, v in vgg16(weights=None).features.state_dict().items()}
    path = tmp_path / "vgg16.pth"
    torch.save(features, path)  # torchvision's own format: a pickled state dict
    criterion = InpaintingLoss(vgg_weights=path)
    gt = torch.rand(1, 3, 32, 32)
    valid = torch.ones(1, 1, 32, 32)
    valid[..., 4:12, 4:12] = 0
    out = torch.rand(1, 3, 32, 32)
    total, terms = criterion(out, gt, valid)
    assert {"perceptual", "style_out", "style_comp"} <= set(terms)
    assert terms["perceptual"] > 0 and terms["style_out"] > 0
    expected = (
        terms["valid"] + 6 * terms["hole"] + 0.05 * terms["perceptual"]
        + 120 * (terms["style_out"] + terms["style_comp"]) + 0.1 * terms["tv"]
    )
    assert total.item() == pytest.approx(expected.item(), rel=1e-5)
    # the network is frozen: gradients reach the output, not VGG
    out.requires_grad_(True)
    criterion(out, gt, valid)[0].backward()
    assert out.grad is not None and all(p.grad is None for p in criterion.vgg.parameters())


def test_gradient_term_by_hand():
    # one row, one channel: the hole is pixel 2, so P (dilated) is pixels 1..3 and the pairs (1,2), (2,3) count
    gt = torch.tensor([[[[0.0, 0.1, 0.2, 0.3, 0.4]]]])
    comp = gt.clone()
    comp[..., 2] = 0.5
    valid = torch.ones(1, 1, 1, 5)
    valid[..., 2] = 0
    # gradient differences: pair (1,2): (0.5-0.1)-(0.1) = 0.3; pair (2,3): (0.3-0.5)-(0.1) = -0.3
    assert losses.gradient_loss(comp, gt, valid).item() == pytest.approx((0.3 + 0.3) / 5, rel=1e-5)
    # a perfect fill costs nothing
    assert losses.gradient_loss(gt, gt, valid).item() == 0


def test_gradient_term_is_weighted_in_the_total():
    criterion = InpaintingLoss(LossWeights(gradient=2.0))
    torch.manual_seed(1)
    gt, out = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    valid = torch.ones(1, 1, 16, 16)
    valid[..., 4:9, 3:12] = 0
    total, terms = criterion(out, gt, valid)
    assert terms["gradient"] > 0
    expected = terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"] + 2 * terms["gradient"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)


def test_random_vgg_features_are_fixed_and_seeded():
    a, b = InpaintingLoss(vgg_weights="random"), InpaintingLoss(vgg_weights="random")
    for pa, pb in zip(a.vgg.parameters(), b.vgg.parameters()):
        assert torch.equal(pa, pb)  # the same features in every run, whatever the global RNG did
    rng_before = torch.get_rng_state()
    InpaintingLoss(vgg_weights="random")
    assert torch.equal(rng_before, torch.get_rng_state())  # building it does not shift the training's RNG
    gt = torch.rand(1, 3, 32, 32)
    valid = torch.ones(1, 1, 32, 32)
    valid[..., 4:12, 4:12] = 0
    _, terms = a(torch.rand(1, 3, 32, 32), gt, valid)
    assert terms["perceptual"] > 0 and terms["style_comp"] > 0


def test_colour_term_sees_a_bias_that_pixel_noise_does_not():
    # two fills with the same hole L1: one is noise around the truth, the other a uniform shift of the same size
    gt = torch.full((1, 3, 4, 4), 0.5)
    valid = torch.ones(1, 1, 4, 4)
    valid[..., 1:3, 1:3] = 0
    noisy, shifted = gt.clone(), gt.clone()
    noisy[..., 1:3, 1:3] += torch.tensor([[0.1, -0.1], [-0.1, 0.1]])
    shifted[..., 1:3, 1:3] += 0.1
    assert hole_loss(noisy, gt, valid).item() == pytest.approx(hole_loss(shifted, gt, valid).item())
    assert losses.colour_loss(noisy, gt, valid).item() == pytest.approx(0.0, abs=1e-7)
    assert losses.colour_loss(shifted, gt, valid).item() == pytest.approx(0.1, rel=1e-5)
    # what lies outside the hole does not count, and an image without a hole costs nothing
    assert losses.colour_loss(shifted + (1 - valid) * 0 + valid * 0.3, gt, valid).item() == pytest.approx(0.1, rel=1e-5)
    assert losses.colour_loss(shifted, gt, torch.ones_like(valid)).item() == 0


def test_colour_term_is_weighted_in_the_total():
    criterion = InpaintingLoss(LossWeights(colour=3.0))
    torch.manual_seed(2)
    gt, out = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    valid = torch.ones(2, 1, 16, 16)
    valid[..., 2:10, 5:9] = 0
    total, terms = criterion(out, gt, valid)
    expected = terms["valid"] + 6 * terms["hole"] + 0.1 * terms["tv"] + 3 * terms["colour"]
    assert total.item() == pytest.approx(expected.item(), rel=1e-6)
