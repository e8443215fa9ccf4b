"""Temporal stability for animations: a history-clamped accumulation after the network.

The network enhances each frame on its own; its residual noise and per-frame decisions then
flicker. `TemporalFilter` keeps the previous *enhanced* frame, moves it to the current frame
along Blender's Vector pass, throws it away where it cannot be trusted (disocclusion), clamps
what is left to the current frame's 3x3 neighbourhood (so stale colour cannot survive: no
ghosting) and blends it in with a per-pixel running mean that is floored at `min_weight`.

Vector pass convention (docs/temporal.md; measured on a known camera move in Blender 4.5 and
5.2, tested in blender_tests/test_temporal.py). Arrays here have row 0 at the top; Blender's
pixel y axis points up. At frame t:
- Vector.XY is the displacement to the same surface point at t-1, (x right, y up):
  it sits at (column + X, row - Y) of frame t-1;
- Vector.ZW is minus the displacement to t+1: it sits at (column - Z, row + W) of frame t+1.
The first frame of an animation has XY = 0, the last ZW = 0.

History is dropped where (any one is enough):
- the point came from outside the frame;
- its object/class id differs at any tap; its depth differs from the nearest tap's by more than
  `depth_tolerance` (relative) and lies outside the taps' range widened by it; or its normal is
  more than acos(`normal_cos`) from every tap's;
- the forward-backward check of Lai et al. 2018 fails: |b + f~|^2 > 0.01 (|b|^2 + |f~|^2) + 0.5,
  b the flow to t-1 at p, f~ the previous frame's flow to t at p + b.
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
# Rows per band of work: a band's temporaries (~40 planes of 1920 x 16 float32) stay in the CPU
# cache; whole-frame numpy steps are memory-bound (1080p: ~3x slower).
BAND_ROWS = 32


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
    """Bilinear (and nearest) reads of a (H, W) grid at (row + d_row, col + d_col), for the
    band of rows `row0 .. row0 + len(d_row)` of that grid.

    Built once per frame. Only the top-left tap's index is stored: the other taps are read
    through offset views of the grid (no index arithmetic per read), with np.take and intp
    indices (numpy converts any other index type on every read)."""

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
        self.fc, self.fr = (cols - c0).ravel(), (rows - r0).ravel()
        self.step = right, down = (min(w - 1, 1), w if h > 1 else 0)
        self.top_left = (r0.astype(np.int32) * w + c0.astype(np.int32)).astype(np.intp).ravel()
        self.nearest_index = self.top_left.copy()
        np.add(self.nearest_index, right, out=self.nearest_index, where=self.fc >= 0.5)
        np.add(self.nearest_index, down, out=self.nearest_index, where=self.fr >= 0.5)

    def _tap(self, flat: np.ndarray, offset: int) -> np.ndarray:
        return np.take(flat[offset:] if offset else flat, self.top_left)

    def bilinear(self, plane: np.ndarray) -> np.ndarray:
        flat = plane.ravel()
        right, down = self.step
        a, b = self._tap(flat, 0), self._tap(flat, right)
        c, d = self._tap(flat, down), self._tap(flat, down + right)
        b -= a
        b *= self.fc
        a += b            # top row, interpolated along the columns
        d -= c
        d *= self.fc
        c += d            # bottom row
        c -= a
        c *= self.fr
        a += c
        return a.reshape(self.shape)

    def all_taps_equal(self, plane: np.ndarray, values: np.ndarray) -> np.ndarray:
        """True where every tap the bilinear read uses holds `values` (e.g. the same object id:
        history read across an object's edge would mix in the other object)."""
        flat, right, down = plane.ravel(), *self.step
        values = values.ravel()
        used_right, used_down = self.fc > 0, self.fr > 0
        same = self._tap(flat, 0) == values
        same &= (self._tap(flat, right) == values) | ~used_right
        same &= (self._tap(flat, down) == values) | ~used_down
        same &= (self._tap(flat, down + right) == values) | ~(used_right & used_down)
        return same.reshape(self.shape)

    def taps(self, planes: np.ndarray, pixels: np.ndarray) -> list[np.ndarray]:
        """The values of (..., H, W) `planes` at the taps the bilinear read uses, for the flat
        indices `pixels` of the band (a tap of weight 0 repeats the top-left one): the values
        the point may have had. -> 4 arrays of shape (..., len(pixels))."""
        right, down = self.step
        top_left = self.top_left[pixels]
        used_right = (self.fc[pixels] > 0).astype(np.intp) * right
        used_down = (self.fr[pixels] > 0).astype(np.intp) * down
        flat = planes.reshape(*planes.shape[:-2], -1)
        return [np.take(flat, top_left + offset, axis=-1)
                for offset in (0, used_right, used_down, used_right + used_down)]

    def nearest(self, plane: np.ndarray) -> np.ndarray:
        return np.take(plane.ravel(), self.nearest_index).reshape(self.shape)


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
    low, high = box_min_max(np.stack([b_col, b_row]))
    inner = slice(rows.start - halo.start, rows.start - halo.start + (rows.stop - rows.start))
    spread = high[:, inner] - low[:, inner]
    magnitude = b_col[inner] ** 2 + b_row[inner] ** 2
    return (spread[0] ** 2 + spread[1] ** 2) > 0.04 * magnitude + 0.008


def _or_at_some_tap(ok: np.ndarray, keep: np.ndarray, test_taps) -> np.ndarray:
    """`ok` (the nearest tap's test), also True where `test_taps(pixels)` passes for the kept
    pixels that failed it. At a low resolution, on curved surfaces and ground seen at a grazing
    angle, neighbouring pixels differ in depth and normal by more than the tolerance, so the
    nearest tap alone threw away good history; the other taps are read only for those pixels."""
    pixels = np.flatnonzero(keep & ~ok)
    if pixels.size:
        ok.reshape(-1)[pixels] = test_taps(pixels)
    return ok


def _depth_in_tap_range(taps: list[np.ndarray], depth: np.ndarray, tolerance: float) -> np.ndarray:
    return ((depth >= np.minimum.reduce(taps) * (1 - tolerance))
            & (depth <= np.maximum.reduce(taps) * (1 + tolerance)))


def id_plane(frame: schema.Frame, rows: slice = slice(None)) -> np.ndarray | None:
    key = next((k for k in ID_PASSES if k in frame), None)
    return None if key is None else np.rint(frame[key][rows, :, 0])


def _bands(height: int, count: int) -> list[slice]:
    edges = np.linspace(0, height, max(1, min(count, height)) + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def box_min_max(planes: np.ndarray, radius: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(2 radius + 1)^2 minimum and maximum of (C, H, W) planes (edges use the pixels that
    exist)."""
    return _box(planes, np.minimum, radius), _box(planes, np.maximum, radius)


def _box(planes: np.ndarray, op, radius: int) -> np.ndarray:
    """Separable sliding-window `op` along the columns, then the rows."""
    return _window(_window(planes, op, 2, radius), op, 1, radius)


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
        self.history = None         # (3, H, W) previous output
        self.age = None             # (H, W) frames accumulated in the history
        self.previous = {}          # previous frame's depth, normal, ids, forward flow
        self.last_reset, self.last_history_fraction, self.last_ms = None, 0.0, 0.0

    def apply(self, frame: schema.Frame, enhanced: np.ndarray, number: int, key=None) -> np.ndarray:
        """(H, W, 3) enhanced frame `number` -> the temporally filtered (H, W, 3) float32."""
        start = time.perf_counter()
        # A copy: the runtime may hand out a buffer it reuses for the next frame.
        current = np.array(np.asarray(enhanced).transpose(2, 0, 1), np.float32, order="C")
        reason = self._reset_reason(frame, current.shape[1:], number, key)
        if reason is None:
            # Row bands in parallel: every step is a memory-bound numpy loop that releases the GIL.
            bands = _bands(current.shape[1], max(_pool()._max_workers, current.shape[1] // BAND_ROWS))
            masks = list(_pool().map(lambda rows: self._history_mask(frame, rows), bands))
            fraction = sum(int(keep.sum()) for _, keep in masks) / current[0].size
            if fraction < self.settings.cut_fraction:
                reason = f"cut: {fraction:.0%} of the pixels have history"
        if reason is None:
            out, age = np.empty_like(current), np.empty(current.shape[1:], np.float32)
            list(_pool().map(lambda job: self._blend(current, job[0], *job[1], out, age),
                             zip(bands, masks)))
            self.last_history_fraction = fraction
        else:
            out, age = current, np.zeros(current.shape[1:], np.float32)
            self.last_history_fraction = 0.0
        self.last_reset = reason
        self._remember(frame, out, number, key)
        self.age = age
        self.last_ms = (time.perf_counter() - start) * 1e3
        return out.transpose(1, 2, 0)

    def _reset_reason(self, frame, size, number, key) -> str | None:
        if "motion" not in frame:
            return "the frame has no Vector pass"
        if self.history is None:
            return "first frame"
        if key != self.key:
            return f"new shot ({self.key} -> {key})"
        if tuple(size) != self.history.shape[1:]:
            return f"size changed ({self.history.shape[1:]} -> {tuple(size)})"
        if number != self.number + 1:
            return f"frame {self.number} -> {number} is not the next frame"
        return None

    def _history_mask(self, frame, rows: slice) -> tuple[Sampler, np.ndarray]:
        """(sampler, keep) for a band of rows: keep is True where the history may be used."""
        s, prev = self.settings, self.previous
        b_col, b_row = backward_flow(frame["motion"][rows])
        sampler = Sampler(b_col, b_row, self.history.shape[1:], rows.start)
        keep = sampler.inside
        # Bilinear, as the history is read: across a motion edge f~ mixes both sides and fails.
        f_col, f_row = sampler.bilinear(prev["f_col"]), sampler.bilinear(prev["f_row"])
        keep &= ~fb_inconsistent(b_col, b_row, f_col, f_row, s.fb_relative, s.fb_absolute)
        ids = id_plane(frame, rows)
        if ids is not None and prev.get("ids") is not None:
            keep &= sampler.all_taps_equal(prev["ids"], ids)
        keep &= ~motion_edge(frame["motion"], rows)
        if "depth" in frame and prev.get("depth") is not None:
            depth = np.minimum(frame["depth"][rows, :, 0], schema.DEPTH_FAR)
            ok = np.abs(sampler.nearest(prev["depth"]) - depth) <= s.depth_tolerance * depth
            keep &= _or_at_some_tap(ok, keep, lambda pixels: _depth_in_tap_range(
                sampler.taps(prev["depth"], pixels), depth.reshape(-1)[pixels], s.depth_tolerance))
        if "normal" in frame and prev.get("normal") is not None:
            normal = frame["normal"][rows]
            # Scaled by |n|^2: the background has no normal (0, 0, 0) and must pass.
            limit = s.normal_cos * sum(normal[..., i] ** 2 for i in range(3))
            ok = sum(sampler.nearest(prev["normal"][i]) * normal[..., i] for i in range(3)) >= limit
            flat_normal = normal.reshape(-1, 3)
            keep &= _or_at_some_tap(ok, keep, lambda pixels: np.maximum.reduce(
                [(tap * flat_normal[pixels].T).sum(0) for tap in sampler.taps(prev["normal"], pixels)])
                >= limit.reshape(-1)[pixels])
        return sampler, keep

    def _blend(self, current, rows: slice, sampler: Sampler, keep, out, age_out) -> None:
        """out = current + (1 - a) (clamp(history) - current), a = max(1 / (age + 1), min_weight),
        for one band of rows; the clamp box is the current frame's neighbourhood range."""
        age = age_out[rows]
        np.add(sampler.nearest(self.age), 1.0, out=age)
        age *= keep
        history_weight = 1.0 - np.maximum(1.0 / (age + 1.0), self.settings.min_weight)
        r = self.settings.clamp_radius
        halo = slice(max(rows.start - r, 0), min(rows.stop + r, current.shape[1]))
        low, high = box_min_max(current[:, halo], r)
        inner = slice(rows.start - halo.start, rows.start - halo.start + age.shape[0])
        for c in range(3):
            history = sampler.bilinear(self.history[c])
            np.minimum(history, high[c, inner], out=history)
            np.maximum(history, low[c, inner], out=history)
            history -= current[c, rows]
            history *= history_weight
            np.add(current[c, rows], history, out=out[c, rows])

    def _remember(self, frame, out, number, key) -> None:
        self.history, self.number, self.key = out, number, key
        self.age = np.zeros(out.shape[1:], np.float32)
        if "motion" not in frame:
            self.history = None     # nothing to reproject the next frame with
            return
        f_col, f_row = forward_flow(frame["motion"])
        depth = frame.get("depth")
        normal = frame.get("normal")
        self.previous = {
            # Copies: a caller's pass buffers may be reused for the next frame.
            "f_col": np.array(f_col, np.float32), "f_row": np.array(f_row, np.float32),
            "ids": id_plane(frame),
            "depth": None if depth is None else np.minimum(depth[..., 0], schema.DEPTH_FAR),
            "normal": None if normal is None else np.ascontiguousarray(normal.transpose(2, 0, 1)),
        }

    # -- saving and restoring, so a resumed sequence continues with the same history ---------

    def state(self) -> dict[str, np.ndarray]:
        """The history as arrays (np.savez); the previous frame's passes are not included:
        `restore` reads them from that frame again."""
        if self.history is None:
            return {}
        return {"number": np.int64(self.number), "history": self.history, "age": self.age}

    def restore(self, state, previous_frame: schema.Frame, key=None) -> None:
        """Continue after frame `state['number']`, whose passes are `previous_frame`."""
        self.reset()
        history = np.asarray(state["history"], np.float32)
        self._remember(previous_frame, history, int(state["number"]), key)
        self.age = np.asarray(state["age"], np.float32)
