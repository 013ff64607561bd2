import pytest
import torch
from torch import nn

from pconv.layers import PartialConv2d
from pconv.model import PConvUNetConfig, pconv_unet


@pytest.mark.parametrize("layers,size", [(7, 256), (8, 512), (7, 384)])
def test_output_shape(layers, size):
    model = pconv_unet(layers, width=0.125).eval()
    image = torch.rand(2, 3, size, size // 2 if size % 512 == 0 else size)
    mask = (torch.rand(2, 1, *image.shape[-2:]) > 0.5).float()
    with torch.no_grad():
        out = model(image, mask)
    assert out.shape == image.shape


def test_paper_architecture():
    model = pconv_unet(8, width=1.0)
    convs = [b.conv for b in model.encoder]
    assert [c.kernel_size[0] for c in convs] == [7, 5, 5, 3, 3, 3, 3, 3]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert all(c.stride == (2, 2) for c in convs)
    # BatchNorm really there: on every encoder layer but the first, every decoder layer but the last
    assert model.encoder[0].bn is None and all(isinstance(b.bn, nn.BatchNorm2d) for b in model.encoder[1:])
    assert all(isinstance(b.bn, nn.BatchNorm2d) for b in model.decoder[:-1]) and model.decoder[-1].bn is None
    assert all(isinstance(b.act, nn.LeakyReLU) and b.act.negative_slope == 0.2 for b in model.decoder[:-1])
    last = model.decoder[-1].conv
    assert last.out_channels == 3 and last.bias is not None and last.kernel_size == (3, 3)
    assert last.mask_groups == (64, 3)  # upsampled features and the input image, each with its mask
    assert [b.conv.out_channels for b in model.decoder] == [512, 512, 512, 512, 256, 128, 64, 3]
    assert all(isinstance(m, PartialConv2d) for m in (b.conv for b in [*model.encoder, *model.decoder]))


def test_width_multiplier():
    light = pconv_unet(7, width=0.5)
    assert [b.conv.out_channels for b in light.encoder] == [32, 64, 128, 256, 256, 256, 256]
    full = sum(p.numel() for p in pconv_unet(7).parameters())
    assert sum(p.numel() for p in light.parameters()) < full / 3


def test_rejects_sizes_off_the_stride():
    with pytest.raises(ValueError, match="multiples of 128"):
        pconv_unet(7, width=0.125)(torch.rand(1, 3, 100, 128), torch.ones(1, 1, 100, 128))


def test_config_round_trip_and_validation():
    config = PConvUNetConfig(layers=8, width=0.5)
    assert PConvUNetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ValueError):
        PConvUNetConfig(layers=9)
    with pytest.raises(ValueError):
        PConvUNetConfig(width=0)


def test_finetune_freezes_encoder_batchnorm_only():
    torch.manual_seed(0)
    model = pconv_unet(7, width=0.125).set_finetune(True)
    model.train()
    enc_bn = model.encoder[1].bn
    dec_bn = model.decoder[0].bn
    before_enc = enc_bn.running_mean.clone(), enc_bn.weight.clone()
    before_dec = dec_bn.running_mean.clone()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    image = torch.rand(2, 3, 128, 128)
    mask = (torch.rand(2, 1, 128, 128) > 0.3).float()
    model(image, mask).abs().mean().backward()
    opt.step()
    assert not enc_bn.training and dec_bn.training
    assert torch.equal(enc_bn.running_mean, before_enc[0]) and torch.equal(enc_bn.weight, before_enc[1])
    assert not torch.equal(dec_bn.running_mean, before_dec)
    # and back
    model.set_finetune(False).train()
    assert enc_bn.training and enc_bn.weight.requires_grad


def test_keep_statistics_fixes_every_running_statistic_but_not_the_affine():
    torch.manual_seed(0)
    model = pconv_unet(7, width=0.125).set_keep_statistics(True).set_finetune(False)
    model.train()
    bns = model.batchnorms()
    before = [(bn.running_mean.clone(), bn.running_var.clone(), bn.weight.clone()) for bn in bns]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    image = torch.rand(2, 3, 128, 128)
    mask = (torch.rand(2, 1, 128, 128) > 0.3).float()
    model(image, mask).abs().mean().backward()
    opt.step()
    assert len(bns) == 12 and not any(bn.training for bn in bns)
    for bn, (mean, var, _) in zip(bns, before):
        assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert any(not torch.equal(bn.weight, weight) for bn, (_, _, weight) in zip(bns, before))
    model.set_keep_statistics(False)
    assert all(bn.training for bn in bns)


def test_fill_works_in_image_units():
    model = pconv_unet(7, width=0.125).eval()
    image = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        direct = model((image - model.mean) / model.std, torch.ones(1, 1, 128, 128)) * model.std + model.mean
        assert torch.allclose(model.fill(image, torch.ones(1, 1, 128, 128)), direct)


def _with_statistics(model):
    """BatchNorm with running statistics far from the identity, as after training."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(2, 3, 128, 128) * 3 + 1, (torch.rand(2, 1, 128, 128) > 0.3).float())
    return model.eval()


def test_folded_batchnorm_gives_the_same_outputs():
    from pconv.model import fold_batchnorm

    torch.manual_seed(0)
    model = _with_statistics(pconv_unet(7, width=0.25))
    folded = fold_batchnorm(model)
    assert all(b.bn is None for b in [*folded.encoder, *folded.decoder])
    assert model.encoder[1].bn is not None  # the original is untouched
    image = torch.randn(2, 3, 256, 384)
    mask = (torch.rand(2, 1, 256, 384) > 0.4).float()
    mask[..., :100, :100] = 0
    with torch.no_grad():
        a, b = model(image, mask), folded(image, mask)
    assert ((a - b).abs().max() / a.abs().max()).item() <= 1e-5


def test_bfloat16_autocast_close_to_float32():
    torch.manual_seed(0)
    model = _with_statistics(pconv_unet(7, width=0.25))
    image = torch.rand(1, 3, 256, 256)
    mask = (torch.rand(1, 1, 256, 256) > 0.3).float()
    with torch.inference_mode():
        exact = model.fill(image, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            approx = model.fill(image, mask).float()
    assert (approx - exact).abs().mean().item() < 0.02 * exact.abs().mean().item() + 1e-3


def test_inference_never_writes_to_the_callers_tensors():
    torch.manual_seed(0)
    model = pconv_unet(7, width=0.125).eval()
    image = torch.randn(1, 3, 128, 128)
    mask = (torch.rand(1, 1, 128, 128) > 0.5).float()
    kept = image.clone(), mask.clone()
    with torch.inference_mode():
        first = model(image, mask)
        second = model(image, mask)
    assert torch.equal(image, kept[0]) and torch.equal(mask, kept[1]) and torch.equal(first, second)
    with torch.no_grad():
        assert torch.allclose(model(image, mask), first)
    out = model(image, mask)  # with gradients: the out-of-place path, same numbers
    assert torch.allclose(out, first, atol=1e-6) and out.requires_grad
