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
import os
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from neural_core import schema
from neural_core.dataset_format import DatasetReader
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


# ---------------------------------------------------------------------------------------------
# Exported scenes (the add-on's dataset format)
# ---------------------------------------------------------------------------------------------

def choose_passes(available: list[str], wanted: list[str] | None) -> list[str]:
    """The G-buffer passes to train on: `wanted`, or the default set that the dataset has."""
    if wanted is not None:
        missing = [p for p in wanted if p not in available]
        if missing:
            raise SourceError(f"the dataset lacks G-buffer pass(es) {missing} (it has {available}); "
                              f"re-export with them enabled or choose --gbuffer-passes from {available}")
        return list(wanted)
    return [p for p in schema.DEFAULT_GBUFFER_PASSES if p in available]


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


# ---------------------------------------------------------------------------------------------
# EPE file lists
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Real photos
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Choosing a source from a command-line spec
# ---------------------------------------------------------------------------------------------

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
