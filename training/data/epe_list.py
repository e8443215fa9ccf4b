"""EPE's file lists (image, robust label, G-buffers, ground-truth label per line)."""
from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from neural_core import schema
from neural_core.errors import CorruptFileError

from .cityscapes import cityscapes_id_table
from .source import Source, choose_passes, encode_photo, read_png


def frame_from_npz(gbuffers: np.ndarray, channels: list[str]) -> tuple[schema.Frame, list[str]]:
    """Our npz layout (flat channel names such as 'normal.x') -> a Frame of G-buffer passes."""
    frame, passes, start = {}, [], 0
    while start < len(channels):
        key = channels[start].split(".")[0]
        n = schema.pass_spec(key).num_channels
        frame[key] = gbuffers[..., start:start + n].astype(np.float32)
        passes.append(key)
        start += n
    return frame, passes


class EPEList(Source):
    """EPE's 4-column list: img, robust_label, gbuffers.npz, gt_label (paths relative to the list).

    gt_label holds schema class ids (`gt_labels='classes'`, what our exporter writes) or
    Cityscapes labelIds (`gt_labels='cityscapes'`, what EPE's PfD lists use). G-buffer npz files
    in our layout ('gbuffers' + 'channels') get the schema transforms; EPE's own ('data' or
    'gbuffers' without names) are used as raw channels and cannot be exported for the add-on.
    """
    kind = "EPE list"

    def __init__(self, list_file: str | os.PathLike, gt_labels: str = "classes",
                 gbuffer_passes: list[str] | None = None):
        super().__init__()
        self.root = Path(list_file)
        if gt_labels not in ("classes", "cityscapes"):
            raise ValueError("gt_labels must be 'classes' or 'cityscapes'")
        self.gt_labels = gt_labels
        self.rows = []
        for number, line in enumerate(self.root.read_text().splitlines(), 1):
            if not line.strip():
                continue
            paths = [self._resolve(p) for p in line.split(",")]
            if len(paths) != 4:
                self.skip(f"{self.root}:{number}", f"expected 4 comma-separated paths, found {len(paths)}")
                continue
            missing = [str(p) for p in paths if not p.is_file()]
            if missing:
                self.skip(f"{self.root}:{number}", f"missing file(s) {', '.join(missing)}")
                continue
            self.rows.append(paths)
        self.require_items()
        self._layout(gbuffer_passes)

    def _resolve(self, text: str) -> Path:
        path = Path(text.strip())
        return path if path.is_absolute() else self.root.parent / path

    def _layout(self, wanted: list[str] | None) -> None:
        npz = self._read_npz(0)
        if "channels" in npz:
            _, available = frame_from_npz(npz["gbuffers"], list(npz["channels"]))
            self.gbuffer_passes = choose_passes(available, wanted)
            self.gbuffer_channels = schema.gbuffer_channel_names(self.gbuffer_passes)
        else:
            self.gbuffer_passes = None
            self.gbuffer_channels = [f"raw.{i}" for i in range(self._raw(npz).shape[-1])]

    def __len__(self) -> int:
        return len(self.rows)

    def name(self, index: int) -> str:
        return ",".join(str(p) for p in self.rows[index])

    def _read_npz(self, index: int) -> dict[str, np.ndarray]:
        path = self.rows[index][2]
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise CorruptFileError(f"cannot read {path}: {exc}; re-export it or remove it from the list") from exc

    @staticmethod
    def _raw(npz: dict) -> np.ndarray:
        return npz["data"] if "data" in npz else npz["gbuffers"]

    def load_gbuffers(self, index: int) -> np.ndarray:
        npz = self._read_npz(index)
        if self.gbuffer_passes is None:
            return np.ascontiguousarray(self._raw(npz).astype(np.float32).transpose(2, 0, 1))
        frame, _ = frame_from_npz(npz["gbuffers"], list(npz["channels"]))
        return schema.gbuffer_tensor(frame, self.gbuffer_passes)

    def load(self, index: int) -> dict[str, np.ndarray]:
        img, robust, _, gt = self.rows[index]
        image = encode_photo(read_png(img, "RGB"))
        gbuffers = self.load_gbuffers(index)
        gt_ids = read_png(gt).astype(np.int64)
        if gt_ids.ndim == 3:
            raise CorruptFileError(f"{gt} has colour channels; gt_label must be single-channel ids")
        class_ids = cityscapes_id_table()[gt_ids] if self.gt_labels == "cityscapes" else gt_ids
        labels = read_png(robust).astype(np.int64)
        for what, arr in (("gbuffers", gbuffers), ("gt_label", class_ids), ("robust_label", labels)):
            if arr.shape[-2:] != image.shape[-2:]:
                raise CorruptFileError(f"{self.name(index)}: {what} is {arr.shape[-2:]} but the image "
                                       f"is {image.shape[-2:]}; they must have the same resolution")
        if class_ids.max() >= schema.NUM_CLASSES:
            raise CorruptFileError(f"{gt} has class id {class_ids.max()} >= {schema.NUM_CLASSES}; if it "
                                   f"holds Cityscapes labelIds use --gt-labels cityscapes")
        return {"image": image, "gbuffers": gbuffers, "class_ids": class_ids, "labels": labels}
