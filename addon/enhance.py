"""Running the neural_core runtime on a frame's passes, with the sessions kept between runs."""
from __future__ import annotations

import os
import sys
import time

import numpy as np

from . import passes
from .preferences import preferences
from .core import limits, runtime, schema

# Loaded models, keyed by everything that changes the session. Cleared on unregister.
_ENHANCERS: dict[tuple, object] = {}
# The last run, for the panel: written from the render thread too, so plain Python data only.
LAST_RUN: dict = {}


def settings_key(settings, threads: int = 0) -> tuple:
    model = settings.model_spec()
    # A re-exported custom model (same path, new file) must be loaded again.
    stamp = os.path.getmtime(model) if os.path.isfile(model) else None
    return (model, settings.device.lower(), settings.tile_size, threads or None, stamp)


def get_enhancer(settings, threads: int = 0):
    """The runtime's Enhancer for these settings (loaded once, then reused)."""
    limits.check_tile(settings.tile_size)
    threads = limits.check_threads(threads or None)[0] or 0   # capped at the CPU count
    key = settings_key(settings, threads)
    enhancer = _ENHANCERS.get(key)
    if enhancer is None:
        model, device, tile_size, threads, _ = key
        enhancer = runtime().Enhancer.from_pretrained(model=model, device=device,
                                                      tile_size=tile_size, threads=threads)
        _ENHANCERS.clear()              # one model in memory at a time
        _ENHANCERS[key] = enhancer
    return enhancer


def clear_cache() -> None:
    _ENHANCERS.clear()


def threads_preference() -> int:
    prefs = preferences()
    return prefs.threads if prefs else 0


def required_passes(settings) -> list[str]:
    """The passes the selected model reads (loads the model if needed)."""
    return list(get_enhancer(settings, threads_preference()).metadata.required_passes)


def with_render_settings(scene, frame: schema.Frame) -> schema.Frame:
    """The frame with the render's light-path depth (passes.light_paths), the `bounces` input."""
    return schema.with_light_paths(frame, **passes.light_paths(scene)) if frame else frame


def enhance_frame(scene, frame: schema.Frame) -> np.ndarray:
    """Enhance one frame with the scene's settings -> (H, W, 3) linear float32.

    Raises neural_core errors (PhotorealError) with a message for the user.
    """
    settings = scene.photoreal
    enhancer = get_enhancer(settings, threads_preference())
    start = time.perf_counter()
    rgb = enhancer.enhance(with_render_settings(scene, frame), engine=scene.render.engine)
    for warning in enhancer.last_warnings:   # stderr: in background mode reports print nothing
        print(f"Photoreal Enhance: frame {scene.frame_current}: {warning}", file=sys.stderr,
              flush=True)
    LAST_RUN.update(
        seconds=time.perf_counter() - start, provider=str(getattr(enhancer, "provider", "?")),
        timings=dict(getattr(enhancer, "last_timings", {}) or {}), frame=scene.frame_current,
        model=settings.model_spec(), trained=bool(enhancer.metadata.is_trained),
        size=tuple(rgb.shape[:2]))
    return np.asarray(rgb, np.float32)


def describe_last_run() -> str:
    if not LAST_RUN:
        return "not run yet"
    h, w = LAST_RUN["size"]
    return (f"{LAST_RUN['seconds'] * 1000:.0f} ms on {LAST_RUN['provider']} "
            f"({w}x{h}, frame {LAST_RUN['frame']})")


def prepare_scene(scene, view_layer) -> tuple[list[str], list[str]]:
    """Tag classes and enable the passes the model needs. Returns (required, notes)."""
    settings = scene.photoreal
    enhancer = get_enhancer(settings, threads_preference())
    required = list(enhancer.metadata.required_passes)
    tagged, notes = passes.tag_classes(scene)
    notes += passes.enable_passes(scene, view_layer, required, enhancer.metadata.class_source)
    if settings.temporal:   # the temporal filter's passes (addon/temporal.py)
        from . import temporal
        notes += passes.enable_passes(scene, view_layer, temporal.PASSES, enhancer.metadata.class_source)
    return required, notes
