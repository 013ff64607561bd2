"""The paper's loss (section 3.4), each term reported separately.

All images are N×3×H×W in [0, 1] units; ``valid`` is N×1×H×W with 1 = known pixel.
Every L1 norm is divided by the number of elements it runs over (the paper's N_I).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .model import IMAGENET_MEAN, IMAGENET_STD

log = logging.getLogger(__name__)

RANDOM_VGG = "random"

# indices in torchvision's vgg16().features right after pool1, pool2, pool3
VGG_POOL_ENDS = (5, 10, 17)


@dataclass(frozen=True)
class LossWeights:
    """The paper's weights; ``multiscale``, ``ssim``, ``gradient`` and ``colour`` are ours, for training without
    VGG; ``adversarial`` weighs the PatchGAN term (``pconv.adversarial``), which the trainer adds."""

    valid: float = 1.0
    hole: float = 6.0
    perceptual: float = 0.05
    style: float = 120.0
    tv: float = 0.1
    multiscale: float = 0.0
    ssim: float = 0.0
    gradient: float = 0.0
    colour: float = 0.0
    adversarial: float = 0.0


def hole_loss(out: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    # L_hole = ||(1 − M) ⊙ (I_out − I_gt)||₁ / N_Igt
    return ((1 - valid) * (out - gt)).abs().mean()


def valid_loss(out: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    # L_valid = ||M ⊙ (I_out − I_gt)||₁ / N_Igt
    return (valid * (out - gt)).abs().mean()


def dilate_holes(valid: torch.Tensor) -> torch.Tensor:
    """The region P of the paper: the hole dilated by one pixel (1 = in P)."""
    return F.max_pool2d(1 - valid, 3, stride=1, padding=1)


def tv_loss(comp: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    # L_tv = Σ_{(i,j),(i,j+1) ∈ P} |I(i,j+1) − I(i,j)| / N + Σ_{(i,j),(i+1,j) ∈ P} |I(i+1,j) − I(i,j)| / N
    region = dilate_holes(valid)
    across = region[..., :, 1:] * region[..., :, :-1]
    down = region[..., 1:, :] * region[..., :-1, :]
    dx = (comp[..., :, 1:] - comp[..., :, :-1]).abs() * across
    dy = (comp[..., 1:, :] - comp[..., :-1, :]).abs() * down
    return (dx.sum() + dy.sum()) / comp.numel()


def gradient_loss(comp: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    # L_grad = Σ_{pairs in P} |∂I_comp − ∂I_gt| / N, horizontal and vertical neighbours, as L_tv but against I_gt
    region = dilate_holes(valid)
    across = region[..., :, 1:] * region[..., :, :-1]
    down = region[..., 1:, :] * region[..., :-1, :]
    dx = ((comp[..., :, 1:] - comp[..., :, :-1]) - (gt[..., :, 1:] - gt[..., :, :-1])).abs() * across
    dy = ((comp[..., 1:, :] - comp[..., :-1, :]) - (gt[..., 1:, :] - gt[..., :-1, :])).abs() * down
    return (dx.sum() + dy.sum()) / comp.numel()


def colour_loss(out: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """|mean colour of the fill − mean colour of the truth| per image and channel, over the hole: the
    evaluation's colour bias (the "ghost column" of a large flat hole), which per-pixel L1 lets average away."""
    hole = 1 - valid
    area = hole.sum(dim=(2, 3)).clamp(min=1.0)
    return ((hole * (out - gt)).sum(dim=(2, 3)) / area).abs().mean()


def gram(features: torch.Tensor) -> torch.Tensor:
    """K_p ψᵀψ with K_p = 1 / (C H W)."""
    n, c, h, w = features.shape
    f = features.reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


def multiscale_hole_loss(out: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Hole L1 of 2× and 4× average-pooled images: penalises colour bias and low-frequency
    error more than pixel noise, a cheap stand-in for the perceptual term."""
    total = out.new_zeros(())
    for factor in (2, 4):
        hole = F.avg_pool2d(1 - valid, factor)
        total = total + (hole * (F.avg_pool2d(out, factor) - F.avg_pool2d(gt, factor))).abs().mean()
    return total


def ssim_loss(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """1 − mean SSIM (Wang et al. 2004, Gaussian window), per channel, data range 1."""
    coords = torch.arange(window, dtype=a.dtype, device=a.device) - window // 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    g = g / g.sum()
    c = a.shape[1]
    kx = g.view(1, 1, 1, window).expand(c, 1, 1, window)
    ky = g.view(1, 1, window, 1).expand(c, 1, window, 1)

    def blur(x):
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return 1 - ssim.mean()


class VGG16Features(nn.Module):
    """pool1, pool2 and pool3 of torchvision's VGG16, frozen, from a local weights file.

    ``weights_path="random"`` keeps torchvision's seeded random initialisation instead: fixed random
    convolutions still measure local structure (the "random VGG" stand-in tried in the loss ablation).
    """

    def __init__(self, weights_path: str | Path, seed: int = 0) -> None:
        super().__init__()
        from torchvision.models import vgg16

        from .weights import load_state_dict

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            vgg = vgg16(weights=None)
        if str(weights_path) != RANDOM_VGG:
            # only the convolutional part is used: a file with just ``features.*`` is enough
            state = {k.removeprefix("features."): v for k, v in load_state_dict(weights_path).items()}
            vgg.features.load_state_dict({k: v for k, v in state.items() if not k.startswith("classifier.")})
        self.stages = nn.ModuleList(
            vgg.features[start:end] for start, end in zip((0,) + VGG_POOL_ENDS[:-1], VGG_POOL_ENDS)
        )
        self.requires_grad_(False)
        self.eval()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGG16Features:
        return super().train(False)  # always frozen

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.mean) / self.std
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class InpaintingLoss(nn.Module):
    """L_total = 1·L_valid + 6·L_hole + 0.05·L_perc + 120·(L_style_out + L_style_comp) + 0.1·L_tv.

    Without a VGG16 weights file the perceptual and style terms are off (said once, in the log).
    ``forward`` returns ``(total, terms)`` with every term unweighted in ``terms``.
    """

    _warned = False

    def __init__(self, weights: LossWeights = LossWeights(), vgg_weights: str | Path | None = None) -> None:
        super().__init__()
        self.weights = weights
        self.vgg = VGG16Features(vgg_weights) if vgg_weights else None
        if self.vgg is None and (weights.perceptual or weights.style) and not InpaintingLoss._warned:
            InpaintingLoss._warned = True
            log.warning("no VGG16 weights file given: the perceptual and style loss terms are off")

    def forward(self, out: torch.Tensor, gt: torch.Tensor, valid: torch.Tensor):
        w = self.weights
        comp = valid * gt + (1 - valid) * out
        terms = {"valid": valid_loss(out, gt, valid), "hole": hole_loss(out, gt, valid), "tv": tv_loss(comp, valid)}
        if self.vgg is not None:
            f_out, f_comp, f_gt = self.vgg(out), self.vgg(comp), self.vgg(gt)
            terms["perceptual"] = sum(
                F.l1_loss(o, g) + F.l1_loss(c, g) for o, c, g in zip(f_out, f_comp, f_gt)
            )
            grams_gt = [gram(g) for g in f_gt]
            terms["style_out"] = sum(F.l1_loss(gram(o), g) for o, g in zip(f_out, grams_gt))
            terms["style_comp"] = sum(F.l1_loss(gram(c), g) for c, g in zip(f_comp, grams_gt))
        if w.multiscale:
            terms["multiscale"] = multiscale_hole_loss(out, gt, valid)
        if w.ssim:
            terms["ssim"] = ssim_loss(comp, gt)
        if w.gradient:
            terms["gradient"] = gradient_loss(comp, gt, valid)
        if w.colour:
            terms["colour"] = colour_loss(out, gt, valid)
        weight_of = {
            "valid": w.valid,
            "hole": w.hole,
            "tv": w.tv,
            "perceptual": w.perceptual,
            "style_out": w.style,
            "style_comp": w.style,
            "multiscale": w.multiscale,
            "ssim": w.ssim,
            "gradient": w.gradient,
            "colour": w.colour,
        }
        total = sum(weight_of[name] * value for name, value in terms.items())
        return total, {name: value.detach() for name, value in terms.items()}
