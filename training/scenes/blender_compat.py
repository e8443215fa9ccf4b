"""The few places where Blender 4.5 and 5.x differ for the scene generator.

Verified facts are in shared/notes/blender-api-probe.md; this module needs only bpy.
"""
from __future__ import annotations

import bpy

BLENDER_5 = bpy.app.version >= (5, 0, 0)


def reset_blender() -> bpy.types.Scene:
    """Start from an empty file so every scene is built from the same state (determinism)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy.context.scene


def set_multilayer_exr(image_settings, half: bool = False, codec: str = "ZIP") -> None:
    """Make `image_settings` write one multilayer EXR holding every pass."""
    if BLENDER_5:
        # media_type must come first: file_format='OPEN_EXR_MULTILAYER' raises while it is 'IMAGE'.
        image_settings.media_type = "MULTI_LAYER_IMAGE"
        # One interleaved part: faster to write and readable by single-part EXR readers.
        image_settings.use_exr_interleave = True
    else:
        image_settings.file_format = "OPEN_EXR_MULTILAYER"
    image_settings.color_depth = "16" if half else "32"
    image_settings.exr_codec = codec


def socket(sockets, identifier: str):
    """Node sockets by identifier: ShaderNodeMix repeats the names 'A'/'B' for each data type."""
    return next(s for s in sockets if s.identifier == identifier)


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
