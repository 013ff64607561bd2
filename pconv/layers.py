"""The partial convolution layer (Liu et al. 2018, arXiv 1804.07723, section 3.1).

Masks are per channel in the paper, but in a UNet every channel of one source
shares one mask: an encoder layer's output mask is the same for all its
channels, and a decoder layer sees two sources (upsampled features and the
skip connection), each with its own shared mask. So a layer carries its input
mask as ``G`` single-channel planes, one per *mask group*, and knows how many
input channels each group covers. ``sum(M)`` over a window of all ``C_in``
channels is then one convolution of the ``G`` planes with a ``1 × G × k × k``
kernel whose group ``g`` is filled with that group's channel count — instead of
the ``C_out × C_in × k × k`` all-ones convolution of the reference
implementations, which costs as much as the layer itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

Tensors = torch.Tensor | Sequence[torch.Tensor]


class PartialConv2d(nn.Conv2d):
    """A convolution that sees only valid pixels and renormalises by their count.

    ``mask_groups`` gives the number of input channels of each mask group, in
    channel order; the default is one group covering every channel.

    ``forward(x, mask)`` takes either one tensor and a ``N×1×H×W`` mask, or a
    sequence of source tensors and one ``N×1×H×W`` mask per source (the
    decoder's concatenation, done here so features are masked on the way in).
    It returns the output and its ``N×1×H'×W'`` mask (1 = valid).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        dilation: int = 1,
        bias: bool = True,
        mask_groups: Sequence[int] | None = None,
    ) -> None:
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation, bias=bias
        )
        groups = tuple(mask_groups) if mask_groups is not None else (in_channels,)
        if sum(groups) != in_channels or min(groups) < 1:
            raise ValueError(f"mask_groups {groups} must be positive and add up to in_channels={in_channels}")
        self.mask_groups = groups
        kh, kw = self.kernel_size
        # sum(M) = Σ_g C_g · conv(m_g, 1_{k×k}); a buffer so it follows .to(device)
        counts = torch.tensor(groups, dtype=torch.float32).view(1, len(groups), 1, 1)
        self.register_buffer("mask_kernel", counts.expand(1, len(groups), kh, kw).contiguous(), persistent=False)
        self.window_size = float(in_channels * kh * kw)  # sum(1)
        # set by fold_batchnorm(): the BatchNorm after this layer, folded into weight and this shift
        self.register_buffer("shift", None)
        # per source: may X⊙M overwrite X when no gradient is needed? True only for features the network
        # made itself (the UNet sets it), never for the caller's image; a fresh copy costs 4× the multiply
        self.inplace_sources = (False,) * len(groups)

    def forward(self, x: Tensors, mask: Tensors) -> tuple[torch.Tensor, torch.Tensor]:
        if isinstance(x, torch.Tensor):
            x, mask = (x,), (mask,)
        if len(x) != len(mask):
            raise ValueError("one mask per source is needed")
        if len(x) == len(self.mask_groups):
            # X ⊙ M, each source by its own shared mask
            inplace = not torch.is_grad_enabled()
            masked = [xi.mul_(mi) if inplace and own else xi * mi
                      for xi, mi, own in zip(x, mask, self.inplace_sources)]
            planes = mask
        elif len(x) == 1 and mask[0].shape[1] == len(self.mask_groups):
            # one tensor with per-group masks given as planes of one tensor
            planes = mask[0].unbind(1)
            masked = [xi * mi.unsqueeze(1) for xi, mi in zip(x[0].split(self.mask_groups, 1), planes)]
            planes = [p.unsqueeze(1) for p in planes]
        else:
            raise ValueError(f"expected {len(self.mask_groups)} mask group(s), got {len(x)} source(s)")
        xm = masked[0] if len(masked) == 1 else torch.cat(masked, 1)
        valid_count, new_mask = self.update_mask(planes[0] if len(planes) == 1 else torch.cat(planes, 1))
        raw = F.conv2d(xm, self.weight, None, self.stride, self.padding, self.dilation)
        # out = Wᵀ(X⊙M)·sum(1)/sum(M) + b where sum(M) > 0, else 0
        scale = (self.window_size / valid_count.clamp(min=1.0)) * new_mask
        if self.shift is not None:
            # folded BatchNorm: a·(Wᵀ(X⊙M)·sum(1)/sum(M)) + c in one pass, c everywhere as BN adds it
            # (in place: the folded model is for inference only, and a fresh output costs 4× the pass)
            shift = self.shift.view(1, -1, 1, 1).to(raw.dtype)
            if torch.jit.is_tracing():  # exporters (ONNX, OpenVINO) trace, and have no out=: the same sum, plainly
                return raw * scale.to(raw.dtype) + shift, new_mask.to(xm.dtype)
            out = torch.addcmul(shift, raw, scale.to(raw.dtype), out=raw)
            return out, new_mask.to(xm.dtype)
        # in place: the convolution's backward needs its input, not its output
        out = raw.mul_(scale.to(raw.dtype))
        if self.bias is not None:
            out = out.addcmul_(self.bias.view(1, -1, 1, 1).to(out.dtype), new_mask.to(out.dtype))
        return out, new_mask.to(xm.dtype)

    def update_mask(self, planes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """sum(M) per output position and the new mask, 1 wherever sum(M) > 0.

        Always float32 and outside autocast: counts reach C_in·k², more than
        half-precision formats hold exactly.
        """
        with torch.autocast(planes.device.type, enabled=False):
            count = F.conv2d(planes.float(), self.mask_kernel, None, self.stride, self.padding, self.dilation)
        return count, (count > 0).float()
