"""Temporal stability for animations: a history-clamped accumulation after the network.

The network enhances each frame on its own; its residual noise and per-frame decisions then
flicker. `TemporalFilter` keeps the previous *enhanced* frame, moves it to the current frame
along Blender's Vector pass, reads it only from the taps that show the same surface
(disocclusion), clamps it to the current frame's neighbourhood range (so stale colour cannot
survive: no ghosting) and blends it in with a per-pixel running mean floored at `min_weight`.

Vector pass convention (docs/temporal.md; measured on a known camera move in Blender 4.5 and
5.2, tested in blender_tests/test_temporal.py). Arrays here have row 0 at the top; Blender's
pixel y axis points up. At frame t:
- Vector.XY is the displacement to the same surface point at t-1, (x right, y up):
  it sits at (column + X, row - Y) of frame t-1;
- Vector.ZW is minus the displacement to t+1: it sits at (column - Z, row + W) of frame t+1.
The first frame of an animation has XY = 0, the last ZW = 0.

The history is read bilinearly, but only from the taps that pass every test (renormalised, as
in SVGF's reprojection); a pixel with no such tap gets the per-frame result. A tap fails where:
- its object/class id differs;
- its depth differs by more than `depth_tolerance` (relative), unless no tap is that close and
  the depth lies within the taps' range widened by it (a surface seen at a grazing angle);
- its normal is more than acos(`normal_cos`) from the pixel's;
- the forward-backward check of Lai et al. 2018 fails with the tap's forward flow f~:
  |b + f~|^2 > 0.01 (|b|^2 + |f~|^2) + 0.5, b the flow to t-1 at p. Two objects of one class
  moving differently fail here, so the edge between them keeps no mixed history.
The whole history is reset (the output is exactly the per-frame result) on the first frame,
a jump in frame number, a change of size or key (scene, view layer, camera), a frame without a
Vector pass, and a cut: fewer than `cut_fraction` of the pixels keep their history.

numpy only: this runs inside Blender.
"""
from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from . import schema

# Passes the filter reads when the frame has them (only the Vector pass is needed).
ID_PASSES = ("object_index", "class_aov", "material_index")
USED_PASSES = ("motion", "depth", "normal") + ID_PASSES
# The previous frame, one 32-byte record per pixel, so that one gather per tap reads all of it
# (numpy's take has a fast path for 32-byte items).
RGB, AGE, FLOW, DEPTH, ID = slice(0, 3), 3, slice(4, 6), 6, 7
RECORD = 8
# Rows per band of work: a band's temporaries (~(rows x width x 4 taps x 8) float32) stay in
# the CPU cache; whole-frame numpy steps are memory-bound.
BAND_ROWS = 16


@dataclass(frozen=True)
class TemporalSettings:
    # Floor of the current frame's weight: the history is a running mean of at most
    # 1/min_weight frames, so a lighting change fades in within a few frames.
    min_weight: float = 0.1
    # The history is clamped to the current frame's (2 r + 1)^2 neighbourhood range. A denoised
    # frame is smooth, so a 3x3 range is narrow and lets the denoiser's frame-to-frame blotches
    # through; they are several pixels wide. 4 (a 9x9 range) was chosen on validation shots
    # (seeds 20200+), not on the held-out ones: interior 1.53x -> 1.28x of the reference's
    # warping error, PSNR unchanged; 6 gained nothing more (docs/temporal.md).
    clamp_radius: int = 4
    depth_tolerance: float = 0.1      # relative; camera moves change depth a few % per frame
    normal_cos: float = 0.9           # ~25 degrees; world-space normals do not turn with the camera
    # History weight at most this next to a motion edge (chosen on the validation shots:
    # 0.3 / 0.5 / 0.7 gave street 1.60 / 1.54 / 1.48x, PSNR +0.08 / -0.07 / -0.31 dB).
    edge_history_weight: float = 0.5
    cut_fraction: float = 0.3         # fewer pixels with history than this: treat as a cut
    fb_relative: float = 0.01         # Lai et al.'s forward-backward thresholds
    fb_absolute: float = 0.5


def backward_flow(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector pass at t -> (d_col, d_row) to the same point at t-1, in array coordinates."""
    return motion[..., 0], -motion[..., 1]


def forward_flow(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector pass at t -> (d_col, d_row) to the same point at t+1, in array coordinates."""
    return -motion[..., 2], motion[..., 3]


class Sampler:
    """The 4 bilinear taps of (row + d_row, col + d_col) on a (H, W) grid, for the band of rows
    `row0 .. row0 + len(d_row)` of that grid: `index` (N, 4) flat indices into the grid and
    `weight` (N, 4) bilinear weights, N the band's pixels."""

    def __init__(self, d_col: np.ndarray, d_row: np.ndarray, grid: tuple[int, int], row0: int = 0):
        h, w = grid
        self.shape = d_col.shape
        cols = np.add(np.arange(w, dtype=np.float32)[None, :], d_col, dtype=np.float32)
        rows = np.add(np.arange(row0, row0 + self.shape[0], dtype=np.float32)[:, None], d_row,
                      dtype=np.float32)
        self.inside = (cols >= 0) & (cols <= w - 1) & (rows >= 0) & (rows <= h - 1)
        np.clip(cols, 0, w - 1, out=cols)
        np.clip(rows, 0, h - 1, out=rows)
        # The top-left tap stays in the last row/column but one, so all four taps exist
        # (the last row/column is then read with weight 1 from the far taps).
        c0 = np.minimum(np.floor(cols), max(w - 2, 0))
        r0 = np.minimum(np.floor(rows), max(h - 2, 0))
        fc, fr = (cols - c0).reshape(-1, 1), (rows - r0).reshape(-1, 1)
        right, down = min(w - 1, 1), (w if h > 1 else 0)
        top_left = (r0.astype(np.intp) * w + c0.astype(np.intp)).reshape(-1, 1)
        self.index = top_left + np.array([0, right, down, down + right], np.intp)
        self.weight = np.concatenate([(1 - fc) * (1 - fr), fc * (1 - fr), (1 - fc) * fr, fc * fr], axis=1)

    def bilinear(self, plane: np.ndarray) -> np.ndarray:
        values = np.take(plane.ravel(), self.index)
        return np.einsum("nk,nk->n", values, self.weight).reshape(self.shape)


def fb_inconsistent(b_col, b_row, f_col, f_row, relative=0.01, absolute=0.5) -> np.ndarray:
    """Lai et al.'s occlusion test: True where the backward flow b and the forward flow
    f~ (read at p + b) do not cancel out."""
    sum_sq = (b_col + f_col) ** 2 + (b_row + f_row) ** 2
    mag_sq = b_col ** 2 + b_row ** 2 + f_col ** 2 + f_row ** 2
    return sum_sq > relative * mag_sq + absolute


def motion_edge(motion: np.ndarray, rows: slice) -> np.ndarray:
    """True next to a motion boundary (Lai et al.'s |grad b|^2 > 0.01 |b|^2 + 0.002, with the
    3x3 range of b, ~2x the gradient, as the measure): ids are class ids, so two cars or a car
    and the road behind it are told apart by their motion, and the bilinear history there would
    mix both."""
    halo = slice(max(rows.start - 1, 0), min(rows.stop + 1, motion.shape[0]))
    b_col, b_row = backward_flow(motion[halo])
    low, high = box_min_max(np.stack([b_col, b_row]), 1)
    inner = slice(rows.start - halo.start, rows.start - halo.start + (rows.stop - rows.start))
    spread = high[:, inner] - low[:, inner]
    magnitude = b_col[inner] ** 2 + b_row[inner] ** 2
    return (spread[0] ** 2 + spread[1] ** 2) > 0.04 * magnitude + 0.008



def id_plane(frame: schema.Frame, rows: slice = slice(None)) -> np.ndarray | None:
    key = next((k for k in ID_PASSES if k in frame), None)
    return None if key is None else np.rint(frame[key][rows, :, 0])


def _bands(height: int, count: int) -> list[slice]:
    edges = np.linspace(0, height, max(1, min(count, height)) + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def box_min_max(planes: np.ndarray, radius: int = 1, axes=(-2, -1)) -> tuple[np.ndarray, np.ndarray]:
    """(2 radius + 1)^2 minimum and maximum over the two `axes` (rows, columns) of `planes`
    (edges use the pixels that exist)."""
    return _box(planes, np.minimum, radius, axes), _box(planes, np.maximum, radius, axes)


def _box(planes: np.ndarray, op, radius: int, axes) -> np.ndarray:
    """Separable sliding-window `op` along the columns, then the rows."""
    return _window(_window(planes, op, axes[1] % planes.ndim, radius), op, axes[0] % planes.ndim, radius)


def _window(planes: np.ndarray, op, axis: int, radius: int) -> np.ndarray:
    """`op` over the 2 radius + 1 values around each one along `axis`, by doubling: a window of
    width w and one shifted by s <= w make one of width w + s, so width 9 takes 4 operations
    instead of the 8 of four 3-tap passes. The ends are padded with the edge value, which the
    window there holds anyway, so the result is that of the pixels that exist."""
    if radius < 1:
        return planes
    width, target = 1, 2 * radius + 1
    pad = [(0, 0)] * planes.ndim
    pad[axis] = (radius, radius)
    window = np.pad(planes, pad, mode="edge")
    n = window.shape[axis]

    def part(start, stop):
        index = [slice(None)] * planes.ndim
        index[axis] = slice(start, stop)
        return tuple(index)
    spare = np.empty_like(window)   # two buffers in turn: an overlapping out= would be copied
    while width < target:
        shift = min(width, target - width)
        # Past n - width the values are stale; they only reach positions the crop drops.
        op(window[part(0, n - shift)], window[part(shift, n)], out=spare[part(0, n - shift)])
        window, spare = spare, window
        width += shift
    return window[part(0, planes.shape[axis])]


_POOL: list = []


def _pool():
    """Threads shared by every filter: one band of rows each (at most 8: the work is
    memory-bound and stops scaling before that)."""
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)),
                                        thread_name_prefix="photoreal-temporal"))
    return _POOL[0]


def shutdown() -> None:
    """Stop the threads (the add-on's unregister: nothing of it may keep running)."""
    while _POOL:
        _POOL.pop().shutdown(wait=True)


class _Surface:
    """What the tap tests compare, for a band of rows of one frame ((N,) and (N, 3) arrays;
    None where the frame lacks the pass)."""

    def __init__(self, frame: schema.Frame, rows: slice):
        self.depth = (np.minimum(frame["depth"][rows, :, 0], schema.DEPTH_FAR).ravel()
                      if "depth" in frame else None)
        ids = id_plane(frame, rows)
        self.ids = None if ids is None else ids.ravel()
        self.normal = frame["normal"][rows].reshape(-1, 3) if "normal" in frame else None


class TemporalFilter:
    """Feed the enhanced frames of one shot in order: `apply(frame, enhanced, number)`.

    After each call: `last_reset` says why the history was reset (None if it was used),
    `last_history_fraction` how many pixels kept it, `last_ms` what the step cost.
    """

    def __init__(self, settings: TemporalSettings | None = None):
        self.settings = settings or TemporalSettings()
        self.reset()

    def reset(self) -> None:
        self.number = None          # frame number of the history
        self.key = None
        self.size = None            # (H, W) of the history
        self.past = None            # (H * W, RECORD): previous output, age, flow, depth, id
        self.past_normal = None     # (H * W, 4) previous normals (padded to 16 bytes), or None
        self.past_has = frozenset()  # which of depth / ids the records hold
        self.last_reset, self.last_history_fraction, self.last_ms = None, 0.0, 0.0

    @property
    def history(self) -> np.ndarray | None:
        """(H, W, 3) previous output."""
        return None if self.past is None else self.past[:, RGB].reshape(*self.size, 3)

    @property
    def age(self) -> np.ndarray | None:
        """(H, W) frames accumulated in the history."""
        return None if self.past is None else self.past[:, AGE].reshape(self.size)

    def apply(self, frame: schema.Frame, enhanced: np.ndarray, number: int, key=None) -> np.ndarray:
        """(H, W, 3) enhanced frame `number` -> the temporally filtered (H, W, 3) float32."""
        start = time.perf_counter()
        current = np.asarray(enhanced, np.float32)
        size = current.shape[:2]
        out = np.empty(current.shape, np.float32)   # new arrays: the runtime may reuse its buffer
        past = np.empty((size[0] * size[1], RECORD), np.float32)
        reason = self._reset_reason(frame, size, number, key)
        if reason is None:
            # Row bands in parallel: every step is a memory-bound numpy loop that releases the GIL.
            bands = _bands(size[0], max(_pool()._max_workers, size[0] // BAND_ROWS))
            kept = sum(_pool().map(lambda rows: self._filter_band(frame, current, rows, out, past), bands))
            fraction = kept / (size[0] * size[1])
            if fraction < self.settings.cut_fraction:
                reason = f"cut: {fraction:.0%} of the pixels have history"
        if reason is None:
            self.last_history_fraction = fraction
        else:
            out[:] = current
            if "motion" in frame:
                self._record(frame, slice(0, size[0]), out.reshape(-1, 3), 0.0, past)
            self.last_history_fraction = 0.0
        self.last_reset = reason
        self._remember(frame, past, size, number, key)
        self.last_ms = (time.perf_counter() - start) * 1e3
        return out

    def _reset_reason(self, frame, size, number, key) -> str | None:
        if "motion" not in frame:
            return "the frame has no Vector pass"
        if self.past is None:
            return "first frame"
        if key != self.key:
            return f"new shot ({self.key} -> {key})"
        if tuple(size) != self.size:
            return f"size changed ({self.size} -> {tuple(size)})"
        if number != self.number + 1:
            return f"frame {self.number} -> {number} is not the next frame"
        return None

    def _filter_band(self, frame, current, rows: slice, out, past_out) -> int:
        """Blend the history into one band of rows of `out`, write the band's records to
        `past_out` -> how many of its pixels kept their history."""
        b_col, b_row = backward_flow(frame["motion"][rows])
        sampler = Sampler(b_col, b_row, self.size, rows.start)
        taps = np.take(self.past, sampler.index, axis=0)             # (N, 4, RECORD)
        surface = _Surface(frame, rows)
        weight = sampler.weight * self._taps_match(taps, sampler, b_col.ravel(), b_row.ravel(), surface)
        total = weight.sum(axis=1)
        keep = sampler.inside.ravel() & (total > 0)
        weight /= np.where(keep, total, 1.0)[:, None]
        history = np.einsum("nk,nkc->nc", weight, taps[..., :AGE + 1])   # RGB and age; 0 if not kept
        age = (history[:, AGE] + 1.0) * keep
        history_weight = 1.0 - np.maximum(1.0 / (age + 1.0), self.settings.min_weight)
        # Next to a motion edge a pixel's colour mixes two motions (anti-aliasing), which no
        # tap can follow: there the history only halves the flicker, it does not smear.
        edge = motion_edge(frame["motion"], rows).ravel()
        history_weight[edge] = np.minimum(history_weight[edge], self.settings.edge_history_weight)
        cur = current[rows].reshape(-1, 3)
        low, high = self._clamp_range(current, rows)
        clamped = np.clip(history[:, RGB], low, high)
        clamped -= cur
        clamped *= history_weight[:, None]
        band_out = out[rows].reshape(-1, 3)
        np.add(cur, clamped, out=band_out)
        self._record(frame, rows, band_out, age, past_out)
        return int(keep.sum())

    def _taps_match(self, taps, sampler: Sampler, b_col, b_row, surface: _Surface) -> np.ndarray:
        """(N, 4) True where a tap shows the pixel's surface (the tests in the module doc)."""
        s = self.settings
        match = ~fb_inconsistent(b_col[:, None], b_row[:, None], taps[..., FLOW.start], taps[..., FLOW.start + 1],
                                 s.fb_relative, s.fb_absolute)
        if surface.ids is not None and "ids" in self.past_has:
            match &= taps[..., ID] == surface.ids[:, None]
        if surface.depth is not None and "depth" in self.past_has:
            depth = surface.depth[:, None]
            match &= np.abs(taps[..., DEPTH] - depth) <= s.depth_tolerance * depth
        if surface.normal is not None and self.past_normal is not None:
            normals = np.take(self.past_normal, sampler.index, axis=0)      # (N, 4, 4)
            # Scaled by |n|^2: the background has no normal (0, 0, 0) and must pass.
            limit = s.normal_cos * np.einsum("nc,nc->n", surface.normal, surface.normal)
            match &= np.einsum("nkc,nc->nk", normals[..., :3], surface.normal) >= limit[:, None]
        return match

    def _clamp_range(self, current, rows: slice) -> tuple[np.ndarray, np.ndarray]:
        """(N, 3) minimum and maximum of the current frame around each pixel of the band."""
        r = self.settings.clamp_radius
        halo = slice(max(rows.start - r, 0), min(rows.stop + r, current.shape[0]))
        low, high = box_min_max(current[halo], r, axes=(0, 1))
        inner = slice(rows.start - halo.start, rows.stop - halo.start)
        return low[inner].reshape(-1, 3), high[inner].reshape(-1, 3)

    def _record(self, frame, rows: slice, image, age, past) -> None:
        """Write the records of a band of rows: what the next frame reads back."""
        width = image.shape[0] // (rows.stop - rows.start)
        band = past[rows.start * width:rows.stop * width]
        band[:, RGB] = image
        band[:, AGE] = age
        f_col, f_row = forward_flow(frame["motion"][rows])
        band[:, FLOW.start], band[:, FLOW.start + 1] = f_col.ravel(), f_row.ravel()
        surface = _Surface(frame, rows)
        band[:, DEPTH] = 1.0 if surface.depth is None else surface.depth
        band[:, ID] = 0.0 if surface.ids is None else surface.ids

    def _remember(self, frame, past, size, number, key) -> None:
        self.number, self.key, self.size = number, key, tuple(size)
        if "motion" not in frame:
            self.past = None     # nothing to reproject the next frame with
            return
        self.past = past
        self.past_has = frozenset(k for k, present in (("depth", "depth" in frame),
                                                        ("ids", id_plane(frame, slice(0, 1)) is not None))
                                  if present)
        self.past_normal = None
        if "normal" in frame:
            self.past_normal = np.zeros((past.shape[0], 4), np.float32)
            self.past_normal[:, :3] = frame["normal"].reshape(-1, 3)

    # -- saving and restoring, so a resumed sequence continues with the same history ---------

    def state(self) -> dict[str, np.ndarray]:
        """The history as arrays (np.savez); the previous frame's passes are not included:
        `restore` reads them from that frame again."""
        if self.past is None:
            return {}
        return {"number": np.int64(self.number), "history": np.ascontiguousarray(self.history),
                "age": np.ascontiguousarray(self.age)}

    def restore(self, state, previous_frame: schema.Frame, key=None) -> None:
        """Continue after frame `state['number']`, whose passes are `previous_frame`."""
        self.reset()
        history = np.asarray(state["history"], np.float32)
        if history.ndim == 3 and history.shape[0] == 3 and history.shape[-1] != 3:
            history = history.transpose(1, 2, 0)     # saved by an older version: (3, H, W)
        size = history.shape[:2]
        past = np.empty((size[0] * size[1], RECORD), np.float32)
        self._record(previous_frame, slice(0, size[0]), history.reshape(-1, 3),
                     np.asarray(state["age"], np.float32).ravel(), past)
        self._remember(previous_frame, past, size, int(state["number"]), key)
