"""Choosing a dataset source from a command-line spec ('[kind:]path').

One dataset kind per module, all returning the arrays that `source.Source` describes:
exported_scenes (the add-on's exports, alone or paired), epe_list, cityscapes, photos.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

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


class SeveralCorpora(Source):
    """Paired corpora read as one, e.g. the default corpus and its added close-ups ('A,B').

    G-buffer statistics come from the first corpus (its gbuffer_stats.json), so adding a corpus
    to a run keeps the normalisation the run was trained with."""
    kind = "paired scenes"

    def __init__(self, corpora: list[PairedScenes]):
        super().__init__()
        first = corpora[0]
        for other in corpora[1:]:
            if other.gbuffer_channels != first.gbuffer_channels:
                raise SourceError(f"{other.root} has G-buffer channels {other.gbuffer_channels}, but "
                                  f"{first.root} has {first.gbuffer_channels}; give --gbuffer-passes "
                                  f"that every corpus has")
        self.corpora = corpora
        self.root = first.root
        self.gbuffer_passes, self.gbuffer_channels = first.gbuffer_passes, first.gbuffer_channels
        self.skipped = [name for corpus in corpora for name in corpus.skipped]
        self.items = [(corpus, index) for corpus in corpora for index in range(len(corpus))]

    def __len__(self) -> int:
        return len(self.items)

    def name(self, index: int) -> str:
        corpus, local = self.items[index]
        return corpus.name(local)

    def load(self, index: int) -> dict[str, np.ndarray]:
        corpus, local = self.items[index]
        return corpus.load(local)

    def describe(self) -> str:
        return " + ".join(corpus.describe() for corpus in self.corpora)


def open_source(spec: str, gbuffer_passes: list[str] | None = None, split: str = "train",
                gt_labels: str = "classes", several: bool = False) -> Source:
    """'[kind:]path' -> Source. Kinds: scenes, paired (ROOT with fast/ and reference/), epe
    (a list file), cityscapes (the root), photos; without a kind it is detected from the path.
    Several paired roots separated by commas ('A,B') are read as one (SeveralCorpora) where the
    caller takes them (`several`: paired RAD training)."""
    if "," in spec:
        if not several:
            raise SourceError(f"several --data roots ({spec}) are read by paired RAD training only; "
                              f"give one root")
        corpora = [open_source(part, gbuffer_passes) for part in spec.split(",") if part]
        if not all(isinstance(corpus, PairedScenes) for corpus in corpora):
            raise SourceError(f"several --data roots ({spec}) must all be paired corpora "
                              f"(folders with fast/ and reference/)")
        return SeveralCorpora(corpora)
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
