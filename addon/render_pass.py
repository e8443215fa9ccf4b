"""The "Photoreal" render pass of Cycles, computed in memory from the same frame's passes.

Cycles is a Python RenderEngine (cycles.CyclesRender), so its `render` and
`update_render_passes` are wrapped (the technique of Dream Textures' render pass, see
shared/notes/blender-addon-research.md sections 0, 7.1 and 9):
- update_render_passes registers a 4-channel "Photoreal" pass: a socket on the Render Layers
  node, and a layer in multilayer EXRs;
- after Cycles has rendered, the wrapper reads the passes from the engine's result, runs the
  model and writes a new result in which the Photoreal pass holds the enhanced image and every
  other pass is copied over (end_result overwrites them all, unset ones become zero).
The compositor runs after the engine, so each frame is composited with its own enhancement.
Only active while scene.photoreal.enhance_on_render is on. unregister() restores Cycles.
"""
from __future__ import annotations

import sys
import traceback

import numpy as np

from . import enhance
from .compositor import PASS_NAME
from .core import errors, schema

_ORIGINAL: dict[str, object] = {}


def _cycles_engine():
    try:
        import cycles
    except ImportError:
        return None
    return getattr(cycles, "CyclesRender", None)


def is_installed() -> bool:
    return bool(_ORIGINAL)


def _enabled(scene) -> bool:
    settings = getattr(scene, "photoreal", None)
    return bool(settings and settings.enhance_on_render)


def _update_render_passes(self, scene=None, renderlayer=None):
    _ORIGINAL["update_render_passes"](self, scene, renderlayer)
    if scene is not None and _enabled(scene):
        self.register_pass(scene, renderlayer, PASS_NAME, 4, "RGBA", "COLOR")


def _render(self, depsgraph):
    _ORIGINAL["render"](self, depsgraph)
    scene = depsgraph.scene
    if self.is_preview or not _enabled(scene) or self.test_break():
        return
    result = self.get_result()
    layer = next((l for l in result.layers if l.name == depsgraph.view_layer.name), result.layers[0])
    w, h = result.resolution_x, result.resolution_y
    pixels = {p.name: _read_pass(p, w, h) for p in layer.passes if p.name != PASS_NAME}
    self.update_stats("Photoreal Enhance", "Enhancing")
    try:
        enhanced = _enhance(scene, layer, pixels)
    except Exception as exc:  # never take the render down with us; say what happened
        if not isinstance(exc, errors.PhotorealError):
            traceback.print_exc(file=sys.stderr)
        message = f"Photoreal Enhance: frame {scene.frame_current} not enhanced: {exc}"
        print(message, file=sys.stderr, flush=True)
        # A warning, not an error: an error report makes Blender drop the frame (and stop an
        # animation); the frame is still worth writing, un-enhanced.
        self.report({"WARNING"}, message)
        # The render itself, so the composite stays the render instead of fading to black.
        enhanced = pixels.get("Combined")
    _write_result(self, layer.name, w, h, pixels, enhanced)


def _enhance(scene, layer, pixels) -> np.ndarray:
    """The layer's passes -> (H, W, 4) enhanced image (alpha from the render)."""
    channels = {f"{layer.name}.{p.name}.{c}": pixels[p.name][..., i]
                for p in layer.passes if p.name != PASS_NAME for i, c in enumerate(p.channel_id)}
    frame = schema.frame_from_exr_channels(channels, layer.name)
    rgb = enhance.enhance_frame(scene, frame)
    enhanced = np.empty((*rgb.shape[:2], 4), np.float32)
    enhanced[..., :3] = rgb
    enhanced[..., 3] = frame["alpha"][..., 0] if "alpha" in frame else 1.0
    return enhanced


def _write_result(engine, layer_name: str, w: int, h: int, pixels, enhanced) -> None:
    """A new result with the Photoreal pass; end_result overwrites every pass, so copy them all."""
    new = engine.begin_result(0, 0, w, h, layer=layer_name)
    for p in new.layers[0].passes:
        data = enhanced if p.name == PASS_NAME else pixels.get(p.name)
        if data is not None:
            p.rect.foreach_set(np.ascontiguousarray(data[::-1]).ravel())
    engine.end_result(new)


def _read_pass(render_pass, w: int, h: int) -> np.ndarray:
    """A pass as (H, W, C) float32, row 0 = top (render buffers start at the bottom)."""
    buf = np.empty(w * h * render_pass.channels, np.float32)
    render_pass.rect.foreach_get(buf)
    return buf.reshape(h, w, render_pass.channels)[::-1]


def refresh_render_layers(scene) -> None:
    """Make Render Layers nodes show (or drop) the Photoreal socket after a settings change."""
    for view_layer in scene.view_layers:
        view_layer.update_render_passes()


def register():
    engine = _cycles_engine()
    if engine is None or _ORIGINAL:
        return
    _ORIGINAL["render"] = engine.render
    _ORIGINAL["update_render_passes"] = engine.update_render_passes
    engine.render = _render
    engine.update_render_passes = _update_render_passes


def unregister():
    engine = _cycles_engine()
    if engine is not None and _ORIGINAL:
        engine.render = _ORIGINAL["render"]
        engine.update_render_passes = _ORIGINAL["update_render_passes"]
    _ORIGINAL.clear()
