"""A folder of photos without labels."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neural_core import schema

from .source import PHOTO_SUFFIXES, Source, encode_photo, read_png


class PhotoFolder(Source):
    """Any folder of .png/.jpg photos (searched recursively); no labels, so every pixel is void."""
    kind = "photos"
    has_labels = False

    def __init__(self, root: str | os.PathLike):
        super().__init__()
        self.root = Path(root)
        self.paths = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
        self.require_items()

    def __len__(self) -> int:
        return len(self.paths)

    def name(self, index: int) -> str:
        return str(self.paths[index])

    def load(self, index: int) -> dict[str, np.ndarray]:
        image = encode_photo(read_png(self.paths[index], "RGB"))
        void = np.full(image.shape[1:], schema.VOID_CLASS, np.int64)
        return {"image": image, "class_ids": void, "labels": void}
