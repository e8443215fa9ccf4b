"""Scenes exported by the add-on (neural_core.dataset_format), alone or as fast/reference pairs."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neural_core import schema
from neural_core.dataset_format import DatasetReader
from neural_core.errors import CorruptFileError

from .source import Source, choose_passes


class ExportedScenes(Source):
    kind = "scenes"

    def __init__(self, root: str | os.PathLike, gbuffer_passes: list[str] | None = None):
        super().__init__()
        self.root = Path(root)
        self.reader = DatasetReader(self.root)
        # The render's light-path depth is an input too, when every frame records it.
        available = self.reader.gbuffer_passes + (["bounces"] if self.reader.knows_light_paths else [])
        self.gbuffer_passes = choose_passes(available, gbuffer_passes)
        self.gbuffer_channels = schema.gbuffer_channel_names(self.gbuffer_passes)
        self.class_source = self.reader.class_source
        self.frames = []
        for number in self.reader.frames:
            path = self.reader.path_unchecked(number, "exr")
            if path.is_file():
                self.frames.append(number)
            else:
                self.skip(str(path), "listed in the manifest but missing")
        self.require_items()

    def __len__(self) -> int:
        return len(self.frames)

    def name(self, index: int) -> str:
        return str(self.reader.path(self.frames[index], "exr"))

    def read(self, index: int) -> schema.Frame:
        frame = self.reader.read_frame(self.frames[index])
        schema.check_frame(frame, ["image", *self.gbuffer_passes, self.class_source],
                           source=self.name(index))
        return frame

    def load(self, index: int) -> dict[str, np.ndarray]:
        frame = self.read(index)
        class_ids = schema.class_map_from_frame(frame, self.class_source).astype(np.int64)
        return {"image": schema.image_tensor(frame), "noisy": noisy_tensor(frame),
                "gbuffers": schema.gbuffer_tensor(frame, self.gbuffer_passes),
                "class_ids": class_ids, "labels": class_ids}


def noisy_tensor(frame: schema.Frame) -> np.ndarray:
    """Encoded (3, H, W) noisy image: Cycles' Noisy Image pass, or Combined for renders made
    without the denoiser (then the image is its own noisy version, as for EEVEE)."""
    return schema.image_tensor({"image": frame.get("noisy", frame["image"])})


class PairedScenes(ExportedScenes):
    """Fast renders as input, reference renders of the same frame numbers as target."""
    kind = "paired scenes"

    def __init__(self, fast: str | os.PathLike, reference: str | os.PathLike,
                 gbuffer_passes: list[str] | None = None):
        super().__init__(fast, gbuffer_passes)
        self.reference = ExportedScenes(reference, gbuffer_passes=[])
        ref_frames = set(self.reference.frames)
        for number in [n for n in self.frames if n not in ref_frames]:
            self.skip(f"{self.root}/frame {number}", f"no reference render of it in {reference}")
        self.frames = [n for n in self.frames if n in ref_frames]
        self.require_items()

    def load(self, index: int) -> dict[str, np.ndarray]:
        sample = super().load(index)
        ref = self.reference.reader.read_frame(self.frames[index])
        schema.check_frame(ref, ["image"], source=str(self.reference.reader.path(self.frames[index], "exr")))
        target = schema.image_tensor(ref)
        if target.shape != sample["image"].shape:
            raise CorruptFileError(f"reference frame {self.frames[index]} is {target.shape[1:]} but the "
                                   f"fast render is {sample['image'].shape[1:]}; render both at one size")
        sample["target"] = target
        return sample
