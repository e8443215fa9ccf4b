"""The "Photoreal" render pass of Cycles, computed in memory from the same frame's passes.

Cycles is a Python RenderEngine (cycles.CyclesRender), so its `render` and
`update_render_passes` are wrapped (the technique of Dream Textures' render pass; what Blender
allows here is in docs/blender_api.md):
- update_render_passes registers a 4-channel "Photoreal" pass: a socket on the Render Layers
  node, and a layer in multilayer EXRs;
- after Cycles has rendered, the wrapper reads the passes from the engine's result, runs the
  model and writes the enhanced image into the Photoreal pass of that same result (only that
  pass: rewriting the whole result through begin_result/end_result, as Dream Textures does,
  copies every pass again, ~110 ms at 1080p).
The compositor runs after the engine, so each frame is composited with its own enhancement.
Only active while scene.photoreal.enhance_on_render is on. unregister() restores Cycles.
"""
from __future__ import annotations

import sys
import time
import traceback

import numpy as np

from . import compositor, enhance, temporal
from .compositor import PASS_NAME, WEIGHT_NAME, blender_rgba
from .core import buffers, errors, schema

_ORIGINAL: dict[str, object] = {}
OURS = (PASS_NAME, WEIGHT_NAME)   # passes the wrapper writes, never reads


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
    # Scenes set up by this version carry the pass as an AOV, which Cycles registers itself;
    # files from before that still get the registered pass.
    if scene is not None and _enabled(scene) and PASS_NAME not in renderlayer.aovs:
        self.register_pass(scene, renderlayer, PASS_NAME, 4, "RGBA", "COLOR")


def _render(self, depsgraph):
    # Everything needed from the depsgraph is read BEFORE Cycles renders. In background mode
    # (without persistent data) Cycles frees the render depsgraph once it has synced the scene
    # (BlenderSession::free_blender_memory_if_possible -> RE_engine_free_blender_memory), so
    # when its render returns `depsgraph` points to freed memory: `depsgraph.scene` then read a
    # reused block in about 1 process in 5 and enhance_on_render came back False (issue 13,
    # item 2: black renders). depsgraph.scene is the original scene, which outlives the render.
    scene = depsgraph.scene
    layer_name = depsgraph.view_layer.name
    enabled = not self.is_preview and _enabled(scene)
    _ORIGINAL["render"](self, depsgraph)
    if not enabled:   # the weight AOV stays 0: the composite is the plain render
        return
    result = self.get_result()
    layer = next((l for l in result.layers if l.name == layer_name), result.layers[0])
    _fill_pass(self, scene, result, layer)


def _fill_pass(self, scene, result, layer) -> None:
    """Enhance the frame into the Photoreal pass; whatever goes wrong, the pass gets the plain
    render (never zeros: the compositor would mix black in) and stderr says why."""
    clock = time.perf_counter()
    w, h = result.resolution_x, result.resolution_y
    pixels = {p.name: _read_pass(p, w, h) for p in layer.passes if p.name not in OURS}
    steps = {"readback": _elapsed_ms(clock)}
    reason = "the render was cancelled" if self.test_break() else None
    rgb = alpha = None
    if reason is None:
        self.update_stats("Photoreal Enhance", "Enhancing")
        try:
            rgb, alpha = _enhance(scene, layer, pixels, steps)
        except Exception as exc:  # never take the render down with us; say what happened
            if not isinstance(exc, errors.PhotorealError):
                traceback.print_exc(file=sys.stderr)
            reason = str(exc)
    if reason is not None:
        message = (f"Photoreal Enhance: frame {scene.frame_current} not enhanced: {reason}; "
                   f"the {PASS_NAME} pass holds the plain render")
        print(message, file=sys.stderr, flush=True)
        # A warning, not an error: an error report makes Blender drop the frame (and stop an
        # animation); the frame is still worth writing, un-enhanced.
        self.report({"WARNING"}, message)
        # The render itself, so the composite stays the render instead of fading to black.
        combined = pixels["Combined"]
        rgb, alpha = combined[..., :3], combined[..., 3]
    clock = time.perf_counter()
    _write_pass(self, result, layer, blender_rgba(rgb, alpha, "render_pass"))
    steps["compositing"] = _elapsed_ms(clock)
    enhance.LAST_RUN["steps"] = steps


def _enhance(scene, layer, pixels, steps: dict) -> tuple[np.ndarray, np.ndarray | None]:
    """The layer's passes -> the enhanced (H, W, 3) image and the render's alpha. Adds the time
    of each step, in ms, to `steps` (the panel and the benchmarks read it from LAST_RUN)."""
    clock = time.perf_counter()
    frame = schema.frame_from_passes(
        {p.name: {c: pixels[p.name][..., i] for i, c in enumerate(p.channel_id)}
         for p in layer.passes if p.name not in OURS})
    steps["readback"] += _elapsed_ms(clock)
    rgb = enhance.enhance_frame(scene, frame)
    steps.update(enhance.LAST_RUN.get("timings", {}))
    rgb = temporal.apply(scene, layer.name, frame, rgb)
    return rgb, frame["alpha"][..., 0] if "alpha" in frame else None


def _elapsed_ms(since: float) -> float:
    return (time.perf_counter() - since) * 1e3


def _write_pass(engine, result, layer, pixels: np.ndarray) -> None:
    """Write Blender-ordered RGBA `pixels` into the Photoreal pass of the engine's own result."""
    target = next((p for p in layer.passes if p.name == PASS_NAME), None)
    if target is None:   # registered after this render began; the next render has it
        message = (f"Photoreal Enhance: the {PASS_NAME} pass is missing from this render, so "
                   f"this frame is not enhanced; render again")
        # engine.report prints nothing in background mode: stderr is what a farm log keeps.
        print(message, file=sys.stderr, flush=True)
        engine.report({"WARNING"}, message)
        return
    target.rect.foreach_set(pixels)
    weight = next((p for p in layer.passes if p.name == WEIGHT_NAME), None)
    if weight is not None:   # 1 = "the add-on wrote this frame's pass" (compositor.WEIGHT_NAME)
        weight.rect.foreach_set(np.ones(len(pixels) // 4, np.float32))
    engine.update_result(result)


# Pass buffers kept from frame to frame (render thread only; a frame's arrays are done with when
# its render call returns): fresh ~170 MB a 1080p frame cost their page faults every frame.
_PASS_BUFFERS = buffers.ReusedArrays()


def _read_pass(render_pass, w: int, h: int) -> np.ndarray:
    """A pass as (H, W, C) float32, row 0 = top (render buffers start at the bottom)."""
    buf = _PASS_BUFFERS.get(render_pass.name, (w * h * render_pass.channels,))
    render_pass.rect.foreach_get(buf)
    return buf.reshape(h, w, render_pass.channels)[::-1]


def enhance_on_render_changed(scene, view_layer=None) -> None:
    """Turning Enhance on Render on prepares the scene (passes, class tags) and wires the
    compositor; turning it off drops the pass from the Render Layers node."""
    if scene.photoreal.enhance_on_render:
        try:
            enhance.prepare_scene(scene, view_layer or scene.view_layers[0])
        except Exception as exc:  # a property update cannot report: the console must do
            print(f"Photoreal Enhance: cannot prepare the scene: {exc}")
    refresh_render_layers(scene)
    if scene.photoreal.enhance_on_render or compositor.has_nodes(scene):
        compositor.ensure_nodes(scene)


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
    _PASS_BUFFERS.clear()
