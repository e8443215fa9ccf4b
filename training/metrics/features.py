"""Feature networks for KID/FID/sKVD, chosen by a spec 'arch:layer' (default vgg16:relu5_3).

Features are the layer's activations averaged over space (one vector per image). There is no
Inception network here (its weights cannot be downloaded), so KID/FID numbers are on VGG
features and are NOT comparable with papers' Inception-based numbers; with the random VGG
fallback they are only comparable between runs of this code.
"""
from __future__ import annotations

import numpy as np
import torch

from ..losses.vgg import VGG

DEFAULT_SPEC = "vgg16:relu5_3"


class FeatureNet:
    def __init__(self, spec: str = DEFAULT_SPEC, weights: str | None = None, device: str = "cpu"):
        arch, _, layer = spec.partition(":")
        self.layer = layer or "relu5_3"
        self.vgg = VGG(arch, weights, last_layer=self.layer).to(device)
        self.device = device
        self.spec = f"{arch}:{self.layer}"
        self.description = self.vgg.description

    @torch.no_grad()
    def __call__(self, display_images: list[np.ndarray], batch: int = 8) -> np.ndarray:
        """(H, W, 3) display images in [0, 1] -> (N, D) features."""
        out = []
        for start in range(0, len(display_images), batch):
            x = torch.from_numpy(np.stack(display_images[start:start + batch])).permute(0, 3, 1, 2)
            x = (x.float().to(self.device) - self.vgg.mean) / self.vgg.std
            out.append(self.vgg.run(x, [self.layer])[self.layer].mean(dim=(2, 3)).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1))
