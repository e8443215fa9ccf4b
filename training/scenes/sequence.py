"""Short animated sequences from a built scene (make-scenes --sequence N).

build_scene keys moving things on frame-1 and frame+1 only (one frame of motion for the Vector
pass). For a sequence the same motion is made to last: linear keys with linear extrapolation,
so every frame moves by the same velocity. The camera always moves (a slow dolly/pan drawn from
the seed if the scene's camera is still) and at least one object moves (a street's traffic, or
one object of an interior pushed sideways).
"""
from __future__ import annotations

import random

import bpy

from addon.blender_api import fcurves
from neural_core import schema

from .lighting import animate

# Classes that may be pushed around when a scene has no moving object (never walls or floors).
MOVABLE = ("car", "person", "bicycle", "motorcycle", "truck", "bus", "rider", "void", "terrain",
           "vegetation", "pole", "traffic sign")


def animate_sequence(scene, first: int, length: int, seed: int) -> dict:
    """Frames first..first+length-1 of the built scene become one shot; returns what moves."""
    rng = random.Random(f"photoreal-sequence:{int(seed)}")
    camera = scene.camera
    if not _is_animated(camera):
        animate(camera, (rng.uniform(-0.08, 0.08), rng.uniform(0.04, 0.12), 0.0), first)
    movers = [o for o in scene.objects if o is not camera and _is_animated(o)]
    if not movers:
        movers = _push_one_object(scene, rng, first)
    for obj in [camera, *movers]:
        _linear_forever(obj)
    scene.frame_start, scene.frame_end = first, first + length - 1
    scene.frame_set(first)
    return {"frames": [first, first + length - 1], "moving": sorted(o.name for o in movers)}


def _is_animated(obj) -> bool:
    return bool(obj.animation_data and obj.animation_data.action)


def _push_one_object(scene, rng: random.Random, first: int) -> list:
    candidates = sorted((o for o in scene.objects if o.type == "MESH"
                         and o.get(schema.CLASS_PROPERTY) in MOVABLE), key=lambda o: o.name)
    if not candidates:
        candidates = sorted((o for o in scene.objects if o.type == "MESH"), key=lambda o: o.name)
    if not candidates:
        return []
    obj = rng.choice(candidates)
    animate(obj, (rng.choice((-1, 1)) * rng.uniform(0.08, 0.2), 0.0, 0.0), first)
    return [obj]


def _linear_forever(obj) -> None:
    for curve in fcurves(obj):
        curve.extrapolation = "LINEAR"
        for key in curve.keyframe_points:
            key.interpolation = "LINEAR"
    bpy.context.view_layer.update()
