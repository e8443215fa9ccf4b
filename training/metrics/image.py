"""Full-reference image metrics on display images (H, W, 3) in [0, 1]."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def psnr(output: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    mse = float(np.mean((np.asarray(output, np.float64) - np.asarray(reference, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range ** 2 / mse)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g /= g.sum()
    return g[:, None] * g[None, :]


def ssim(output: np.ndarray, reference: np.ndarray, data_range: float = 1.0) -> float:
    """Wang et al. 2004: 11x11 Gaussian window (sigma 1.5), K1 0.01, K2 0.03, per channel,
    averaged over the valid (unpadded) window positions and the channels."""
    a = torch.from_numpy(np.asarray(output, np.float64)).permute(2, 0, 1)[:, None]
    b = torch.from_numpy(np.asarray(reference, np.float64)).permute(2, 0, 1)[:, None]
    window = _gaussian_window()[None, None]
    if min(a.shape[-2:]) < window.shape[-1]:
        raise ValueError(f"SSIM needs images of at least {window.shape[-1]} px per side")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = F.conv2d(a, window), F.conv2d(b, window)
    var_a = F.conv2d(a * a, window) - mu_a ** 2
    var_b = F.conv2d(b * b, window) - mu_b ** 2
    cov = F.conv2d(a * b, window) - mu_a * mu_b
    score = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(score.mean())
