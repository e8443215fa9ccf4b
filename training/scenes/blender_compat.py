"""Blender set-up helpers of the scene generator; this module needs only bpy.

The differences between Blender versions are not here but in the add-on's one seam,
addon/blender_api.py, which the generator's modules import.
"""
from __future__ import annotations

import bpy


def reset_blender() -> bpy.types.Scene:
    """Start from an empty file so every scene is built from the same state (determinism)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def shade_smooth(mesh) -> None:
    mesh.polygons.foreach_set("use_smooth", [True] * len(mesh.polygons))
    mesh.update()


GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL")


def enable_gpu_devices() -> str:
    """Let Cycles render on every GPU of the best available backend; returns the backend.

    Raises RuntimeError when Blender sees no GPU (then render with device 'CPU').
    """
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in GPU_BACKENDS:
        try:
            prefs.compute_device_type = backend
        except TypeError:  # backend not compiled into this Blender build
            continue
        prefs.refresh_devices()
        gpus = [d for d in prefs.devices if d.type == backend]
        if gpus:
            for device in prefs.devices:
                device.use = device.type == backend
            return backend
    raise RuntimeError("Cycles finds no GPU (tried " + ", ".join(GPU_BACKENDS) + "); "
                       "render on the CPU instead (--device cpu)")
