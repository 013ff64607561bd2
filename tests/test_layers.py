"""PartialConv2d against a straightforward per-channel reference of the paper's equations."""

import pytest
import torch
import torch.nn.functional as F

from pconv.layers import PartialConv2d


def reference_pconv(x, full_mask, weight, bias, stride, padding):
    """The paper, literally: per-channel mask M (same shape as X), sum(M) by an all-ones kernel."""
    k = weight.shape[-1]
    raw = F.conv2d(x * full_mask, weight, None, stride, padding)
    ones = torch.ones(1, x.shape[1], k, k)
    msum = F.conv2d(full_mask, ones, None, stride, padding)
    valid = msum > 0
    ratio = torch.where(valid, x.shape[1] * k * k / msum.clamp(min=1), torch.zeros_like(msum))
    out = raw * ratio
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    out = torch.where(valid, out, torch.zeros_like(out))
    return out, valid.float()


def random_mask(gen, n, h, w, kind):
    if kind == "all_hole":
        return torch.zeros(n, 1, h, w)
    if kind == "no_hole":
        return torch.ones(n, 1, h, w)
    # blobs big enough that some windows are entirely holes, plus scattered pixels
    m = (torch.rand(n, 1, h, w, generator=gen) > 0.3).float()
    m[..., : h // 2, : w // 2] = 0
    return m


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["random", "all_hole", "no_hole"])
def test_encoder_case_equals_reference(seed, kind):
    gen = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 3, (1,), generator=gen))
    cin, cout = [int(v) for v in torch.randint(1, 9, (2,), generator=gen)]
    k = [3, 5, 7][seed % 3]
    stride = 1 + seed % 2
    h, w = [int(v) for v in torch.randint(5, 20, (2,), generator=gen)]
    layer = PartialConv2d(cin, cout, k, stride=stride, bias=seed % 2 == 0)
    x = torch.randn(n, cin, h, w, generator=gen)
    mask = random_mask(gen, n, h, w, kind)
    out, new_mask = layer(x, mask)
    ref_out, ref_mask = reference_pconv(x, mask.expand(-1, cin, -1, -1), layer.weight, layer.bias, stride, k // 2)
    assert out.shape == ref_out.shape
    assert (out - ref_out).abs().max().item() <= 1e-5
    assert torch.equal(new_mask, ref_mask)
    if kind == "all_hole":
        assert out.abs().max() == 0 and new_mask.max() == 0
    if kind == "no_hole":
        assert new_mask.min() == 1


@pytest.mark.parametrize("seed", range(6))
def test_decoder_concat_case_equals_reference(seed):
    gen = torch.Generator().manual_seed(100 + seed)
    c1, c2, cout = [int(v) for v in torch.randint(1, 7, (3,), generator=gen)]
    h, w = [int(v) for v in torch.randint(4, 16, (2,), generator=gen)]
    layer = PartialConv2d(c1 + c2, cout, 3, bias=seed % 2 == 1, mask_groups=(c1, c2))
    a, b = torch.randn(2, c1, h, w, generator=gen), torch.randn(2, c2, h, w, generator=gen)
    ma = random_mask(gen, 2, h, w, ["random", "all_hole", "no_hole"][seed % 3])
    mb = random_mask(gen, 2, h, w, "random")
    out, new_mask = layer((a, b), (ma, mb))
    full = torch.cat([ma.expand(-1, c1, -1, -1), mb.expand(-1, c2, -1, -1)], 1)
    ref_out, ref_mask = reference_pconv(torch.cat([a, b], 1), full, layer.weight, layer.bias, 1, 1)
    assert (out - ref_out).abs().max().item() <= 1e-5
    assert torch.equal(new_mask, ref_mask)


def test_per_channel_planes_of_one_tensor():
    gen = torch.Generator().manual_seed(7)
    layer = PartialConv2d(3, 4, 3, mask_groups=(1, 1, 1))
    x = torch.randn(1, 3, 9, 9, generator=gen)
    planes = (torch.rand(1, 3, 9, 9, generator=gen) > 0.5).float()
    out, new_mask = layer(x, planes)
    ref_out, ref_mask = reference_pconv(x, planes, layer.weight, layer.bias, 1, 1)
    assert (out - ref_out).abs().max().item() <= 1e-5
    assert torch.equal(new_mask, ref_mask)


def test_mask_update_semantics():
    """The new mask is 1 wherever the window saw at least one valid pixel, and the
    renormalisation makes a constant input give the same output whatever the hole."""
    layer = PartialConv2d(1, 1, 3, bias=False)
    with torch.no_grad():
        layer.weight.fill_(1.0)
    mask = torch.zeros(1, 1, 7, 7)
    mask[0, 0, 3, 3] = 1  # one valid pixel in the middle
    out, new_mask = layer(torch.full((1, 1, 7, 7), 2.0), mask)
    expected = torch.zeros(1, 1, 7, 7)
    expected[0, 0, 2:5, 2:5] = 1  # its 3×3 neighbourhood
    assert torch.equal(new_mask, expected)
    # each window that saw the pixel: sum = 2 · 9 / 1 valid = 18 (renormalised), else 0
    assert torch.allclose(out, 18 * expected)


def test_rejects_bad_groups():
    with pytest.raises(ValueError):
        PartialConv2d(4, 2, 3, mask_groups=(1, 2))
    layer = PartialConv2d(4, 2, 3, mask_groups=(2, 2))
    with pytest.raises(ValueError):
        layer(torch.zeros(1, 4, 5, 5), torch.ones(1, 1, 5, 5))


def test_mask_count_is_exact_under_autocast():
    """sum(M) goes past bfloat16's exact integers; the mask path must stay float32."""
    layer = PartialConv2d(512, 2, 3, bias=False)
    x = torch.randn(1, 512, 6, 6)
    mask = torch.ones(1, 1, 6, 6)
    mask[..., 0, 0] = 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        count, new_mask = layer.update_mask(mask)
        approx, _ = layer(x, mask)
    assert count.dtype == torch.float32
    assert count[0, 0, 1, 1].item() == 512 * 8
    exact, _ = layer(x, mask)
    assert (approx.float() - exact).abs().max().item() < 0.05 * exact.abs().max().item()


def test_gradients_equal_reference():
    gen = torch.Generator().manual_seed(3)
    layer = PartialConv2d(5, 4, 3, bias=True, mask_groups=(2, 3))
    a = torch.randn(1, 2, 8, 8, generator=gen, requires_grad=True)
    b = torch.randn(1, 3, 8, 8, generator=gen, requires_grad=True)
    ma, mb = random_mask(gen, 1, 8, 8, "random"), random_mask(gen, 1, 8, 8, "random")
    out, _ = layer((a, b), (ma, mb))
    (out**2).sum().backward()
    grads = a.grad.clone(), b.grad.clone(), layer.weight.grad.clone(), layer.bias.grad.clone()
    a.grad = b.grad = layer.weight.grad = layer.bias.grad = None
    full = torch.cat([ma.expand(-1, 2, -1, -1), mb.expand(-1, 3, -1, -1)], 1)
    ref, _ = reference_pconv(torch.cat([a, b], 1), full, layer.weight, layer.bias, 1, 1)
    (ref**2).sum().backward()
    for mine, theirs in zip(grads, (a.grad, b.grad, layer.weight.grad, layer.bias.grad)):
        assert (mine - theirs).abs().max().item() <= 1e-4
