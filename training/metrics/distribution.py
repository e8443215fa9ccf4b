"""Distribution distances between feature sets: KID (unbiased MMD^2 with the polynomial
kernel k(x, y) = (x.y / d + 1)^3) and the Frechet distance (FID's formula on any features)."""
from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 estimate: diagonal terms of k(x, x) and k(y, y) are left out."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 2 or len(y) < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2 * kxy.mean())


def kid(x: np.ndarray, y: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the MMD^2 over random subsets (all samples when the sets are small)."""
    size = min(subset_size, len(x), len(y))
    if size == len(x) == len(y) or subsets <= 1:
        return polynomial_mmd2(x[:size], y[:size]), 0.0
    rng = np.random.default_rng(seed)
    values = [polynomial_mmd2(x[rng.choice(len(x), size, replace=False)],
                              y[rng.choice(len(y), size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values))


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + Tr(C_x + C_y - 2 (C_x C_y)^(1/2))."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    mu_x, mu_y = x.mean(0), y.mean(0)
    cov_x, cov_y = np.atleast_2d(np.cov(x, rowvar=False)), np.atleast_2d(np.cov(y, rowvar=False))
    with warnings.catch_warnings():
        # Fewer samples than feature dimensions give singular covariances; handled below.
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root, _ = linalg.sqrtm(cov_x @ cov_y, disp=False)
    if not np.isfinite(root).all():
        eps = 1e-6 * np.eye(len(cov_x))
        root = linalg.sqrtm((cov_x + eps) @ (cov_y + eps))
    root = np.real(root)
    return float(((mu_x - mu_y) ** 2).sum() + np.trace(cov_x) + np.trace(cov_y) - 2 * np.trace(root))
