"""The on-disk dataset format: what the add-on's exporter writes and what training reads.

Layout of a dataset directory DIR (frame numbers are Blender frame numbers, zero-padded to 6)::

    DIR/manifest.json           what the dataset is and which frames are finished (see below)
    DIR/frames/000001.exr       every pass of the frame, exactly as Blender wrote it (raw linear
                                float values, Blender's own layer names; read with
                                `neural_core.exr.read_frame` or `DatasetReader.read_frame`)
    DIR/image/000001.png        Combined as display sRGB, 8-bit RGB (standard sRGB transfer
                                curve on the clipped linear values, no view transform)
    DIR/gbuffers/000001.npz     'gbuffers' (H, W, C) float32: the G-buffer passes present, raw
                                (untransformed), stacked in schema.GBUFFER_PASS_ORDER;
                                'channels' (C,) str: their names (schema.gbuffer_channel_names);
                                'img' (H, W, 3) uint8: the same pixels as image/*.png (EPE style)
    DIR/labels/000001.png       class ids (schema.CLASSES order), 8-bit grey; VOID_CLASS where
                                no object was tagged
    DIR/list.txt                EPE file list, one frame a line:
                                image/N.png,labels/N.png,gbuffers/N.npz,labels/N.png
                                (EPE's robust-label column is filled with the ground-truth labels)

Row 0 of every array is the top of the image.

manifest.json::

    {"format": "photoreal-dataset", "format_version": 1, "schema_version": "1",
     "blender_version": "4.5.15", "engine": "CYCLES", "samples": 4, "resolution": [W, H],
     "class_source": "object_index", "gbuffer_passes": [...], "gbuffer_channels": [...],
     "extra": {...},                               # free-form, e.g. the scene generator's seed
     "frames": {"1": {"files": {"exr": "frames/000001.exr", "image": ..., "gbuffers": ...,
                                "labels": ...}, "complete": true}}}

Crash safety: every file is written to a temporary name and renamed into place, and a frame is
entered in the manifest (itself replaced atomically) only after all its files exist. A frame
that is not in the manifest is therefore never trusted: resuming rewrites it. One writer per
directory at a time.

Needs numpy, neural_core.exr and Pillow (for PNG); no bpy, no torch.
"""
from __future__ import annotations

import json
import os
import shutil
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from . import display, exr, schema
from .errors import CorruptFileError, PhotorealError
from .files import write_atomic, write_text_atomic

FORMAT = "photoreal-dataset"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
LIST_FILE = "list.txt"
SUBDIRS = {"exr": ("frames", ".exr"), "image": ("image", ".png"),
           "gbuffers": ("gbuffers", ".npz"), "labels": ("labels", ".png")}
# Settings that must not change when an export resumes into an existing directory.
RESUME_KEYS = ("format_version", "schema_version", "engine", "samples", "resolution", "class_source")


class DatasetFormatError(PhotorealError):
    """A dataset directory that is not ours, or does not match the settings of a resumed export."""


def frame_stem(number: int) -> str:
    if number < 0:
        raise ValueError(f"frame numbers must be >= 0 for dataset file names, got {number}")
    return f"{number:06d}"


def relative_paths(number: int) -> dict[str, str]:
    """{'exr': 'frames/000001.exr', 'image': ..., 'gbuffers': ..., 'labels': ...}"""
    stem = frame_stem(number)
    return {kind: f"{sub}/{stem}{ext}" for kind, (sub, ext) in SUBDIRS.items()}


def present_gbuffer_passes(frame: schema.Frame) -> list[str]:
    return [key for key in schema.RENDERED_GBUFFER_PASSES if key in frame]


def gbuffer_array(frame: schema.Frame, passes: list[str]) -> np.ndarray:
    """Raw G-buffer passes stacked to (H, W, C) float32."""
    h, w = schema.frame_size(frame)
    if not passes:
        return np.zeros((h, w, 0), np.float32)
    return np.concatenate([frame[key].astype(np.float32) for key in passes], axis=-1)


# ---------------------------------------------------------------------------------------------
# Atomic file helpers
# ---------------------------------------------------------------------------------------------

def _write_png(path: Path, pixels: np.ndarray) -> None:
    from PIL import Image
    write_atomic(path, lambda tmp: Image.fromarray(pixels).save(tmp, format="PNG"))


def _read_png(path: Path) -> np.ndarray:
    from PIL import Image
    try:
        with Image.open(path) as im:
            return np.asarray(im).copy()
    except (OSError, ValueError) as exc:
        raise CorruptFileError(f"cannot read PNG {path}: {exc}; re-export the frame") from exc


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object keeps numpy from appending '.npz' to the name
            np.savez(f, **arrays)
    write_atomic(path, write)


def _write_text(path: Path, text: str) -> None:
    write_text_atomic(path, text)


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

class DatasetWriter:
    """Writes frames into DIR; reopening an existing DIR resumes it.

    >>> w = DatasetWriter(d, engine="CYCLES", samples=4, resolution=(64, 48),
    ...                   blender_version="4.5.15")
    >>> if not w.is_complete(7): w.write_frame(7, "/dev/shm/render.exr")
    """

    def __init__(self, directory: str | os.PathLike, *, engine: str, samples: int,
                 resolution: tuple[int, int], blender_version: str = "",
                 class_source: str = "object_index", extra: Mapping | None = None):
        if class_source not in schema.CLASS_SOURCES:
            raise ValueError(f"class_source must be one of {schema.CLASS_SOURCES}, not {class_source!r}")
        self.directory = Path(directory)
        settings = {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "schema_version": schema.SCHEMA_VERSION, "blender_version": blender_version,
            "engine": engine, "samples": int(samples),
            "resolution": [int(resolution[0]), int(resolution[1])],
            "class_source": class_source, "gbuffer_passes": None, "gbuffer_channels": None,
            "extra": dict(extra or {}), "frames": {},
        }
        manifest_path = self.directory / MANIFEST
        if manifest_path.exists():
            self.manifest = _load_manifest(self.directory)
            _check_resumable(self.manifest, settings, self.directory)
        else:
            self.manifest = settings

    # -- state --------------------------------------------------------------------------------
    def is_complete(self, number: int) -> bool:
        """True if the frame is in the manifest and all its files exist."""
        entry = self.manifest["frames"].get(str(number))
        if not entry or not entry.get("complete"):
            return False
        return all(contained_path(self.directory, rel).is_file() for rel in entry["files"].values())

    # -- writing ------------------------------------------------------------------------------
    def write_frame(self, number: int, source: str | os.PathLike | schema.Frame,
                    light_paths: Mapping[str, int] | None = None) -> dict[str, str]:
        """Write one frame from a Blender multilayer EXR (path) or a Frame dict.

        The EXR is copied as is into frames/; the other files are derived from it.
        `light_paths` ({"max_bounces": .., "diffuse_bounces": ..}) records the render's light-path
        depth, which no pass holds (the models' `bounces` input). Returns the relative file paths.
        """
        if isinstance(source, Mapping):
            frame = dict(source)
        else:
            frame = exr.read_frame(source)
        self._check_frame(frame, number)
        class_map = schema.class_map_from_frame(frame, self.manifest["class_source"])
        passes = present_gbuffer_passes(frame)
        self._fix_gbuffer_layout(passes, number)

        rel = relative_paths(number)
        path = {kind: self.directory / r for kind, r in rel.items()}
        if isinstance(source, Mapping):
            exr.write_frame(path["exr"], frame)
        else:
            write_atomic(path["exr"], lambda tmp: shutil.copyfile(source, tmp))
        img = display.to_display(frame["image"])
        _write_png(path["image"], img)
        _write_png(path["labels"], class_map)
        _write_npz(path["gbuffers"], gbuffers=gbuffer_array(frame, passes),
                   channels=np.array(schema.gbuffer_channel_names(passes)), img=img)

        entry = {"files": rel, "complete": True}
        if light_paths is not None:
            if "max_bounces" not in light_paths or set(light_paths) - {"max_bounces", "diffuse_bounces"}:
                raise DatasetFormatError(f"frame {number}: light_paths needs max_bounces (and may have "
                                         f"diffuse_bounces), not {sorted(light_paths)}")
            entry["light_paths"] = {key: int(value) for key, value in light_paths.items()}
        self.manifest["frames"][str(number)] = entry
        self._save()
        return rel

    def _check_frame(self, frame: schema.Frame, number: int) -> None:
        schema.check_frame(frame, ["image", self.manifest["class_source"]], self.manifest["engine"],
                           source=f"frame {number}")
        h, w = schema.frame_size(frame)
        if [w, h] != self.manifest["resolution"]:
            raise DatasetFormatError(
                f"frame {number} is {w}x{h} but the dataset is "
                f"{self.manifest['resolution'][0]}x{self.manifest['resolution'][1]}; keep the "
                f"render resolution fixed within one dataset")

    def _fix_gbuffer_layout(self, passes: list[str], number: int) -> None:
        """The first frame fixes the G-buffer channels; later frames must match them."""
        known = self.manifest.get("gbuffer_passes")
        if known is None:
            self.manifest["gbuffer_passes"] = passes
            self.manifest["gbuffer_channels"] = schema.gbuffer_channel_names(passes)
        elif list(known) != passes:
            raise DatasetFormatError(
                f"frame {number} has G-buffer passes {passes} but the dataset has {list(known)}; "
                f"enable the same passes for every frame, or export into a new directory")

    def _save(self) -> None:
        frames = self.manifest["frames"]
        self.manifest["frames"] = {k: frames[k] for k in sorted(frames, key=int)}
        _write_text(self.directory / MANIFEST, json.dumps(self.manifest, indent=1) + "\n")
        _write_text(self.directory / LIST_FILE, epe_list(self.manifest))


def contained_path(directory: Path, rel: str) -> Path:
    """directory / rel, refused unless it stays inside the directory: a manifest is data from
    elsewhere, and "../../x" or "/etc/x" in it must not make training read any file."""
    path = Path(directory) / str(rel)
    root = Path(directory).resolve()
    if Path(str(rel)).is_absolute() or not path.resolve().is_relative_to(root):
        raise DatasetFormatError(f"{Path(directory) / MANIFEST} lists {rel!r}, a path outside "
                                 f"the dataset folder; refusing it. Re-export the dataset")
    return path


def epe_list(manifest: Mapping) -> str:
    """EPE's 4-column file list for the complete frames of a manifest."""
    lines = []
    for entry in manifest["frames"].values():
        if entry.get("complete"):
            f = entry["files"]
            lines.append(f"{f['image']},{f['labels']},{f['gbuffers']},{f['labels']}")
    return "".join(line + "\n" for line in lines)


def _load_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetFormatError(f"{directory} is not a Photoreal dataset: it has no {MANIFEST}. "
                                 f"Export one with bpy.ops.photoreal.export_dataset") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path} is not valid JSON ({exc}); restore it or re-export") from exc
    if manifest.get("format") != FORMAT:
        raise DatasetFormatError(f"{path} is not a {FORMAT} manifest (format={manifest.get('format')!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DatasetFormatError(f"{path} has format version {manifest.get('format_version')}, "
                                 f"this code reads version {FORMAT_VERSION}")
    return manifest


def _check_resumable(existing: Mapping, wanted: Mapping, directory: Path) -> None:
    diffs = [f"{k}: {existing.get(k)!r} in the dataset, {wanted[k]!r} now"
             for k in RESUME_KEYS if existing.get(k) != wanted[k]]
    if diffs:
        raise DatasetFormatError(
            f"cannot resume the export into {directory}: the settings changed ({'; '.join(diffs)}). "
            f"Restore those settings or export into a new directory")


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------

class DatasetReader:
    """Reads a dataset directory; only frames marked complete in the manifest are visible."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        self.manifest = _load_manifest(self.directory)
        if self.manifest.get("schema_version") != schema.SCHEMA_VERSION:
            raise DatasetFormatError(
                f"{self.directory} was exported with schema version "
                f"{self.manifest.get('schema_version')!r}; this code reads {schema.SCHEMA_VERSION!r}. "
                f"Re-export the dataset")
        self.frames: list[int] = sorted(int(n) for n, e in self.manifest["frames"].items()
                                        if e.get("complete"))

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def resolution(self) -> tuple[int, int]:
        w, h = self.manifest["resolution"]
        return w, h

    @property
    def class_source(self) -> str:
        return self.manifest["class_source"]

    @property
    def gbuffer_passes(self) -> list[str]:
        return list(self.manifest.get("gbuffer_passes") or [])

    @property
    def gbuffer_channels(self) -> list[str]:
        return list(self.manifest.get("gbuffer_channels") or [])

    @property
    def knows_light_paths(self) -> bool:
        """Does every frame record its render's light-path depth (the `bounces` input)?"""
        return bool(self.frames) and all("light_paths" in self.manifest["frames"][str(n)] for n in self.frames)

    def path(self, number: int, kind: str) -> Path:
        entry = self.manifest["frames"].get(str(number))
        if not entry or not entry.get("complete"):
            raise KeyError(f"frame {number} is not a complete frame of {self.directory} "
                           f"(complete frames: {self.frames[:10]}{'...' if len(self.frames) > 10 else ''})")
        path = contained_path(self.directory, entry["files"][kind])
        if not path.is_file():
            raise CorruptFileError(f"{path} is listed in the manifest but missing; re-export frame {number}")
        return path

    def path_unchecked(self, number: int, kind: str) -> Path:
        """The file's path inside the dataset, whether or not it exists."""
        return contained_path(self.directory, self.manifest["frames"][str(number)]["files"][kind])

    def read_frame(self, number: int) -> schema.Frame:
        """All passes of the frame as a Frame (raw linear values), with the `bounces` plane when
        the frame records its light paths."""
        frame = exr.read_frame(self.path(number, "exr"))
        light_paths = self.manifest["frames"][str(number)].get("light_paths")
        return frame if light_paths is None else schema.with_light_paths(frame, **light_paths)

    def read_image(self, number: int) -> np.ndarray:
        """(H, W, 3) uint8 display sRGB."""
        return _read_png(self.path(number, "image"))

    def read_labels(self, number: int) -> np.ndarray:
        """(H, W) uint8 class ids."""
        return _read_png(self.path(number, "labels"))

    def read_gbuffers_npz(self, number: int) -> dict[str, np.ndarray]:
        """{'gbuffers': (H, W, C) float32, 'channels': (C,) str, 'img': (H, W, 3) uint8}"""
        path = self.path(number, "gbuffers")
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise CorruptFileError(f"cannot read {path}: {exc}; re-export frame {number}") from exc
