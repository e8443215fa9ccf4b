"""Temporal stability of Enhance on Render: each frame of an animation render is blended with
the previous enhanced frame along the Vector pass (neural_core.temporal; docs/temporal.md).

Frames come in order within one render job (F12, `blender -b -a`, `-s/-e`,
bpy.ops.render.render(animation=True)); render_init starts every job with no history, so a
single F12 frame is exactly the per-frame result. Within a job the history also restarts on a
frame that is not the next one (frame_step > 1: the Vector pass only reaches the adjacent
frame), another camera (camera markers: a cut), a resolution change, and for every view layer
and scene separately. Off (scene.photoreal.temporal = False): every frame is enhanced alone.
scene.photoreal.temporal_lighting (default on): the history also restarts where the lighting
changes (a moving lamp or shadow); its value is read when a job's first frame is filtered.
"""
from __future__ import annotations

import sys

from bpy.app.handlers import persistent

from .core import neural_core  # noqa: F401  (the bundled package; temporal is imported from it)
from .core import schema

# Passes the filter reads (neural_core.temporal.USED_PASSES): the Vector pass to reproject,
# depth and ids to find disocclusions (ids: Object Index on Cycles, the class AOV on EEVEE).
PASSES = ("motion", "depth", "emission")
# (scene name, view layer name) -> TemporalFilter. Render thread only, one frame at a time.
_FILTERS: dict = {}
LAST = {"reset": None, "history": 0.0, "ms": 0.0}
_SAID: set = set()


def _module():
    """neural_core.temporal. Its compiled kernels are cached in the extension's user folder, never
    beside the add-on: a system or farm install may be read-only and must stay untouched."""
    import importlib
    name = neural_core.__name__ + ".temporal"
    if name in sys.modules:
        return sys.modules[name]
    import bpy
    try:
        import numba
    except ImportError:           # neural_core.temporal's import says what to install
        return importlib.import_module(name)
    chosen = numba.config.CACHE_DIR              # NUMBA_CACHE_DIR, when the user set one
    if not chosen:
        # Read when the kernels are defined (at import): only this module's use the folder.
        numba.config.CACHE_DIR = bpy.utils.extension_path_user(__package__, path="compiled", create=True)
    try:
        return importlib.import_module(name)
    finally:
        numba.config.CACHE_DIR = chosen


def enabled(scene) -> bool:
    settings = getattr(scene, "photoreal", None)
    return bool(settings and settings.temporal)


def apply(scene, view_layer: str, frame: schema.Frame, rgb):
    """The enhanced frame `rgb`, temporally filtered if the scene asks for it."""
    if not enabled(scene):
        return rgb
    key = (scene.name, view_layer)
    filt = _FILTERS.get(key)
    if filt is None:
        module = _module()
        filt = _FILTERS[key] = module.TemporalFilter(module.settings_for(scene.photoreal.temporal_lighting))
    camera = scene.camera.name if scene.camera else None
    out = filt.apply(frame, rgb, scene.frame_current, key=camera)
    LAST.update(reset=filt.last_reset, history=filt.last_history_fraction, ms=filt.last_ms)
    _report(scene, filt.last_reset)
    return out


def _report(scene, reason: str | None) -> None:
    """Say on stderr why the history restarted; a missing Vector pass only once per job."""
    if not reason or reason == "first frame" or reason in _SAID:
        return
    if reason.startswith("the frame has no Vector pass"):
        _SAID.add(reason)
        reason += ("; frames are enhanced one by one. Enable View Layer > Passes > Vector and "
                   "turn off Motion Blur, or turn off Photoreal > Temporal Stability")
    print(f"Photoreal Enhance: frame {scene.frame_current}: temporal history restarted "
          f"({reason})", file=sys.stderr, flush=True)


def reset() -> None:
    _FILTERS.clear()
    _SAID.clear()


@persistent
def on_render_init(scene, *_):
    reset()


def register():
    from bpy.app import handlers
    if on_render_init not in handlers.render_init:
        handlers.render_init.append(on_render_init)


def unregister():
    from bpy.app import handlers
    while on_render_init in handlers.render_init:
        handlers.render_init.remove(on_render_init)
    reset()
    # Only if it was loaded: importing it now (at Blender's exit) would import
    # concurrent.futures, which registers an atexit hook and fails after shutdown began.
    module = sys.modules.get(neural_core.__name__ + ".temporal")
    if module is not None:
        module.shutdown()
