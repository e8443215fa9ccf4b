"""Temporal warping error (Lai et al., *Learning Blind Video Temporal Consistency*, ECCV 2018),
occlusion-masked, with Blender's Vector pass as the flow: how much a sequence flickers beyond
what its motion explains.

For consecutive frames t-1, t:
    E_t = sum_p M_t(p) |O_t(p) - O_{t-1}(p + b_t(p))|^2 / (3 sum_p M_t(p))
O in the display domain (the caller tone-maps), b_t the flow from t back to t-1 (Vector.XY at
t), the previous frame sampled bilinearly. M_t keeps a pixel only if
- its source lies inside frame t-1;
- forward-backward consistent: |b + f~|^2 <= 0.01 (|b|^2 + |f~|^2) + 0.5, f~ the flow from t-1
  to t (Vector.ZW at t-1) read at p + b (Lai et al.'s occlusion test);
- not on a motion boundary: |grad b|^2 <= 0.01 |b|^2 + 0.002.
The sequence's error is the mean of E_t. Pixel conventions: neural_core.temporal and
docs/temporal.md. Compare a sequence with its reference render's own error: real motion and
lighting changes give the reference a non-zero error too.

numpy only (the Blender tests use it too).
"""
from __future__ import annotations

import numpy as np

from neural_core.temporal import Sampler, backward_flow, fb_inconsistent, forward_flow


def occlusion_mask(motion: np.ndarray, previous_motion: np.ndarray) -> tuple[Sampler, np.ndarray]:
    """(sampler from frame t into t-1, mask of the pixels the error counts) from the Vector
    passes of frames t and t-1."""
    sampler, no_past, boundary = _past_tests(motion, previous_motion)
    return sampler, ~no_past & ~boundary


def regions_without_past(motion: np.ndarray, previous_motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The pixels the error leaves out, by why: (uncovered: the source lies outside frame t-1 or
    fails the forward-backward test, i.e. what was hidden a frame ago; motion boundary: only
    the gradient test fails, i.e. anti-aliased pixels along a moving edge)."""
    _, no_past, boundary = _past_tests(motion, previous_motion)
    return no_past, boundary & ~no_past


def _past_tests(motion, previous_motion):
    b_col, b_row = backward_flow(motion)
    sampler = Sampler(np.ascontiguousarray(b_col), np.ascontiguousarray(b_row), b_col.shape)
    f_col, f_row = forward_flow(previous_motion)
    f_col = sampler.bilinear(np.ascontiguousarray(f_col))
    f_row = sampler.bilinear(np.ascontiguousarray(f_row))
    no_past = ~sampler.inside | fb_inconsistent(b_col, b_row, f_col, f_row)
    return sampler, no_past, motion_boundary(b_col, b_row)


def motion_boundary(d_col: np.ndarray, d_row: np.ndarray) -> np.ndarray:
    """Lai et al.'s motion-boundary test on a flow field."""
    grad_sq = np.zeros(d_col.shape, np.float32)
    for plane in (d_col, d_row):
        gy, gx = np.gradient(np.asarray(plane, np.float32))
        grad_sq += gx ** 2 + gy ** 2
    return grad_sq > 0.01 * (d_col ** 2 + d_row ** 2) + 0.002


def pixel_errors(previous: np.ndarray, current: np.ndarray, motion: np.ndarray,
                 previous_motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(per-pixel squared difference of frame t and the warped frame t-1, summed over the
    channels, float64; the mask of the pixels E_t counts)."""
    sampler, mask = occlusion_mask(motion, previous_motion)
    errors = np.zeros(mask.shape)
    for c in range(current.shape[-1]):
        warped = sampler.bilinear(np.ascontiguousarray(previous[..., c], np.float32))
        errors += (current[..., c] - warped).astype(np.float64) ** 2
    return errors, mask


def pair_error(previous: np.ndarray, current: np.ndarray, motion: np.ndarray,
               previous_motion: np.ndarray) -> float | None:
    """E_t for one pair; None when no pixel is left after masking."""
    errors, mask = pixel_errors(previous, current, motion, previous_motion)
    if not mask.any():
        return None
    return float(errors[mask].sum()) / (current.shape[-1] * int(mask.sum()))


def warping_error(frames: list[np.ndarray], motions: list[np.ndarray]) -> float | None:
    """Mean E_t over consecutive pairs; motions[t] is frame t's Vector pass (XY towards t-1,
    ZW towards t+1)."""
    errors = [pair_error(frames[t - 1], frames[t], motions[t], motions[t - 1])
              for t in range(1, len(frames))]
    errors = [e for e in errors if e is not None]
    return float(np.mean(errors)) if errors else None
