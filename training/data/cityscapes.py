"""Cityscapes photos with their fine labels, and the Cityscapes label tables."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neural_core import schema
from neural_core.errors import CorruptFileError

from .source import Source, SourceError, encode_photo, read_png


def cityscapes_id_table(by: str = "id") -> np.ndarray | dict:
    """labelId (or colour) -> schema class id, from the official cityscapesscripts table."""
    from cityscapesscripts.helpers.labels import labels
    if by == "id":
        table = np.full(256, schema.VOID_CLASS, np.int64)
        for label in labels:
            if 0 <= label.id < 256 and label.name in schema.CLASSES and 0 <= label.trainId < 255:
                table[label.id] = schema.CLASSES.index(label.name)
        return table
    # Colours are not unique (license plate shares car's): a training class wins over void.
    table = {}
    for label in labels:
        cls = (schema.CLASSES.index(label.name) if label.name in schema.CLASSES
               and 0 <= label.trainId < 255 else schema.VOID_CLASS)
        if table.get(label.color, schema.VOID_CLASS) == schema.VOID_CLASS:
            table[label.color] = cls
    return table


def classes_from_color(color: np.ndarray) -> np.ndarray:
    """Cityscapes gtFine_color (H, W, 3) -> class ids; colours not in the table are void."""
    table = cityscapes_id_table("color")
    packed = (color[..., 0].astype(np.int64) << 16) | (color[..., 1].astype(np.int64) << 8) | color[..., 2]
    out = np.full(color.shape[:2], schema.VOID_CLASS, np.int64)
    for (r, g, b), cls in table.items():
        out[packed == ((r << 16) | (g << 8) | b)] = cls
    return out


class Cityscapes(Source):
    """leftImg8bit/<split>/<city>/*_leftImg8bit.png with gtFine labelIds (or color) labels."""
    kind = "cityscapes"

    def __init__(self, root: str | os.PathLike, split: str = "train", label_kind: str = "labelIds"):
        super().__init__()
        self.root = Path(root)
        self.label_kind = label_kind
        images = sorted((self.root / "leftImg8bit" / split).glob("*/*_leftImg8bit.png"))
        if not images:
            raise SourceError(f"no Cityscapes images under {self.root}/leftImg8bit/{split}/<city>/"
                              f"*_leftImg8bit.png; point --data at the Cityscapes root")
        self.items = []
        for image in images:
            stem = image.name[:-len("_leftImg8bit.png")]
            label = self.root / "gtFine" / split / image.parent.name / f"{stem}_gtFine_{label_kind}.png"
            if label.is_file():
                self.items.append((image, label))
            else:
                self.skip(str(image), f"no label file {label}")
        self.require_items()

    def __len__(self) -> int:
        return len(self.items)

    def name(self, index: int) -> str:
        return str(self.items[index][0])

    def load(self, index: int) -> dict[str, np.ndarray]:
        image_path, label_path = self.items[index]
        image = encode_photo(read_png(image_path, "RGB"))
        if self.label_kind == "color":
            class_ids = classes_from_color(read_png(label_path, "RGB"))
        else:
            class_ids = cityscapes_id_table()[read_png(label_path).astype(np.int64)]
        if class_ids.shape != image.shape[1:]:
            raise CorruptFileError(f"{label_path} is {class_ids.shape} but {image_path} is {image.shape[1:]}")
        return {"image": image, "class_ids": class_ids, "labels": class_ids}
