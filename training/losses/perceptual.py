"""Perceptual losses on VGG features.

- `VGGLoss`: L1 between feature maps of output and target (paired RAD training).
- `LPIPSLoss`: LPIPS-style distance (channel-unit-normalised features, squared difference,
  spatial mean, summed over layers) between the enhanced image and its input, as EPE uses it.
  LPIPS's learned linear heads cannot be downloaded, so every channel is weighted equally (the
  "baseline" LPIPS variant of Zhang et al.). The norm has an epsilon: EPE's users traced their
  NaNs to LPIPS's sqrt at zero.
"""
from __future__ import annotations

import torch
from torch import nn

from .vgg import VGG

VGG16_TAPS = ["relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3"]
VGG19_TAPS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


class VGGLoss(nn.Module):
    def __init__(self, vgg: VGG, taps: list[str] | None = None, weights: list[float] | None = None):
        super().__init__()
        self.vgg = vgg
        self.taps = taps or (VGG19_TAPS if vgg.arch == "vgg19" else VGG16_TAPS)
        self.weights = weights or [1.0] * len(self.taps)
        if len(self.weights) != len(self.taps):
            raise ValueError("one weight per VGG layer is needed")

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        both = self.vgg(torch.cat([output, target]), self.taps)
        loss = output.new_zeros(())
        for tap, weight in zip(self.taps, self.weights):
            fake, real = both[tap].chunk(2)
            loss = loss + weight * (fake - real.detach()).abs().mean()
        return loss


def unit_normalise(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return features * torch.rsqrt((features * features).sum(dim=1, keepdim=True) + eps)


class LPIPSLoss(nn.Module):
    def __init__(self, vgg: VGG, taps: list[str] | None = None):
        super().__init__()
        self.vgg = vgg
        self.taps = taps or VGG16_TAPS

    def forward(self, output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        both = self.vgg(torch.cat([output, reference]), self.taps)
        loss = output.new_zeros(())
        for tap in self.taps:
            fake, real = both[tap].chunk(2)
            diff = unit_normalise(fake) - unit_normalise(real.detach())
            loss = loss + (diff * diff).sum(dim=1).mean()
        return loss
