"""Arrays kept from frame to frame (numpy only: the add-on uses it too).

A batch render handles frame after frame at one size. Fresh arrays of ~100 MB a frame cost
about as much in page faults as filling them (1080p preprocessing measured ~390 ms with fresh
arrays, ~190 ms reused), so the runtime's tile inputs and the add-on's pass and pixel buffers
are kept here between frames.
"""
from __future__ import annotations

import math

import numpy as np


class ReusedArrays:
    """float32 arrays by name. Each name keeps one flat array, grown when needed, and hands out
    its first elements shaped as asked: C-contiguous (what onnxruntime and Blender's foreach_set
    take without a copy) whatever the shape, so smaller requests reuse the same memory. An
    array stays valid until the next request under its name."""

    def __init__(self):
        self._flat: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        size = math.prod(shape)
        flat = self._flat.get(name)
        if flat is None or flat.size < size:
            self._flat[name] = None      # free the old one before allocating
            flat = self._flat[name] = np.empty(size, np.float32)
        return flat[:size].reshape(shape)

    def clear(self) -> None:
        self._flat.clear()
