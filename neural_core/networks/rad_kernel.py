"""The kernel-predicting output of the small RAD: the input image filtered by per-pixel
kernels at several scales (the residual is added on top by the network)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import upsample_to
from .rad_norm import _Convs


class KernelHead(nn.Module):
    """Filters the image with a k x k kernel per pixel: softmax(conv1x1(features)) over the taps.

    The taps are k*k shifted views of the edge-padded image with constant slice bounds, so the
    exported graph has no shape arithmetic, and a tile needs only k // 2 pixels of overlap.
    """

    def __init__(self, channels: int, size: int, convs: _Convs, guide_channels: int = 0):
        super().__init__()
        self.size = size
        self.logits = convs.plain(channels, size * size, kernel=1)
        self.guide = convs.plain(guide_channels, size * size, kernel=1, bias=False) if guide_channels else None
        with torch.no_grad():
            # Start close to the identity (centre weight ~0.7): a fresh head barely blurs.
            self.logits.weight.mul_(0.1)
            self.logits.bias.zero_()
            self.logits.bias[size * size // 2] = math.log(2.5 * (size * size - 1))
            if self.guide is not None:
                self.guide.weight.mul_(0.1)

    def forward(self, features: torch.Tensor, image: torch.Tensor,
                guide: torch.Tensor | None = None) -> torch.Tensor:
        # Softmax written out, normalised once on the 3-channel result: onnxruntime's Softmax
        # over the channel axis of an NCHW tensor transposes it and was most of the runtime.
        logits = self.logits(features)
        if self.guide is not None:
            logits = logits + self.guide(guide)
        weights = torch.exp(logits - logits.amax(dim=1, keepdim=True))
        r = self.size // 2
        padded = F.pad(image, (r, r, r, r), mode="replicate")
        out = None
        for tap in range(self.size * self.size):
            dy, dx = divmod(tap, self.size)
            view = padded[:, :, dy:(dy - 2 * r) or None, dx:(dx - 2 * r) or None]
            term = weights[:, tap:tap + 1] * view
            out = term if out is None else out + term
        return out / weights.sum(dim=1, keepdim=True)


class MultiScaleKernelHead(nn.Module):
    """Kernel filtering at scales 0 .. S-1 (scale s: the image area-downsampled 2^s times,
    kernels from decoder level s), composed coarse to fine: at each finer scale the coarse
    result replaces the fine result's own low frequencies, by a per-pixel weight alpha:
        out_s = f_s + alpha_s * (up(out_{s+1}) - up(down(f_s)))
    """

    def __init__(self, channels: list[int], size: int, scales: int, convs: _Convs, guide_channels: int = 0):
        super().__init__()
        self.heads = nn.ModuleList(KernelHead(channels[s], size, convs, guide_channels)
                                   for s in range(scales))
        self.alphas = nn.ModuleList(convs.plain(channels[s], 1, kernel=1) for s in range(scales - 1))
        with torch.no_grad():
            for alpha in self.alphas:      # start mostly on the fine scale (alpha ~0.12)
                alpha.weight.mul_(0.1)
                alpha.bias.fill_(-2.0)

    def forward(self, decoded: list[torch.Tensor], image: torch.Tensor,
                gbuffers: torch.Tensor | None = None) -> torch.Tensor:
        guided = self.heads[0].guide is not None
        images, guides = [image], [gbuffers if guided else None]
        for _ in range(1, len(self.heads)):
            images.append(F.avg_pool2d(images[-1], 2, ceil_mode=True))
            guides.append(F.avg_pool2d(guides[-1], 2, ceil_mode=True) if guided else None)
        out = None
        for s in reversed(range(len(self.heads))):
            filtered = self.heads[s](decoded[s], images[s], guides[s])
            if out is not None:
                alpha = torch.sigmoid(self.alphas[s](decoded[s]))
                own_low = upsample_to(F.avg_pool2d(filtered, 2, ceil_mode=True), filtered)
                filtered = filtered + alpha * (upsample_to(out, filtered) - own_low)
            out = filtered
        return out
