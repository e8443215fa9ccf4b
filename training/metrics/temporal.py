"""Temporal warping error: how much an enhanced sequence flickers beyond the scene's motion.

E(t) = mean over valid pixels of |O_t - warp(O_{t-1})|^2 (display domain), where warp samples
the previous output at the position the Vector pass gives: Blender's Vector.xy is the motion
towards the previous frame in pixels with y pointing up, so pixel (row r, col c) of frame t
came from (row r - v_y, col c + v_x) of frame t-1 in our top-down arrays. Pixels whose source
falls outside the frame are left out. Compare with the same error of the input sequence: an
enhancer should not add flicker.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def warp_previous(previous: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """previous (H, W, 3), motion (H, W, >=2) -> (warped (H, W, 3), valid mask (H, W))."""
    h, w = motion.shape[:2]
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    src_rows = rows - motion[..., 1]
    src_cols = cols + motion[..., 0]
    valid = (src_rows >= 0) & (src_rows <= h - 1) & (src_cols >= 0) & (src_cols <= w - 1)
    grid = np.stack([src_cols / max(w - 1, 1) * 2 - 1, src_rows / max(h - 1, 1) * 2 - 1], axis=-1)
    prev = torch.from_numpy(np.ascontiguousarray(previous, np.float32)).permute(2, 0, 1)[None]
    warped = F.grid_sample(prev, torch.from_numpy(grid[None]).float(), mode="bilinear",
                           padding_mode="border", align_corners=True)
    return warped[0].permute(1, 2, 0).numpy(), valid


def warping_error(frames: list[np.ndarray], motions: list[np.ndarray]) -> float | None:
    """Mean warping error over consecutive pairs; motions[t] is frame t's Vector pass."""
    errors = []
    for t in range(1, len(frames)):
        warped, valid = warp_previous(frames[t - 1], motions[t])
        if valid.any():
            errors.append(float(((frames[t] - warped) ** 2).mean(axis=-1)[valid].mean()))
    return float(np.mean(errors)) if errors else None
