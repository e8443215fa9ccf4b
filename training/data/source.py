"""Dataset sources: where images, G-buffers and labels come from.

A source lists its items once (cheap file-existence checks; a missing file is skipped with a
warning that names it, and counted) and loads one full-size item on demand as numpy arrays:

    image    (3, H, W) float32, the networks' encoded domain (log1p of linear radiance)
    gbuffers (C, H, W) float32, schema-transformed but not yet standardised (synthetic only)
    class_ids (H, W) int64, ids in schema.CLASSES (VOID where unknown)
    labels   (H, W) int64, the discriminator's label ids (EPE's robust labels; else class_ids)
    target   (3, H, W) float32 encoded reference image (paired sources only)

Real photos are 8-bit sRGB: they are linearised with the sRGB EOTF before encoding, so they
live in the same domain as renders.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image

from neural_core import schema
from neural_core.errors import CorruptFileError

log = logging.getLogger(__name__)
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")


class SourceError(ValueError):
    """A dataset that cannot be used at all (empty, wrong layout)."""


def srgb_to_linear(srgb8: np.ndarray) -> np.ndarray:
    x = np.asarray(srgb8, np.float32) / 255.0
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4).astype(np.float32)


def encode_photo(srgb8: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(schema.encode_radiance(srgb_to_linear(srgb8[..., :3])).transpose(2, 0, 1))


def read_png(path: Path, mode: str | None = None) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert(mode) if mode else im).copy()
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"cannot read image {path}: {exc}") from exc


class Source:
    kind = "source"
    has_labels = True      # False: every pixel is void because the data has no label maps
    gbuffer_passes: list[str] | None = []   # None: channels that are not schema passes
    gbuffer_channels: list[str] = []

    def __init__(self):
        self.skipped: list[str] = []

    def skip(self, what: str, why: str) -> None:
        log.warning("skipping %s: %s", what, why)
        self.skipped.append(what)

    def __len__(self) -> int:
        raise NotImplementedError

    def name(self, index: int) -> str:
        raise NotImplementedError

    def load(self, index: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def load_gbuffers(self, index: int) -> np.ndarray:
        """Only the G-buffers (for statistics); sources may override it with something cheaper."""
        return self.load(index)["gbuffers"]

    def describe(self) -> str:
        text = f"{self.kind} {self.root}: {len(self)} items"
        return text + (f", {len(self.skipped)} skipped" if self.skipped else "")

    def require_items(self) -> None:
        if len(self) == 0:
            raise SourceError(f"{self.kind} dataset {self.root} has no usable items"
                              + (f" ({len(self.skipped)} skipped, see the warnings)" if self.skipped else ""))


def choose_passes(available: list[str], wanted: list[str] | None) -> list[str]:
    """The G-buffer passes to train on: `wanted`, or the default set that the dataset has."""
    if wanted is not None:
        missing = [p for p in wanted if p not in available]
        if missing:
            raise SourceError(f"the dataset lacks G-buffer pass(es) {missing} (it has {available}); "
                              f"re-export with them enabled or choose --gbuffer-passes from {available}")
        return list(wanted)
    return [p for p in schema.DEFAULT_GBUFFER_PASSES if p in available]
