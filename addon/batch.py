"""Enhancing every frame of renders by engines other than Cycles (EEVEE).

EEVEE is not a Python RenderEngine, so it cannot get a render pass. Instead, while
enhance_on_render is on:
- render_init: our Mix node's factor is set to 0, so the compositor writes the user's result;
- render_post (after compositing, before the file is written): the frame's passes and
  composite are saved to a multilayer EXR on /dev/shm, enhanced, and mixed in numpy;
- render_write (the frame file exists): the file is rewritten with the mixed image;
- render_complete / render_cancel: the Mix factor is set back from scene.photoreal.strength.
Each frame is thus enhanced from its own passes (an Image node filled in render_post would
only show up in the next frame). Handlers are removed on unregister (Blender 4.5 hangs at
exit when handlers stay registered).
"""
from __future__ import annotations

import os
import sys
import traceback

import bpy
import numpy as np
from bpy.app.handlers import persistent

from . import blender_api, compositor, enhance, passes, readback, temporal
from .core import errors, exr, schema

OUTPUT_IMAGE = "Photoreal Output"
_STATE: dict = {"pending": None}


def active(scene) -> bool:
    settings = getattr(scene, "photoreal", None)
    return bool(settings and settings.enhance_on_render) and not passes.is_cycles(scene)


def _log(message: str) -> None:
    print(f"Photoreal Enhance: {message}", file=sys.stderr, flush=True)


@persistent
def on_render_init(scene, *_):
    """The node factor is derived from scene.photoreal.strength here (a hand-edited factor
    does not last); EEVEE's composite is written unmixed and mixed in numpy instead."""
    if compositor.has_nodes(scene):
        compositor.set_strength(scene, 0.0 if active(scene) else scene.photoreal.strength)


@persistent
def on_render_post(scene, *_):
    _STATE["pending"] = None
    if not active(scene):
        return
    try:
        _STATE["pending"] = (scene.frame_current, *_enhanced_frame(scene))
    except errors.PhotorealError as exc:
        _log(f"frame {scene.frame_current} not enhanced: {exc}")
    except Exception:
        traceback.print_exc()


def _enhanced_frame(scene) -> tuple[np.ndarray, np.ndarray]:
    """(mix(composite, enhanced, strength), enhanced), both (H, W, 4), for the frame just rendered."""
    path = readback.save_render_passes(scene)
    try:
        channels = exr.read_channels(path)
    finally:
        path.unlink(missing_ok=True)
    layer = scene.view_layers[0].name
    frame = schema.frame_from_exr_channels(channels, layer)
    base = readback.composite_from_channels(channels)
    if base is None:
        base = np.concatenate([frame["image"], frame.get("alpha", np.ones_like(frame["image"][..., :1]))], -1)
    rgb = temporal.apply(scene, layer, frame, enhance.enhance_frame(scene, frame))
    s = scene.photoreal.strength
    mixed, enhanced = base.copy(), base.copy()
    mixed[..., :3] = (1.0 - s) * base[..., :3] + s * rgb
    enhanced[..., :3] = rgb
    return mixed, enhanced


@persistent
def on_render_write(scene, *_):
    pending, _STATE["pending"] = _STATE["pending"], None
    if pending is None or pending[0] != scene.frame_current:
        return
    path = written_path(scene)
    if path is None:
        _log(f"frame {scene.frame_current}: cannot find the written file to update")
        return
    try:
        write_over(scene, path, pending[1], pending[2])
    except Exception:
        traceback.print_exc()


def written_path(scene) -> str | None:
    """The file Blender just wrote for this frame (animation naming first, then a still)."""
    candidates = [scene.render.frame_path(frame=scene.frame_current)]
    still = bpy.path.abspath(scene.render.filepath)
    candidates += [still, still + scene.render.file_extension]
    existing = [p for p in candidates if os.path.isfile(p)]
    return max(existing, key=os.path.getmtime) if existing else None


def write_over(scene, path: str, rgba: np.ndarray, enhanced: np.ndarray | None = None) -> None:
    """Replace the written frame's image by `rgba`; multilayer EXRs also get the Photoreal
    layer (`enhanced`), like Cycles' render pass."""
    settings = scene.render.image_settings
    if settings.file_format == "OPEN_EXR_MULTILAYER":
        channels = exr.read_channels(path)
        layer = scene.view_layers[0].name
        for i, c in enumerate("RGBA"):
            channels[f"Composite.Combined.{c}"] = rgba[..., i]
            if enhanced is not None:
                channels[f"{layer}.{compositor.PASS_NAME}.{c}"] = enhanced[..., i]
        exr.write_channels(path, channels)
        return
    if blender_api.is_video(settings):
        _log("video output cannot be enhanced after writing; render an image sequence "
             "(EXR/PNG) instead, or use Cycles")
        return
    h, w = rgba.shape[:2]
    image = bpy.data.images.get(OUTPUT_IMAGE)
    if image is None or tuple(image.size) != (w, h):
        if image is not None:
            bpy.data.images.remove(image)
        image = bpy.data.images.new(OUTPUT_IMAGE, w, h, alpha=True, float_buffer=True)
    image.pixels.foreach_set(np.ascontiguousarray(rgba[::-1], np.float32).ravel())
    image.update()
    image.save_render(filepath=path, scene=scene)


@persistent
def on_render_done(scene, *_):
    _STATE["pending"] = None
    if active(scene) and compositor.has_nodes(scene):
        compositor.set_strength(scene, scene.photoreal.strength)


HANDLERS = (("render_init", on_render_init), ("render_post", on_render_post),
            ("render_write", on_render_write), ("render_complete", on_render_done),
            ("render_cancel", on_render_done))


def register():
    for name, handler in HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        if handler not in handlers:
            handlers.append(handler)


def unregister():
    for name, handler in HANDLERS:
        handlers = getattr(bpy.app.handlers, name)
        while handler in handlers:
            handlers.remove(handler)
