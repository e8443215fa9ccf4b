"""Getting a render's passes into numpy.

In background mode the Render Result's pixels and the Viewer node are not available, so the
render is saved as an uncompressed multilayer EXR on /dev/shm (memory) and read back with
OpenEXR (docs/blender_api.md, "Reading a render's passes").
"""
from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import bpy

from . import blender_api
from .core import errors, exr, files, schema
from .preferences import preferences

RENDER_RESULT = "Render Result"


def temp_directory() -> Path:
    """A private folder for pass files: the preference, else /dev/shm, else the system temp."""
    prefs = preferences()
    chosen = bpy.path.abspath(prefs.temp_directory) if prefs and prefs.temp_directory else ""
    base = Path(chosen) if chosen else files.fast_temp_base()
    if not (base.is_dir() and os.access(base, os.W_OK)):
        base = Path(tempfile.gettempdir())
    folder = base / f"photoreal-{os.getpid()}"
    if not folder.is_dir():
        remove_stale_folders(base)
        folder.mkdir()
        # Also when the add-on is never unregistered (a script that exits without it), so that
        # /dev/shm does not collect one folder per Blender process.
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def render_size(scene) -> tuple[int, int]:
    """(width, height) of the rendered image in pixels."""
    scale = scene.render.resolution_percentage / 100.0
    return int(scene.render.resolution_x * scale), int(scene.render.resolution_y * scale)


@contextlib.contextmanager
def multilayer_exr_settings(scene):
    """Temporarily switch the scene's output format to a 32-bit uncompressed multilayer EXR."""
    settings = scene.render.image_settings
    saved = [(n, getattr(settings, n)) for n in blender_api.IMAGE_SETTINGS if hasattr(settings, n)]
    try:
        # Uncompressed: fastest on tmpfs. Interleaved (5.x): one part instead of one per pass.
        blender_api.set_multilayer_exr(settings, depth="32", codec="NONE", interleave=True)
        yield settings
    finally:
        for name, value in saved:
            with contextlib.suppress(TypeError, ValueError, AttributeError):
                setattr(settings, name, value)


def save_render_passes(scene, path: str | os.PathLike | None = None) -> Path:
    """Write the current Render Result (all passes, plus Composite) to a multilayer EXR.

    Raises LookupError when there is no render to save.
    """
    image = bpy.data.images.get(RENDER_RESULT)
    if image is None:
        raise LookupError("there is no render yet")
    # Never a name from the .blend in a path: a scene named "a/../../x" would write and then
    # delete a file outside the folder (issue 13, item 1). A fresh name per call, so that the
    # button and a render in the UI's render thread never share a file.
    if path is None:
        handle, name = tempfile.mkstemp(prefix="passes-", suffix=".exr", dir=temp_directory())
        os.close(handle)
        path = name
    path = Path(path)
    path.unlink(missing_ok=True)
    with multilayer_exr_settings(scene):
        try:
            image.save_render(filepath=str(path), scene=scene)
        except RuntimeError as exc:  # "no render result" and similar
            raise LookupError(f"the render cannot be saved: {exc}") from None
    if not path.is_file():
        raise LookupError("the render could not be saved")
    return path


def read_render_passes(scene, view_layer: str | None = None) -> schema.Frame | None:
    """The last render's passes as a Frame, or None if there is no (readable) render."""
    try:
        path = save_render_passes(scene)
    except LookupError:
        return None
    try:
        return exr.read_frame(path, view_layer or scene.view_layers[0].name)
    except (errors.CorruptFileError, errors.MissingPassError):
        return None
    finally:
        path.unlink(missing_ok=True)


def composite_from_channels(channels) -> "np.ndarray | None":
    """The compositor's output (Composite layer) of a saved render as (H, W, 4), or None."""
    import numpy as np
    names = [f"Composite.Combined.{c}" for c in "RGBA"]
    if not all(n in channels for n in names):
        return None
    return np.stack([channels[n] for n in names], axis=-1)


def remove_stale_folders(base: Path) -> None:
    """Delete the pass folders of Blender processes that are gone (a killed render or export
    leaves its folder, sometimes with a frame's EXR of hundreds of MB, on /dev/shm)."""
    for folder in base.glob("photoreal-*"):
        pid = folder.name.removeprefix("photoreal-")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's live process
        return True
    return True


def remove_temp_directory() -> None:
    """Delete this process's pass folder (called on unregister)."""
    for base in {Path("/dev/shm"), Path(tempfile.gettempdir())}:
        shutil.rmtree(base / f"photoreal-{os.getpid()}", ignore_errors=True)
