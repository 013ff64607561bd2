"""A light adversarial term: a small PatchGAN judges the composite patch by patch, and the network is
rewarded where it fools it inside the hole (the idea LaMa trained with, scaled down to this model).

L1-type losses reward the mean of every plausible fill, which is a blur; a discriminator that has seen
real texture penalises blur where the hole is. ``python -m pconv.train --w-adversarial W`` turns it on.
Hinge losses; spectral normalisation keeps the discriminator from overpowering a small generator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class PatchDiscriminator(nn.Module):
    """Photo (in [0, 1]) and hole mask in, one logit per patch out (N×1×H/8×W/8 for 3 layers)."""

    def __init__(self, width: int = 32, layers: int = 3) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        channels = 4  # RGB and the hole: the judge knows where to look
        for i in range(layers):
            out = width * 2**i
            blocks += [spectral_norm(nn.Conv2d(channels, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2, True)]
            channels = out
        blocks.append(spectral_norm(nn.Conv2d(channels, 1, 3, padding=1)))
        self.net = nn.Sequential(*blocks)

    def forward(self, image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([image * 2 - 1, 1 - valid], 1))


class Adversary:
    """The discriminator and its optimiser, and the two losses of a training step."""

    def __init__(self, device: torch.device | str = "cpu", lr: float = 2e-4) -> None:
        self.net = PatchDiscriminator().to(device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr, betas=(0.5, 0.999))

    @staticmethod
    def _hole_share(valid: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """How much of each patch is hole: only those patches hold anything made up."""
        return F.adaptive_avg_pool2d(1 - valid, logits.shape[-2:])

    def generator_loss(self, composite: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """−D(composite), averaged over the patches weighted by their share of hole."""
        self.net.requires_grad_(False)
        try:
            logits = self.net(composite, valid)
        finally:
            self.net.requires_grad_(True)
        share = self._hole_share(valid, logits)
        return -(logits * share).sum() / share.sum().clamp_min(1e-6)

    def discriminator_step(self, real: torch.Tensor, composite: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """One hinge step: real photos score above +1, the made-up patches of composites below −1.
        Returns the discriminator's loss (detached)."""
        real_logits = self.net(real, valid)
        fake_logits = self.net(composite.detach(), valid)
        share = self._hole_share(valid, fake_logits)
        loss = F.relu(1 - real_logits).mean() + (F.relu(1 + fake_logits) * share).sum() / share.sum().clamp_min(1e-6)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return loss.detach()

    def state_dict(self) -> dict:
        return {"net": self.net.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
