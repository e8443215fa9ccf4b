"""Overlapping tiles with feathered blending, so large frames run in bounded memory.

numpy only (runs inside Blender).

How a frame is cut (per axis, the same rule for rows and columns):
- A frame no longer than `tile` along an axis is one tile along that axis.
- Otherwise it is cut into about the fewest tiles of at most `tile` pixels that overlap by at
  least `overlap`, all made as short as that count allows (a 1080-row frame with tile 1024
  becomes two tiles of ~610 rows, not 1024 + 1024), the last one ending at the frame edge.
  Every start is a multiple of `multiple` (the runtime's grid alignment), so each tile sees the
  same down-sampling grid as the whole frame would; that is what makes tiled output match
  whole-frame output. The last tile may be up to `multiple - 1` pixels longer than the others.

How tiles are blended: each tile's output is weighted per axis by a ramp across the overlap
with a neighbouring tile: weight 0 for the `overlap // 4` pixels nearest the shared edge (those
saw zero padding instead of real neighbours, and measured on RAD nearly all the tiling error
sits there), then rising linearly to 1 at `overlap - overlap // 4` pixels in. Edges on the
frame border keep weight 1. Two tiles overlapping by exactly `overlap` pixels get mirror-image
ramps that sum to 1; where tiles overlap more (the last one, moved back) the accumulated weight
is divided out. Every pixel keeps a positive weight from the tile whose interior it lies in.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tile:
    """A rectangle of the frame: rows y0:y1, columns x0:x1, plus which edges face a neighbour."""

    y0: int
    y1: int
    x0: int
    x1: int
    inner_top: bool
    inner_bottom: bool
    inner_left: bool
    inner_right: bool

    @property
    def slices(self) -> tuple[slice, slice]:
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        return self.y1 - self.y0, self.x1 - self.x0


def axis_spans(length: int, tile: int, overlap: int, multiple: int = 1) -> list[tuple[int, int]]:
    """(start, end) spans covering 0..length along one axis; see the module docstring."""
    if length <= tile:
        return [(0, length)]
    if tile - overlap < multiple:
        raise ValueError(f"tile {tile} minus overlap {overlap} must be at least {multiple}")
    # The fewest tiles that fit, then all made as short as that count allows, so the overlap
    # computed twice stays small (1080 rows with tile 1024: 2 x 608 rows, not 2 x 1024).
    count = -(-(length - overlap) // (tile - overlap))
    size = -(-(length + (count - 1) * overlap) // count)
    size = min(tile, -(-size // multiple) * multiple)
    stride = max(multiple, (size - overlap) // multiple * multiple)
    spans = []
    start = 0
    while start + size < length:
        spans.append((start, start + size))
        start += stride
    # The last tile ends at the frame edge; rounding its start down to the grid only adds overlap.
    last_start = (length - size) // multiple * multiple
    if spans and last_start == spans[-1][0]:
        spans.pop()  # it would start where the previous one does: keep the longer
    spans.append((last_start, length))
    return spans


def plan_tiles(height: int, width: int, tile: int, overlap: int, multiple: int = 1) -> list[Tile]:
    """Tiles covering a height x width frame, row by row."""
    rows = axis_spans(height, tile, overlap, multiple)
    cols = axis_spans(width, tile, overlap, multiple)
    return [Tile(y0, y1, x0, x1, y0 > 0, y1 < height, x0 > 0, x1 < width)
            for y0, y1 in rows for x0, x1 in cols]


def aligned_tile_geometry(tile: int, overlap: int, multiple: int) -> tuple[int, int]:
    """Round a requested tile size and overlap to multiples of the grid `multiple`.

    The overlap is rounded up (never less than asked) but capped at half a tile, so that small
    tiles cannot make every pixel run many times over.
    """
    tile = max(2 * multiple, tile // multiple * multiple)
    overlap = -(-overlap // multiple) * multiple
    overlap = min(overlap, tile // 2 // multiple * multiple)
    return tile, max(overlap, 0)


def _ramp(length: int, overlap: int, fade_start: bool, fade_end: bool) -> np.ndarray:
    """1-D weights: 0 then a linear rise across `overlap` pixels at the faded ends, 1 elsewhere."""
    weights = np.ones(length, np.float32)
    if overlap <= 0:
        return weights
    margin = overlap // 4
    # Pixel centres (i + 0.5) make two mirror-image ramps over the same pixels sum to exactly 1.
    rise = np.clip((np.arange(length, dtype=np.float32) + 0.5 - margin) / (overlap - 2 * margin),
                   0.0, 1.0)
    if fade_start:
        weights = np.minimum(weights, rise)
    if fade_end:
        weights = np.minimum(weights, rise[::-1])
    return weights


def blend_weights(tile: Tile, overlap: int) -> np.ndarray:
    """(h, w) weights of one tile's output."""
    h, w = tile.shape
    wy = _ramp(h, overlap, tile.inner_top, tile.inner_bottom)
    wx = _ramp(w, overlap, tile.inner_left, tile.inner_right)
    return wy[:, None] * wx[None, :]


class TileBlender:
    """Accumulates weighted (C, h, w) tile outputs into a (C, H, W) frame."""

    def __init__(self, channels: int, height: int, width: int, overlap: int):
        self.overlap = overlap
        self.total = np.zeros((channels, height, width), np.float32)
        self.weight = np.zeros((height, width), np.float32)
        self._scratch: np.ndarray | None = None

    def add(self, tile: Tile, output: np.ndarray) -> None:
        if output.shape[1:] != tile.shape:
            raise ValueError(f"tile output {output.shape[1:]} does not match tile {tile.shape}")
        rows, cols = tile.slices
        weights = blend_weights(tile, self.overlap)
        # The weighted tile goes through one scratch array reused while tile shapes repeat.
        if self._scratch is None or self._scratch.shape != output.shape:
            self._scratch = np.empty(output.shape, np.float32)
        self.total[:, rows, cols] += np.multiply(output, weights, out=self._scratch)
        self.weight[rows, cols] += weights

    def result(self) -> np.ndarray:
        if not np.all(self.weight > 0):
            raise RuntimeError("tiles did not cover the whole frame")  # a bug in plan_tiles
        self.total /= self.weight
        return self.total

