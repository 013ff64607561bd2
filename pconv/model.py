"""The PConv UNet (Liu et al. 2018, section 3.3): a config, the module, a builder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from .layers import PartialConv2d

# The paper's encoder: kernel sizes and channels of layers 1..8.
PAPER_KERNELS = (7, 5, 5, 3, 3, 3, 3, 3)
PAPER_CHANNELS = (64, 128, 256, 512, 512, 512, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class PConvUNetConfig:
    """layers: 7 for 256-pixel training, 8 for 512 (the bottleneck is then 2×2).
    width: multiplies every channel count; 0.5 is a lighter variant."""

    layers: int = 7
    width: float = 1.0
    upsampling: str = "nearest"
    mean: tuple[float, float, float] = field(default=IMAGENET_MEAN)
    std: tuple[float, float, float] = field(default=IMAGENET_STD)

    def __post_init__(self) -> None:
        if not 2 <= self.layers <= len(PAPER_KERNELS):
            raise ValueError(f"layers must be between 2 and {len(PAPER_KERNELS)}")
        if self.width <= 0:
            raise ValueError("width must be positive")
        if self.upsampling not in ("nearest", "bilinear"):
            raise ValueError("upsampling must be 'nearest' or 'bilinear'")

    @property
    def stride(self) -> int:
        """Input sides must be multiples of this."""
        return 2**self.layers

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(max(1, round(c * self.width)) for c in PAPER_CHANNELS[: self.layers])

    @property
    def kernels(self) -> tuple[int, ...]:
        return PAPER_KERNELS[: self.layers]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PConvUNetConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ("mean", "std"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


class EncoderBlock(nn.Module):
    """PConv (stride 2) → BatchNorm (all but the first layer) → ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, bn: bool, conv=PartialConv2d) -> None:
        super().__init__()
        self.conv = conv(cin, cout, kernel, stride=2, bias=not bn)
        self.bn = nn.BatchNorm2d(cout) if bn else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x, mask):
        x, mask = self.conv(x, mask)
        if self.bn is not None:
            x = self.bn(x)
        return self.act(x), mask


class DecoderBlock(nn.Module):
    """Concatenate upsampled features with the skip, then 3×3 PConv → BatchNorm → LeakyReLU(0.2).
    The last block has a bias and neither BatchNorm nor activation."""

    def __init__(self, cin_up: int, cin_skip: int, cout: int, last: bool, conv=PartialConv2d) -> None:
        super().__init__()
        self.conv = conv(cin_up + cin_skip, cout, 3, stride=1, bias=last, mask_groups=(cin_up, cin_skip))
        self.bn = None if last else nn.BatchNorm2d(cout)
        self.act = None if last else nn.LeakyReLU(0.2, inplace=True)

    def forward(self, x, mask, skip, skip_mask):
        x, mask = self.conv((x, skip), (mask, skip_mask))
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x, mask


class PConvUNet(nn.Module):
    """forward(image, mask): image normalised N×3×H×W, mask N×1×H×W with 1 = valid, 0 = hole.

    ``conv`` swaps the layer class (the benchmark builds the same network with
    reference-style and plain convolutions); it must take PartialConv2d's
    arguments and return ``(features, mask)``.
    """

    def __init__(self, config: PConvUNetConfig = PConvUNetConfig(), conv=PartialConv2d) -> None:
        super().__init__()
        self.config = config
        ch, ks = config.channels, config.kernels
        self.encoder = nn.ModuleList(
            EncoderBlock(3 if i == 0 else ch[i - 1], ch[i], ks[i], bn=i > 0, conv=conv) for i in range(config.layers)
        )
        # decoder[j] goes from level j+1 back up to level j (level 0 = the input image)
        self.decoder = nn.ModuleList(
            DecoderBlock(ch[j], 3 if j == 0 else ch[j - 1], 3 if j == 0 else ch[j - 1], last=j == 0, conv=conv)
            for j in reversed(range(config.layers))
        )
        # features made inside the network may be masked in place at inference; the input image never is
        for i, block in enumerate(self.encoder):
            block.conv.inplace_sources = (i > 0,)
        for j, block in enumerate(self.decoder):
            block.conv.inplace_sources = (True, j < len(self.decoder) - 1)
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)
        self.finetune = False
        self.keep_statistics = False

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        stride = self.config.stride
        if image.shape[-2] % stride or image.shape[-1] % stride:
            raise ValueError(f"image sides must be multiples of {stride}, got {tuple(image.shape[-2:])}")
        levels = [(image, mask)]
        x, m = image, mask
        for block in self.encoder:
            x, m = block(x, m)
            levels.append((x, m))
        levels.pop()
        for block in self.decoder:
            skip, skip_mask = levels.pop()
            x = F.interpolate(x, scale_factor=2, mode=self.config.upsampling)
            m = F.interpolate(m, scale_factor=2, mode="nearest")
            x, m = block(x, m, skip, skip_mask)
        return x

    def fill(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """The network's prediction for an image in [0, 1] (N×3×H×W), in [0, 1] units, unclamped."""
        out = self((image - self.mean) / self.std, valid)
        return out * self.std + self.mean

    def set_finetune(self, enabled: bool = True) -> PConvUNet:
        """The paper's fine-tuning phase: the encoder's BatchNorm keeps its statistics
        and affine parameters fixed (so the holes' statistics do not pollute them)."""
        self.finetune = enabled
        for bn in self.encoder_batchnorms():
            for p in bn.parameters():
                p.requires_grad_(not enabled)
        return self.train(self.training)

    def set_keep_statistics(self, enabled: bool = True) -> PConvUNet:
        """Every BatchNorm normalises with its running statistics and stops updating them, while
        its affine parameters still learn: fine-tuning at a small batch (a CPU's 8 crops) after
        training at a large one (a GPU's 64) must not replace statistics it cannot estimate as well."""
        self.keep_statistics = enabled
        return self.train(self.training)

    def encoder_batchnorms(self) -> list[nn.BatchNorm2d]:
        return [b.bn for b in self.encoder if b.bn is not None]

    def batchnorms(self) -> list[nn.BatchNorm2d]:
        return [b.bn for b in [*self.encoder, *self.decoder] if b.bn is not None]

    def train(self, mode: bool = True) -> PConvUNet:
        super().train(mode)
        fixed = self.batchnorms() if self.keep_statistics else self.encoder_batchnorms() if self.finetune else []
        for bn in fixed:
            bn.eval()
        return self


def pconv_unet(layers: int = 7, width: float = 1.0, **kwargs) -> PConvUNet:
    """Builder, as torchvision's models have."""
    return PConvUNet(PConvUNetConfig(layers=layers, width=width, **kwargs))


def fold_batchnorm(model: PConvUNet) -> PConvUNet:
    """An inference copy with every BatchNorm folded into the partial convolution before it:
    BN(y) = a·y + c with a = γ/√(σ²+ε), c = β − a·μ, so W ← a·W and c becomes the layer's shift.
    Same outputs as the model in eval mode, one elementwise pass fewer per layer."""
    import copy

    folded = copy.deepcopy(model).eval()
    for block in [*folded.encoder, *folded.decoder]:
        bn = block.bn
        if bn is None:
            continue
        a = bn.weight.detach() / torch.sqrt(bn.running_var + bn.eps)
        conv = block.conv
        with torch.no_grad():
            conv.weight.mul_(a.view(-1, 1, 1, 1))
        conv.shift = (bn.bias.detach() - a * bn.running_mean).clone()
        block.bn = None
    folded.requires_grad_(False)
    return folded
