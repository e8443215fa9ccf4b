"""Reading and writing OpenEXR files through the OpenEXR package.

Blender 4.x writes multilayer EXRs as one interleaved part; Blender 5.x writes one part per
pass. `read_channels` reads every part, so both look the same to the rest of the code.
Row 0 of every array is the top of the image.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from . import schema
from .errors import CorruptFileError
from .files import write_atomic

try:
    import OpenEXR
except ImportError:  # pragma: no cover - Blender without the bundled wheel
    OpenEXR = None


def _require_openexr():
    if OpenEXR is None:
        raise ImportError("the OpenEXR package is missing: install it with `pip install OpenEXR` "
                          "(the add-on bundles it as a wheel)")


def read_channels(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every channel of every part: {'ViewLayer.Normal.X': (H, W) float32}."""
    _require_openexr()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no EXR file at {path}")
    try:
        with OpenEXR.File(str(path), separate_channels=True) as exr:
            channels = {}
            parts_read = len(exr.parts)
            for part in exr.parts:
                for name, channel in part.channels.items():
                    # OpenEXR 3.x hands over a fresh array that numpy owns (it stays valid after
                    # the file closes), so a FLOAT channel is taken as it is; HALF/UINT convert.
                    channels[name] = _owned_float32(channel.pixels)
    except Exception as exc:  # OpenEXR raises RuntimeError/ValueError/IOError for broken files
        raise CorruptFileError(f"cannot read EXR {path}: {exc}. The file may be truncated or "
                               f"not an OpenEXR image; re-render or re-export it") from exc
    _check_all_parts_read(path, parts_read)
    if not channels:
        raise CorruptFileError(f"EXR {path} holds no channels")
    return channels


def _check_all_parts_read(path: Path, parts_read: int) -> None:
    """OpenEXR drops the parts of a truncated multi-part file (Blender 5.x: one per pass) with
    only a warning; the header still lists them all. Say "truncated", not "enable a pass"."""
    try:
        with OpenEXR.File(str(path), header_only=True) as header:
            parts_listed = len(header.parts)
    except Exception:  # the header itself is broken: the read above already said so
        return
    if parts_read < parts_listed:
        raise CorruptFileError(f"EXR {path} is truncated or damaged: {parts_listed - parts_read} "
                               f"of its {parts_listed} parts (passes) cannot be read; re-render "
                               f"or re-export it")


def _owned_float32(pixels) -> np.ndarray:
    """float32 pixels that belong to no one else: converted, or copied unless numpy owns them."""
    array = np.asarray(pixels)
    if array.dtype != np.float32:
        return array.astype(np.float32)
    return array if array.flags.owndata and array.flags.writeable else array.copy()


def read_frame(path: str | os.PathLike, view_layer: str | None = None) -> schema.Frame:
    """A Blender multilayer EXR -> Frame (pass key -> (H, W, C) array)."""
    return schema.frame_from_exr_channels(read_channels(path), view_layer)


def write_channels(path: str | os.PathLike, channels: Mapping[str, np.ndarray],
                   compression: str = "ZIP", header: Mapping | None = None) -> None:
    """Write {'name': (H, W) array} as one single-part EXR, atomically.

    float16 arrays are stored as HALF, everything else as FLOAT.
    """
    _require_openexr()
    arrays = {}
    for name, data in channels.items():
        data = np.asarray(data)
        if data.dtype != np.float16:
            data = data.astype(np.float32)
        arrays[name] = np.ascontiguousarray(data)
    full_header = {"compression": getattr(OpenEXR, f"{compression}_COMPRESSION"),
                   "type": OpenEXR.scanlineimage}
    full_header.update(header or {})

    def write(tmp: Path) -> None:
        with OpenEXR.File(full_header, arrays) as exr:
            exr.write(str(tmp))
    write_atomic(path, write)


def write_rgb(path: str | os.PathLike, rgb: np.ndarray, alpha: np.ndarray | None = None,
              layer: str = "") -> None:
    """Write a linear (H, W, 3) image as an RGB(A) EXR. `layer` prefixes channel names."""
    prefix = f"{layer}." if layer else ""
    channels = {f"{prefix}{c}": rgb[..., i] for i, c in enumerate("RGB")}
    if alpha is not None:
        channels[f"{prefix}A"] = alpha
    write_channels(path, channels)


def write_frame(path: str | os.PathLike, frame: schema.Frame, view_layer: str = "ViewLayer",
                blender_version: tuple[int, int] = (5, 0)) -> None:
    """Write a Frame with Blender's channel naming (4.x or 5.x pass names), single part.

    Used by tests and tools that need an EXR that reads back exactly like a Blender one.
    """
    channels = {}
    new_names = blender_version >= (5, 0)
    for key, arr in frame.items():
        spec = schema.pass_spec(key)
        if not spec.rendered:        # made from the render's settings; no pass to write
            continue
        blender_name = spec.blender_names[-1] if new_names else spec.blender_names[0]
        for i, chan in enumerate(spec.channels):
            channels[f"{view_layer}.{blender_name}.{chan}"] = arr[..., i]
    write_channels(path, channels)
