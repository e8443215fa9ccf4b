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

The history is read bilinearly, but only from the taps that show the pixel's surface
(renormalised, as in SVGF's reprojection), so object edges keep their history without mixing
in the other side; a pixel with no such tap gets the per-frame result. A tap fails where:
- its object/class id differs;
- its depth differs by more than `depth_tolerance` (relative);
- the forward-backward check of Lai et al. 2018 fails with the tap's forward flow f~:
  |b + f~|^2 > 0.01 (|b|^2 + |f~|^2) + 0.5, b the flow to t-1 at p. Two objects of one class
  moving differently fail here.
A bilinear read blurs a little, and a history read every frame would blur more and more (fine
textures smear): the colour is recorded pre-sharpened by what the next frame's read will blur
(`presharpen`; its fraction is known from the forward flow). The history weight
is scaled by the share of the bilinear footprint that matched, and next to a motion edge, where
a pixel's colour mixes two motions (anti-aliasing) that no tap follows, it is capped at
`edge_history_weight`. Where only part of the footprint matched (an anti-aliased edge) part of
the history is read bilinearly from all taps, unless a left-out tap is nearer (a disocclusion).
Where the view closes in on a surface its history, resampled up, has less detail: the weight
falls with the area ratio (`magnification_power`). A one-frame history counts as 1 +
`start_trust` frames at its first blend. Where the light on a surface changes (a moving lamp or
shadow), which the clamp cannot see on a lit gradient or a textured surface, the history fades
out: the local brightness change from it, averaged over frames, passes `lighting_floor`
(`lighting_*`).
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
USED_PASSES = ("motion", "depth") + ID_PASSES
# The previous frame: its output and age as one 16-byte record per pixel (one gather per tap,
# a numpy fast path), and what the tap tests read as planes: each test then runs on contiguous
# (4 taps, N) arrays (a field strided out of a record costs ~8x more per operation).
RGB, AGE = slice(0, 3), 3
F_COL, F_ROW, DEPTH, ID, ONE_SURFACE, LIGHTING = 0, 1, 2, 3, 4, 5
FIELDS = 6
LUMINANCE = np.array([0.2126, 0.7152, 0.0722], np.float32)     # Rec. 709
# Rows per band of work: a band's temporaries stay in the CPU cache; whole-frame numpy steps
# are memory-bound.
BAND_ROWS = 64


@dataclass(frozen=True)
class TemporalSettings:
    # Floor of the current frame's weight: the history is a running mean of at most
    # 1/min_weight frames, so a lighting change fades in within a few frames.
    min_weight: float = 0.1
    # A history of one frame (the per-frame result of a shot's first frame, or of a pixel whose
    # history restarted) counts as 1 + `start_trust` frames at its first blend. A running mean
    # puts ~57 % of an 8-frame shot's flicker into its first frame pair; frame 2 then holds a
    # bit more of frame 1's noise, and the frames after are a plain running mean again.
    # Session 12, 26 validation shots: 0 / 1 / 2 / 3 gave a warping error of 0.967 / 0.909 /
    # 0.889 / 0.880x the reference's on the mean (worst 3.22 / 2.95 / 2.83 / 2.77x) and PSNR
    # +0.18 / +0.12 / +0.08 / +0.05 dB over per-frame enhancement (shots more than 0.2 dB below
    # it: 5 / 5 / 5 / 6); the shots meeting both targets 15 / 16 / 17 / 17 of 26. Counting the
    # first frame as more for the whole shot instead (session 11) cost more PSNR for the same
    # flicker (docs/temporal.md).
    start_trust: float = 2.0
    # A pixel whose footprint only partly shows its surface (some taps left out) is mostly an
    # anti-aliased edge: its colour mixes both sides, and so did the previous frame's at the
    # same place. This share of its history is read bilinearly from all 4 taps (the rest from
    # its own side's), except where a left-out tap is nearer than the pixel: a disocclusion,
    # where what moved away must not bleed into what it uncovers. Such pixels (3-16 % of a
    # validation frame) carried 40-60 % of the flicker of the shots that missed 1.1x. Session
    # 12, 26 validation shots, 0 / 0.25 / 0.5 / 0.75: warping error 0.889 / 0.842 / 0.810 /
    # 0.789x the reference's on the mean, PSNR over per-frame +0.08 / +0.12 / +0.12 / +0.11 dB,
    # shots meeting both targets 17 / 18 / 18 / 18 (docs/temporal.md). With the pre-sharpened
    # history (session 13, 30 validation shots), 0.5 / 0.65 / 0.75 / 0.85 / 1: warping error
    # 0.882 / 0.861 / 0.850 / 0.842 / 0.832x, PSNR +0.354 / +0.364 / +0.363 / +0.359 / +0.345
    # dB, shots meeting both 23 / 23 / 24 / 23 / 23.
    partial_footprint_bilinear: float = 0.75
    # Where the camera closes in (a dolly, a zoom), a surface covers more pixels than a frame ago:
    # its history was resampled up, holds less detail than the frame, and every frame adds more
    # of that blur. The history weight is scaled by det(J)^p, J the Jacobian of the map from a
    # pixel to its place a frame ago (the area that surface had then, per pixel now; 1 when
    # nothing is magnified). The worst validation shot, a street the camera drives along (det
    # 0.88 per frame), was 4.2 dB below per-frame enhancement; fed its 512-spp reference frames
    # as the per-frame input, the filter gave them back at 36-41 dB (38-42 dB at p = 2). Session
    # 12, 26 validation shots, p = 0 / 2 / 4 / 8: that shot -4.22 / -2.99 / -2.02 / -0.94 dB,
    # PSNR over per-frame +0.12 / +0.27 / +0.37 / +0.48 dB on the mean, warping error 0.810 /
    # 0.848 / 0.889 / 0.973x the reference's, shots meeting both targets 18 / 20 / 19 / 18.
    magnification_power: float = 2.0
    # The history is clamped to the current frame's (2 r + 1)^2 neighbourhood range. A denoised
    # frame is smooth, so a 3x3 range is narrow and lets the denoiser's frame-to-frame blotches
    # through; they are several pixels wide. Chosen on validation shots (seeds 20200+), not on
    # the held-out ones: 1 -> 2 -> 4 -> 6 gave the interior 1.53 -> 1.34 -> 1.28 -> 1.27x of the
    # reference's warping error (session 5's filter); with the per-tap filter 3 and 4 gave the
    # same numbers and 3 is one window step less (docs/temporal.md).
    clamp_radius: int = 3
    depth_tolerance: float = 0.1      # relative; camera moves change depth a few % per frame
    # History weight at most this next to a motion edge. Chosen on the validation shots (seeds
    # 20200+ at 128x64, 20400+ at 256x128; docs/temporal.md): 0.1 / 0.2 / 0.3 gave the worst
    # shot 1.14 / 1.06 / 1.01x of the reference's warping error, and the error where the
    # metric finds no valid past (disocclusions, motion edges) +2 / +9 / +25 % of per-frame's.
    edge_history_weight: float = 0.2
    # A bilinear read at fraction f of a pixel blurs by ~f (1 - f) / 2 times the second
    # difference along that axis, and a history is read every frame: fine textures smear (a
    # 512x256 interior's wallpaper: -1.13 dB against per-frame enhancement by frame 8). The
    # colour is recorded with `presharpen` times that blur taken off in advance, f from the
    # pixel's forward flow (where the next frame reads it). The pair never amplifies a
    # frequency, so it stays stable over any number of frames. Session 13, 30 validation shots
    # (with partial_footprint_bilinear 0.75): shots meeting both targets 24, against 23 with the
    # Catmull-Rom reads it replaces (sessions 6-12, where a 2x2 block's contrast passed 0.05);
    # PSNR over per-frame +0.36 against +0.27 dB on the mean, worst -2.58 against -2.99 dB;
    # warping error 0.850 against 0.832x. 0 turns it off (docs/temporal.md).
    presharpen: float = 1.0
    # Lighting that changes over a still surface (a moving lamp or shadow) keeps the old light
    # in the history: the clamp range of a lit gradient or a soft shadow still holds it. The
    # filter follows the local brightness change from the history to the current frame (the
    # mean over (2 r + 1)^2 pixels, in square-root luminance ~ display units), averaged over
    # frames: the denoiser's blotches change sign from frame to frame, a lighting change does
    # not. Past `lighting_floor` the history fades out over the next 1 / lighting_gain and its
    # age restarts. Chosen on the validation shots (docs/temporal.md): the moving-shadow table
    # top -3.8 -> -0.9 dB against per-frame, the moving lamp -2.9 -> -0.9 dB, the worst warping
    # error 1.16 -> 1.17x. lighting_gain 0 turns it off.
    # Each pixel's change counts at most `lighting_pixel_limit` in the mean, so that a few
    # flickering pixels far brighter than their surroundings (a street lamp, a lit window, the
    # edge of a highlight) cannot pass the test on their own; a lighting change moves many
    # pixels. Session 9, 26 validation shots: limit 0.15 with the floor 0.015 -> 0.0125 took a
    # 4-spp night street from 2.08 to 1.02x of the reference's warping error, the mean from 1.03
    # to 0.96x, at the same mean PSNR (the moving shadow and lamp -0.9 -> -1.1 dB).
    lighting_radius: int = 6
    lighting_floor: float = 0.0125
    lighting_pixel_limit: float = 0.15
    lighting_gain: float = 80.0
    lighting_memory: float = 0.3      # weight of the newest frame's change in the average
    cut_fraction: float = 0.3         # fewer pixels with history than this: treat as a cut
    fb_relative: float = 0.01         # Lai et al.'s forward-backward thresholds
    fb_absolute: float = 0.5


def settings_for(follow_lighting: bool = True) -> TemporalSettings:
    """The default settings; `follow_lighting` False keeps the history through brightness
    changes (steadier where the lighting of a shot is fixed, but a moving shadow or lamp lags)."""
    return TemporalSettings() if follow_lighting else TemporalSettings(lighting_gain=0.0)


def backward_flow(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector pass at t -> (d_col, d_row) to the same point at t-1, in array coordinates."""
    return motion[..., 0], -motion[..., 1]


def forward_flow(motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vector pass at t -> (d_col, d_row) to the same point at t+1, in array coordinates."""
    return -motion[..., 2], motion[..., 3]


class Sampler:
    """The 4 bilinear taps of (row + d_row, col + d_col) on a (H, W) grid, for the band of rows
    `row0 .. row0 + len(d_row)` of that grid: `index` (4, N) flat indices into the grid and
    `weight` (4, N) bilinear weights, N the band's pixels (tap-major: every per-tap step runs
    on contiguous rows)."""

    def __init__(self, d_col: np.ndarray, d_row: np.ndarray, grid: tuple[int, int], row0: int = 0):
        h, w = grid
        self.shape = d_col.shape
        cols = np.add(np.arange(w, dtype=np.float32)[None, :], d_col, dtype=np.float32).ravel()
        rows = np.add(np.arange(row0, row0 + self.shape[0], dtype=np.float32)[:, None], d_row,
                      dtype=np.float32).ravel()
        self.inside = ((cols >= 0) & (cols <= w - 1) & (rows >= 0) & (rows <= h - 1)).reshape(self.shape)
        # The top-left tap stays in the last row/column but one, so all four taps exist
        # (the last row/column is then read with weight 1 from the far taps).
        c0 = _clip(np.floor(cols), 0, max(w - 2, 0))
        r0 = _clip(np.floor(rows), 0, max(h - 2, 0))
        fc = _clip(np.subtract(cols, c0, out=cols), 0, 1)
        fr = _clip(np.subtract(rows, r0, out=rows), 0, 1)
        right, down = min(w - 1, 1), (w if h > 1 else 0)
        self.index = np.empty((4, cols.size), np.intp)
        np.add(r0.astype(np.intp) * w, c0.astype(np.intp), out=self.index[0])
        for tap, offset in enumerate((right, down, down + right), start=1):
            np.add(self.index[0], offset, out=self.index[tap])
        self.weight = np.empty((4, cols.size), np.float32)
        np.multiply(1 - fc, 1 - fr, out=self.weight[0])
        np.multiply(fc, 1 - fr, out=self.weight[1])
        np.multiply(1 - fc, fr, out=self.weight[2])
        np.multiply(fc, fr, out=self.weight[3])

    def bilinear(self, plane: np.ndarray) -> np.ndarray:
        values = np.take(plane.ravel(), self.index)
        return np.einsum("kn,kn->n", values, self.weight).reshape(self.shape)


def _clip(values: np.ndarray, low, high) -> np.ndarray:
    """np.clip in place, as a maximum and a minimum: the same values, ~1.5x faster in numpy 1.x."""
    return np.minimum(np.maximum(values, low, out=values), high, out=values)


def fb_inconsistent(b_col, b_row, f_col, f_row, relative=0.01, absolute=0.5) -> np.ndarray:
    """Lai et al.'s occlusion test: True where the backward flow b and the forward flow
    f~ (read at p + b) do not cancel out."""
    sum_sq = (b_col + f_col) ** 2 + (b_row + f_row) ** 2
    mag_sq = b_col ** 2 + b_row ** 2 + f_col ** 2 + f_row ** 2
    return sum_sq > relative * mag_sq + absolute


def motion_edge(motion: np.ndarray, rows: slice) -> np.ndarray:
    """True next to a motion boundary (Lai et al.'s |grad b|^2 > 0.01 |b|^2 + 0.002, with the
    3x3 range of b, ~2x the gradient, as the measure), for a band of rows of the Vector pass.
    Anti-aliased pixels there mix two motions; the filter caps their history weight."""
    halo, inner = _halo(rows, 1, motion.shape[0])
    # XY (b up to the sign of its row, which a range ignores), planar and contiguous: the
    # window steps then run as long loops.
    flow = np.ascontiguousarray(motion[halo, :, :2].transpose(2, 0, 1))
    low, high = box_min_max(flow, 1)
    spread = high[:, inner] - low[:, inner]
    spread *= spread
    magnitude = flow[:, inner] ** 2
    return spread[0] + spread[1] > 0.04 * (magnitude[0] + magnitude[1]) + 0.008


def magnification_weight(motion: np.ndarray, rows: slice, power: float) -> np.ndarray:
    """(N,) min(det J, 1)^power for a band of rows of the Vector pass, J the Jacobian of
    p -> p + b(p) (central differences): the area a pixel's surface had a frame ago, < 1 where
    the view closes in on it (TemporalSettings.magnification_power)."""
    halo, inner = _halo(rows, 1, motion.shape[0])
    b_col, b_row = backward_flow(motion[halo])
    det = _central_difference(b_col, axis=1)
    det += 1.0
    row_by_row = _central_difference(b_row, axis=0)
    row_by_row += 1.0
    det *= row_by_row
    cross = _central_difference(b_col, axis=0)
    cross *= _central_difference(b_row, axis=1)
    det -= cross
    return (_clip(det[inner], 0.0, 1.0) ** np.float32(power)).ravel()


def _central_difference(plane: np.ndarray, axis: int) -> np.ndarray:
    """np.gradient along `axis` (central differences, one-sided at the ends), and 0 along an axis
    of one element, where np.gradient raises."""
    if plane.shape[axis] < 2:
        return np.zeros(plane.shape, np.float32)
    return np.gradient(plane, axis=axis)


def id_plane(frame: schema.Frame, rows: slice = slice(None)) -> np.ndarray | None:
    key = next((k for k in ID_PASSES if k in frame), None)
    return None if key is None else np.rint(frame[key][rows, :, 0])


def box_sum(plane: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2 radius + 1)^2 pixels around each pixel of a (H, W) plane that exist."""
    return _column_sums(_column_sums(plane, radius).T, radius).T


def _column_sums(plane: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the 2 radius + 1 rows around each row that exist, from running sums: the sum
    up to row i + radius (the last row past the end) minus the sum before row i - radius."""
    height = plane.shape[0]
    running = np.zeros((height + 2 * radius + 1,) + plane.shape[1:], np.float32)
    np.cumsum(plane, axis=0, out=running[radius + 1:height + radius + 1])
    running[height + radius + 1:] = running[height + radius]
    return running[2 * radius + 1:] - running[:height]


def block_sums(plane: np.ndarray) -> np.ndarray:
    """(H, W) -> (ceil(H / 2), ceil(W / 2)) sums of its 2x2 blocks (past the edge: 0)."""
    height, width = plane.shape
    if height % 2 or width % 2:
        padded = np.zeros((height + height % 2, width + width % 2), np.float32)
        padded[:height, :width] = plane
        plane = padded
    pairs = plane[0::2] + plane[1::2]
    return pairs[:, 0::2] + pairs[:, 1::2]


def upsampled(blocks: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Each value of `blocks` over its 2x2 block of a plane of `shape`."""
    out = np.empty((2 * blocks.shape[0], 2 * blocks.shape[1]), np.float32)
    out[0::2, 0::2] = blocks
    out[0::2, 1::2] = blocks
    out[1::2] = out[0::2]
    return out[:shape[0], :shape[1]]


def brightness(rgb: np.ndarray) -> np.ndarray:
    """(3, N) linear colour -> (N,) square-root luminance (~ display units)."""
    luminance = rgb[0] * LUMINANCE[0]
    luminance += rgb[1] * LUMINANCE[1]
    luminance += rgb[2] * LUMINANCE[2]
    return np.sqrt(np.maximum(luminance, 0.0, out=luminance), out=luminance)


def _bands(height: int, count: int) -> list[slice]:
    edges = np.linspace(0, height, max(1, min(count, height)) + 1).astype(int)
    return [slice(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def box_min_max(planes: np.ndarray, radius: int = 1, axes=(-2, -1)) -> tuple[np.ndarray, np.ndarray]:
    """(2 radius + 1)^2 minimum and maximum over the two `axes` (rows, columns) of `planes`
    (edges use the pixels that exist). Fastest on planar (C, H, W) data: a shift along a
    contiguous axis is then one long loop."""
    return _box(planes, np.minimum, radius, axes), _box(planes, np.maximum, radius, axes)


def band_min_max(planes: np.ndarray, rows: slice, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """`box_min_max` of (C, H, W) planes, for a band of their rows only (read with the rows
    around it that exist)."""
    halo, inner = _halo(rows, radius, planes.shape[1])
    low, high = box_min_max(planes[:, halo], radius)
    return low[:, inner], high[:, inner]


def _halo(rows: slice, radius: int, height: int) -> tuple[slice, slice]:
    """The band `rows` with the rows within `radius` of it that exist, and where the band sits
    in that."""
    halo = slice(max(rows.start - radius, 0), min(rows.stop + radius, height))
    return halo, slice(rows.start - halo.start, rows.stop - halo.start)


def _box(planes: np.ndarray, op, radius: int, axes) -> np.ndarray:
    """Separable sliding-window `op` along the columns, then the rows."""
    return _window(_window(planes, op, axes[1] % planes.ndim, radius), op, axes[0] % planes.ndim, radius)


def _window(values: np.ndarray, op, axis: int, radius: int) -> np.ndarray:
    """`op` over the values within `radius` of each one along `axis` (those that exist).

    The window starting at i of width w + s (s <= w) is op(window_w[i], window_w[i + s]), so
    width 7 takes 3 operations (1 -> 2 -> 4 -> 7); near the far end a window simply holds the
    values that exist. The centred window at i is the one starting at i - radius: written
    `radius` places further along a buffer, it is read back in place, and the first `radius`
    (which start before the first value) are running `op`s of the first values. No padded copy
    is made: the first step reads `values` itself."""
    n = values.shape[axis]
    if radius < 1 or n < 2:
        return values

    def along(array, start, stop):
        index = [slice(None)] * array.ndim
        index[axis] = slice(start, stop)
        return array[tuple(index)]
    shape = list(values.shape)
    shape[axis] = n + radius
    window, spare = np.empty(shape, values.dtype), np.empty(shape, values.dtype)
    source, offset, width, target = values, 0, 1, 2 * radius + 1
    while width < target:
        shift = min(width, target - width, n)
        op(along(source, offset, offset + n - shift), along(source, offset + shift, offset + n),
           out=along(window, radius, radius + n - shift))
        along(window, radius + n - shift, radius + n)[...] = along(source, offset + n - shift, offset + n)
        source, offset, width = window, radius, width + shift
        window, spare = spare, window
    # The first `radius` windows: running `op`s (a loop of slices; op.accumulate along rows is
    # ~10x slower).
    running, last = along(values, 0, 1).copy(), min(2 * radius, n) - 1
    for j in range(1, last + 1):
        op(running, along(values, j, j + 1), out=running)
        if j >= radius:
            along(source, j - radius, j - radius + 1)[...] = running
    along(source, max(last + 1 - radius, 0), radius)[...] = running   # windows past the far end
    return along(source, 0, n)


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


@dataclass
class _Surface:
    """What the tap tests compare, for `rows` rows of one frame ((N,) depth and ids; None where
    the frame lacks the pass). Normals are not compared: a rotating object's normals turn with
    it, and a 25-degree test threw away the history of 1 % of the pixels (curved and
    anti-aliased ones) that carried a quarter of the flicker on the validation shots."""
    depth: np.ndarray | None
    ids: np.ndarray | None
    rows: int = 0

    @classmethod
    def of(cls, frame: schema.Frame, rows: slice = slice(None)) -> "_Surface":
        depth = np.minimum(frame["depth"][rows, :, 0], schema.DEPTH_FAR).ravel() if "depth" in frame else None
        ids = id_plane(frame, rows)
        return cls(depth, None if ids is None else ids.ravel(),
                   len(range(*rows.indices(frame["motion"].shape[0]))))

    def subset(self, pixels) -> "_Surface":
        return _Surface(*(None if value is None else value[pixels] for value in (self.depth, self.ids)))


def _depths_close(depth: np.ndarray, reference: np.ndarray, tolerance: float) -> np.ndarray:
    """Within `tolerance` of the reference depth, relative to it."""
    return np.abs(depth - reference) <= tolerance * reference


def _without_broken_vectors(frame: schema.Frame) -> tuple[schema.Frame, str | None]:
    """A frame whose Vector pass holds NaN or inf, as one without it (its history restarts and
    nothing of it is kept for the next frame) and the reason; else the frame as it is."""
    motion = frame.get("motion")
    bad = 0 if motion is None else schema.non_finite_count(motion)
    if not bad:
        return frame, None
    return ({key: value for key, value in frame.items() if key != "motion"},
            f"the Vector pass has {bad} NaN/inf value(s)")


def _one_surface_blocks(surface: "_Surface", count: int, width: int, s: TemporalSettings) -> np.ndarray:
    """(rows x W,) True where the 2x2 block with the pixel at its top left shows one surface:
    the pixel is like its right and lower neighbours and the lower one like its right one,
    with the same id and depths within half the tolerance. The next frame
    tests the pixels that read such a block against its top-left tap alone, with half the
    tolerances (so about within them of every tap), instead of all four: most pixels read one
    surface, and the per-tap tests then run on the few others. `surface` holds the band's
    `count` rows and the row below if there is one. Last row and column of the frame: False."""
    m = min(count, surface.rows - 1)                     # rows that have a row below
    same = np.zeros((count, width), bool)
    if m <= 0 or width < 2:
        return same.ravel()
    depth, ids = (None if p is None else p.reshape(-1, width) for p in (surface.depth, surface.ids))

    def alike(a: tuple, b: tuple) -> np.ndarray:
        """Pixels at slices a (rows, cols) like those at b."""
        ok = np.ones((a[0].stop - a[0].start, a[1].stop - a[1].start), bool)
        if depth is not None:
            ok &= _depths_close(depth[b], depth[a], s.depth_tolerance / 2)
        if ids is not None:
            ok &= ids[b] == ids[a]
        return ok

    cols, right = slice(0, width - 1), slice(1, width)
    right_alike = alike((slice(0, m + 1), cols), (slice(0, m + 1), right))      # (m + 1, W - 1)
    down_alike = alike((slice(0, m), cols), (slice(1, m + 1), cols))            # (m, W - 1)
    same[:m, :width - 1] = right_alike[:m] & down_alike & right_alike[1:m + 1]
    return same.ravel()


def presharpened(image: np.ndarray, f_col: np.ndarray, f_row: np.ndarray, rows: slice,
                 strength: float) -> np.ndarray:
    """A band of rows of the (3, H, W) `image` with `strength` times the blur of a bilinear read
    taken off in advance (TemporalSettings.presharpen) -> (3, rows, W). A read at fraction f
    gives the value there plus ~f (1 - f) / 2 times the second difference along that axis; f is
    the fractional part of the band's forward flow (`f_col`, `f_row`: (rows, W)), where the
    next frame will read each pixel. The frame's first and last rows and columns are kept."""
    height = image.shape[1]
    halo, inner = _halo(rows, 1, height)
    block = image[:, halo]               # the band and the rows around it that exist
    band = block[:, inner]
    out = band.copy()
    out[:, :, 1:-1] -= np.diff(band, 2, axis=2) * _blur_share(f_col[:, 1:-1], strength)
    # Down the columns: the rows of `block` but its first and last are the band's rows with a
    # row above and below (all but the frame's first and last).
    inside = slice(int(rows.start == 0), band.shape[1] - int(rows.stop == height))
    out[:, inside] -= np.diff(block, 2, axis=1) * _blur_share(f_row[inside], strength)
    return out


def _blur_share(flow: np.ndarray, strength: float) -> np.ndarray:
    """strength f (1 - f) / 2, f the fractional part of `flow`."""
    f = flow - np.floor(flow)
    f *= 1.0 - f
    f *= np.float32(0.5 * strength)
    return f


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
        self.past = None            # (H * W, 4): previous output and age
        self.fields = None          # (FIELDS, H * W): previous forward flow, depth, id, one surface,
                                    # lighting change
        self.past_has = frozenset()  # which of depth / ids the fields hold
        self.last_reset, self.last_history_fraction, self.last_ms = None, 0.0, 0.0
        self._spare = (None, None)

    @property
    def history(self) -> np.ndarray | None:
        """(H, W, 3) previous output, as recorded for the next frame's read (pre-sharpened,
        TemporalSettings.presharpen)."""
        return None if self.past is None else self.past[:, RGB].reshape(*self.size, 3)

    @property
    def age(self) -> np.ndarray | None:
        """(H, W) frames accumulated in the history."""
        return None if self.past is None else self.past[:, AGE].reshape(self.size)

    def apply(self, frame: schema.Frame, enhanced: np.ndarray, number: int, key=None) -> np.ndarray:
        """(H, W, 3) enhanced frame `number` -> the temporally filtered (H, W, 3) float32."""
        start = time.perf_counter()
        frame, broken_vectors = _without_broken_vectors(frame)
        # Colour is planar, (3, H, W), as the runtime returns it (then without a copy): every
        # per-channel step is then one long contiguous loop (interleaved, ~3x slower).
        current = np.ascontiguousarray(np.asarray(enhanced, np.float32).transpose(2, 0, 1))
        size = current.shape[1:]
        out = np.empty(current.shape, np.float32)   # new arrays: the runtime may reuse its buffer
        past, fields = self._spare_buffers(size)
        reason = broken_vectors or self._reset_reason(frame, size, number, key)
        if reason is None:
            # Row bands in parallel: every step is a memory-bound numpy loop that releases the GIL.
            # The layout depends on the height alone: the lighting test's means stop at a band's
            # edge, so the output must not depend on the number of threads.
            bands = _bands(size[0], size[0] // BAND_ROWS)
            counts = list(_pool().map(
                lambda rows: self._filter_band(frame, current, rows, out, past, fields), bands))
            fraction = sum(counts) / (size[0] * size[1])
            if fraction < self.settings.cut_fraction:
                reason = f"cut: {fraction:.0%} of the pixels have history"
        if reason is None:
            self.last_history_fraction = fraction
        else:
            out[:] = current
            if "motion" in frame:
                self._record(frame, slice(0, size[0]), 0.0, past, fields, _Surface.of(frame))
            self.last_history_fraction = 0.0
        if "motion" in frame:
            self._record_colour(out, past, fields)
        self.last_reset = reason
        self._spare = (self.past, self.fields)
        self._remember(frame, past, fields, size, number, key)
        self.last_ms = (time.perf_counter() - start) * 1e3
        return out.transpose(1, 2, 0)

    def _spare_buffers(self, size) -> tuple[np.ndarray, np.ndarray]:
        """Records and fields to write this frame's into: the ones two frames old. Fresh ones
        cost a page fault per 4 KiB at the first write (~25 % of the step at 1080p)."""
        past, fields = self._spare
        pixels = size[0] * size[1]
        if past is None or past.shape[0] != pixels:
            past, fields = np.empty((pixels, 4), np.float32), np.empty((FIELDS, pixels), np.float32)
        return past, fields

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

    def _filter_band(self, frame, current, rows: slice, out, past_out, fields_out) -> int:
        """Blend the history into one band of rows of `out` ((3, H, W), as `current`), write
        the band's ages and fields (`_record`) -> how many of its pixels kept their history."""
        # With the row below: the one-surface flags of the band's last row need it.
        below = _Surface.of(frame, slice(rows.start, min(rows.stop + 1, self.size[0])))
        history, keep, total, light_change = self._reproject(frame, rows, below)
        age = (history[:, AGE] + 1.0) * keep
        history_weight = 1.0 - np.maximum(1.0 / (age + 1.0 + self._start_trust(age, keep)),
                                          self.settings.min_weight)
        if self.settings.magnification_power:
            history_weight *= magnification_weight(frame["motion"], rows,
                                                   self.settings.magnification_power)
        # A pixel whose footprint only partly shows its surface sits on that surface's edge,
        # where its colour also holds the other side: its history counts only that much.
        history_weight *= np.minimum(total, 1.0)
        # Next to a motion edge a pixel's colour mixes two motions (anti-aliasing), which no
        # tap can follow: there the history only halves the flicker, it does not smear.
        edge = motion_edge(frame["motion"], rows).ravel()
        np.minimum(history_weight, self.settings.edge_history_weight, out=history_weight, where=edge)
        cur = current[:, rows].reshape(3, -1)
        if self.settings.lighting_gain > 0:
            light_change, gate = self._lighting_change(cur, history, keep, light_change, rows.stop - rows.start)
            history_weight *= gate
            age *= gate
        band_out = out[:, rows].reshape(3, -1)
        self._clamp(history[:, RGB].T, current, rows, out=band_out)
        band_out -= cur
        band_out *= history_weight
        band_out += cur
        self._record(frame, rows, age, past_out, fields_out, below, light_change)
        return int(keep.sum())

    def _start_trust(self, age, keep) -> np.ndarray | float:
        """How many frames more a one-frame history counts (TemporalSettings.start_trust): all
        of them at age 1, none from age 2 (ages read bilinearly next to a restart lie between)."""
        if not self.settings.start_trust:
            return 0.0
        return _clip(2.0 - age, 0.0, 1.0) * keep * np.float32(self.settings.start_trust)

    def _lighting_change(self, cur, history, keep, light_change, count: int) -> tuple[np.ndarray, np.ndarray]:
        """The band's brightness change from the history, averaged locally and over frames
        (`light_change`: the previous average at the pixels' past positions) -> the new average and
        the share of the history to keep (TemporalSettings.lighting_*)."""
        s = self.settings
        seen = keep.reshape(count, -1).astype(np.float32)
        change = brightness(cur)
        change -= brightness(history[:, RGB].T)
        change = change.reshape(count, -1)
        _clip(change, -s.lighting_pixel_limit, s.lighting_pixel_limit)
        change *= seen
        # The local mean over the pixels with history, on 2x2 blocks (a quarter of the work;
        # the mean is smooth anyway).
        blocks, radius = block_sums(seen), max(s.lighting_radius // 2, 1)
        local = box_sum(block_sums(change), radius)
        local /= box_sum(blocks, radius) + 1e-6
        local = upsampled(local, change.shape)
        light_change = light_change * (1.0 - s.lighting_memory) + s.lighting_memory * local.ravel()
        gate = np.abs(light_change) - s.lighting_floor
        gate *= -s.lighting_gain
        gate += 1.0
        return light_change, _clip(gate, 0.0, 1.0)

    def _reproject(self, frame, rows: slice, below: _Surface):
        """The previous output and age at the band's pixels, from the taps that show their
        surface -> ((N, 4) history, (N,) kept, (N,) matched share of the footprint, (N,) previous
        lighting change)."""
        b_col, b_row = backward_flow(frame["motion"][rows])
        sampler = Sampler(b_col, b_row, self.size, rows.start)
        surface = below.subset(slice(0, b_col.size))
        weight = sampler.weight * self._taps_match(sampler, b_col.ravel(), b_row.ravel(), surface)
        total = weight[0] + weight[1] + weight[2] + weight[3]
        keep = sampler.inside.ravel() & (total > 0)
        weight /= np.where(keep, total, 1.0)
        taps = np.take(self.past, sampler.index, axis=0)               # (4 taps, N, RGB + age)
        history = np.einsum("kn,knc->nc", weight, taps)                 # 0 where not kept
        self._mix_in_other_side(history, taps, sampler, keep, total, surface)
        # Smooth: the nearest tap will do (and nothing to read with the lighting test off).
        light_change = (np.take(self.fields[LIGHTING], sampler.index[0]) * keep
                        if self.settings.lighting_gain > 0 else 0.0)
        return history, keep, total, light_change

    def _mix_in_other_side(self, history, taps, sampler: Sampler, keep, total, surface: _Surface) -> None:
        """Where a kept pixel's footprint only partly shows its surface, read
        `partial_footprint_bilinear` of its colour history from all 4 taps, unless a left-out
        tap is nearer (TemporalSettings.partial_footprint_bilinear)."""
        share = self.settings.partial_footprint_bilinear
        pixels = np.flatnonzero(keep & (total < 1.0 - 1e-6)) if share else np.empty(0, np.intp)
        if surface.depth is not None and "depth" in self.past_has and pixels.size:
            index, footprint = sampler.index[:, pixels], sampler.weight[:, pixels] > 0
            nearer = (np.take(self.fields[DEPTH], index)
                      < surface.depth[pixels] * (1.0 - self.settings.depth_tolerance))
            pixels = pixels[~(nearer & footprint).any(axis=0)]
        if pixels.size:
            bilinear = np.einsum("kn,knc->nc", sampler.weight[:, pixels], taps[:, pixels, RGB])
            history[pixels, RGB] += share * (bilinear - history[pixels, RGB])

    def _taps_match(self, sampler: Sampler, b_col, b_row, surface: _Surface) -> np.ndarray:
        """(4, N) True where a tap shows the pixel's surface (the tests in the module doc).
        Most pixels read a block the previous frame found to be one surface: those are tested
        against its top-left tap alone, with half the tolerances; the rest against every tap."""
        top = sampler.index[:1]
        match = self._match(top, b_col, b_row, surface, strict=True)
        match &= np.take(self.fields[ONE_SURFACE], top) > 0
        match = np.repeat(match, 4, axis=0)
        pixels = np.flatnonzero(~match[0])
        if pixels.size:
            match[:, pixels] = self._match(sampler.index[:, pixels], b_col[pixels], b_row[pixels],
                                           surface.subset(pixels))
        return match

    def _match(self, index, b_col, b_row, surface: _Surface, strict: bool = False) -> np.ndarray:
        """(K, M) True where the previous frame at `index` (K, M) shows the surface of the M
        pixels (flows to t-1 `b_col`, `b_row`); `strict` halves every tolerance."""
        s, scale = self.settings, 0.5 if strict else 1.0
        tap = lambda field: np.take(self.fields[field], index)    # noqa: E731
        match = ~fb_inconsistent(b_col, b_row, tap(F_COL), tap(F_ROW),
                                 s.fb_relative, s.fb_absolute * scale ** 2)
        if surface.ids is not None and "ids" in self.past_has:
            match &= tap(ID) == surface.ids
        if surface.depth is not None and "depth" in self.past_has:
            match &= _depths_close(tap(DEPTH), surface.depth, s.depth_tolerance * scale)
        return match

    def _clamp(self, history, current, rows: slice, out) -> None:
        """(3, N) history clamped to the current frame's (2 r + 1)^2 range around each pixel
        of the band, into `out`."""
        low, high = band_min_max(current, rows, self.settings.clamp_radius)
        np.maximum(history, low.reshape(3, -1), out=out)
        np.minimum(out, high.reshape(3, -1), out=out)

    def _record(self, frame, rows: slice, age, past, fields, below: _Surface, light_change=0.0) -> None:
        """Write a band of rows of the ages and fields: what the next frame reads back (the
        colour: `_record_colour`). `below`: the band's surface and the row below it."""
        count, width = rows.stop - rows.start, frame["motion"].shape[1]
        band = slice(rows.start * width, rows.stop * width)
        past[band, AGE] = age
        f_col, f_row = forward_flow(frame["motion"][rows])
        fields[F_COL, band].reshape(count, width)[...] = f_col
        fields[F_ROW, band].reshape(count, width)[...] = f_row
        fields[DEPTH, band] = 1.0 if below.depth is None else below.depth[:band.stop - band.start]
        fields[ID, band] = 0.0 if below.ids is None else below.ids[:band.stop - band.start]
        fields[ONE_SURFACE, band] = _one_surface_blocks(below, count, width, self.settings)
        fields[LIGHTING, band] = light_change

    def _record_colour(self, image, past, fields, strength: float | None = None) -> None:
        """past[:, RGB]: the output `image` ((3, H, W), the whole frame: a band's pre-sharpening
        reads the rows around it), pre-sharpened for the next frame's read (`presharpened`;
        `strength` None: TemporalSettings.presharpen). Needs this frame's forward flow in `fields`."""
        strength = self.settings.presharpen if strength is None else strength
        height, width = image.shape[1:]
        f_col, f_row = (fields[k].reshape(height, width) for k in (F_COL, F_ROW))

        def band(rows):
            colour = presharpened(image, f_col[rows], f_row[rows], rows, strength) if strength else image[:, rows]
            flat = slice(rows.start * width, rows.stop * width)
            for channel in range(3):     # one long loop each (the whole band at once: ~2x slower)
                past[flat, channel] = colour[channel].ravel()
        list(_pool().map(band, _bands(height, height // BAND_ROWS)))

    def _remember(self, frame, past, fields, size, number, key) -> None:
        self.number, self.key, self.size = number, key, tuple(size)
        if "motion" not in frame:
            self.past = self.fields = None     # nothing to reproject the next frame with
            return
        self.past, self.fields = past, fields
        self.past_has = frozenset(name for name, present in (("depth", "depth" in frame),
                                                             ("ids", any(k in frame for k in ID_PASSES)))
                                  if present)

    # -- saving and restoring, so a resumed sequence continues with the same history ---------

    def state(self) -> dict[str, np.ndarray]:
        """The history as arrays (np.savez); the previous frame's passes are not included:
        `restore` reads them from that frame again. "record": the colour as recorded (pre-sharpened)."""
        if self.past is None:
            return {}
        return {"number": np.int64(self.number), "record": np.ascontiguousarray(self.history),
                "age": np.ascontiguousarray(self.age),
                "lighting_change": self.fields[LIGHTING].reshape(self.size).copy()}

    def restore(self, state, previous_frame: schema.Frame, key=None) -> None:
        """Continue after frame `state['number']`, whose passes are `previous_frame`."""
        self.reset()
        # Saved before session 13 (plain output as "history"): pre-sharpen it as it is recorded now.
        recorded = "record" in state
        history = np.asarray(state["record" if recorded else "history"], np.float32)
        if history.ndim == 3 and history.shape[0] == 3 and history.shape[-1] != 3:
            history = history.transpose(1, 2, 0)     # saved by an older version: (3, H, W)
        size = history.shape[:2]
        past, fields = self._spare_buffers(size)
        # Saved by a version without the lighting test: no change seen yet.
        light_change = (np.asarray(state["lighting_change"], np.float32).ravel()
                        if "lighting_change" in state else 0.0)
        self._record(previous_frame, slice(0, size[0]), np.asarray(state["age"], np.float32).ravel(),
                     past, fields, _Surface.of(previous_frame), light_change)
        self._record_colour(np.ascontiguousarray(history.transpose(2, 0, 1)), past, fields,
                            0.0 if recorded else None)
        self._remember(previous_frame, past, fields, size, int(state["number"]), key)
