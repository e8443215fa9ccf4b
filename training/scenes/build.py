"""build_scene: one deterministic procedural scene per (kind, seed)."""
from __future__ import annotations

import random
from collections import Counter

from addon import blender_api
from neural_core import schema

from . import interior, street, studio, tabletop
from .blender_compat import reset_blender
from .geometry import Builder
from .lighting import add_camera, add_sky_dome, add_sun, setup_hdri_world, setup_world, sky_colors
from .materials import MaterialLibrary
from .render import enable_passes

KINDS = {"street": street.build, "interior": interior.build, "tabletop": tabletop.build,
         "closeup": tabletop.build_closeup, "studio": studio.build}


def build_scene(kind: str, seed: int, resolution=(320, 180), frame: int = 1) -> dict:
    """Replace the current Blender file by a new scene of `kind` drawn from `seed`.

    The same (kind, seed) gives the same objects, materials, lights and camera. `frame` is the
    frame to render (scene.frame_start/end/current): moving objects pass through their built
    positions there, so the Vector pass holds their motion. Returns a summary: kind, seed,
    resolution, object count and the classes present.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown scene kind {kind!r}; kinds: {', '.join(KINDS)}")
    scene = reset_blender()
    rng = random.Random(f"photoreal-scene:{kind}:{int(seed)}")
    builder = Builder(scene, MaterialLibrary(rng), frame)
    layout = KINDS[kind](builder, rng)

    zenith, horizon, overcast = sky_colors(rng, layout.night)
    hdri = None
    if rng.random() < layout.hdri_chance:
        hdri = setup_hdri_world(scene, rng, layout.world_strength)
    else:
        setup_world(scene, layout.world_color or zenith, layout.world_strength)
    if layout.outdoor:
        add_sky_dome(builder, zenith, horizon, layout.world_strength, hdri)
        # An HDRI carries its own sun, but at 1k its disc is too soft for crisp shadows.
        if not layout.night and (hdri is None or rng.random() < 0.5):
            add_sun(scene, rng, overcast)
    add_camera(scene, layout.camera, frame)
    scene["photoreal_hdri"] = hdri["name"] if hdri else ""

    scene.render.resolution_x, scene.render.resolution_y = (int(v) for v in resolution)
    scene.render.resolution_percentage = 100
    scene.frame_start = scene.frame_end = frame
    scene.frame_set(frame)
    scene.view_settings.view_transform = "AgX"   # same look in 4.5 and 5.x previews
    enable_passes(scene)
    return describe(scene, kind, seed)


def describe(scene, kind: str, seed: int) -> dict:
    classes = Counter(obj.get(schema.CLASS_PROPERTY) for obj in scene.objects
                      if obj.get(schema.CLASS_PROPERTY))
    return {
        "kind": kind,
        "seed": int(seed),
        "resolution": [scene.render.resolution_x, scene.render.resolution_y],
        "objects": sum(classes.values()),
        "night": bool(scene.get("photoreal_night", False)),
        "hdri": scene.get("photoreal_hdri", ""),
        "lens": round(scene.camera.data.lens, 1),
        "camera_height": round(scene.camera.location.z, 2),
        "classes": dict(sorted(classes.items())),
        "blender": blender_api.VERSION_STRING,
    }
