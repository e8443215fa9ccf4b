"""Choosing a dataset source from a command-line spec ('[kind:]path').

One dataset kind per module, all returning the arrays that `source.Source` describes:
exported_scenes (the add-on's exports, alone or paired), epe_list, cityscapes, photos.
"""
from __future__ import annotations

from pathlib import Path

from .cityscapes import Cityscapes, classes_from_color, cityscapes_id_table  # noqa: F401
from .epe_list import EPEList, frame_from_npz  # noqa: F401
from .exported_scenes import ExportedScenes, PairedScenes, noisy_tensor  # noqa: F401
from .photos import PhotoFolder  # noqa: F401
from .source import (PHOTO_SUFFIXES, Source, SourceError, choose_passes,  # noqa: F401
                     encode_photo, read_png, srgb_to_linear)


KINDS = ("scenes", "paired", "epe", "cityscapes", "photos")


def detect_kind(path: Path) -> str:
    if path.is_file():
        return "epe"
    if (path / "manifest.json").is_file():
        return "scenes"
    if (path / "fast" / "manifest.json").is_file() and (path / "reference" / "manifest.json").is_file():
        return "paired"
    if (path / "leftImg8bit").is_dir():
        return "cityscapes"
    if path.is_dir():
        return "photos"
    raise SourceError(f"{path} does not exist")


def open_source(spec: str, gbuffer_passes: list[str] | None = None, split: str = "train",
                gt_labels: str = "classes") -> Source:
    """'[kind:]path' -> Source. Kinds: scenes, paired (ROOT with fast/ and reference/), epe
    (a list file), cityscapes (the root), photos; without a kind it is detected from the path."""
    kind, _, rest = spec.partition(":")
    if kind in KINDS and rest:
        path = Path(rest)
    else:
        path = Path(spec)
        kind = detect_kind(path)
    if kind == "scenes":
        return ExportedScenes(path, gbuffer_passes)
    if kind == "paired":
        return PairedScenes(path / "fast", path / "reference", gbuffer_passes)
    if kind == "epe":
        return EPEList(path, gt_labels, gbuffer_passes)
    if kind == "cityscapes":
        return Cityscapes(path, split)
    return PhotoFolder(path)
