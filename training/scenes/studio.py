"""Studio shots: a figure on a ground plane, often before a backdrop wall, in the materials and
media no other kind has: glass (transmission), subsurface scattering, clear coat, sheen, and
sometimes haze (a scattering volume). A kind for checking the model on content it was not
trained on (docs/studio_eval.txt), and for a corpus with it (scripts/make_default_corpus.sh).

Cityscapes classes by role (training/scenes/README.md):

    ground -> terrain                backdrop wall -> wall
    figure, bust -> person           glass pieces -> car          props, pedestals -> truck
"""
from __future__ import annotations

import math
import random

import bpy

from .geometry import Builder, box_mesh, monkey_mesh
from .lighting import Layout
from .materials import fog_material, special_material

SPECIAL = ("glass", "subsurface", "coat", "sheen")


def build(b: Builder, rng: random.Random) -> Layout:
    b.box("terrain", (30.0, 30.0, 0.02), (0.0, 0.0, -0.02))
    if rng.random() < 0.6:
        b.box("wall", (12.0, 0.1, 5.0), (0.0, rng.uniform(2.0, 5.0), 0.0),
              material=b.materials.random("wall", "interior wall"), rotation_z=rng.uniform(-0.4, 0.4))
    height = _figure(b, rng)
    for index in range(rng.randint(2, 5)):
        _piece(b, rng, index)
    _key_light(b.scene, rng, height)
    if rng.random() < 0.35:
        _haze(b.scene, rng)
    target = (0.0, 0.0, height * rng.uniform(0.4, 0.8))
    return Layout(camera=_camera(rng, target, height), outdoor=False,
                  world_strength=rng.uniform(0.3, 1.5), world_color=None, hdri_chance=1.0)


def _figure(b: Builder, rng) -> float:
    """A standing figure of primitives, or a bust (Suzanne) on a pedestal; returns its height."""
    skin = special_material("figure", "person", rng, rng.choice(("subsurface", "subsurface", "coat")))
    if rng.random() < 0.5:
        pedestal = rng.uniform(0.6, 1.1)
        b.box("truck", (0.4, 0.4, pedestal), (0.0, 0.0, 0.0),
              material=special_material("pedestal", "truck", rng, rng.choice(SPECIAL[1:])))
        size = rng.uniform(0.3, 0.6)
        b.add(monkey_mesh("bust", size), "person", skin, (0.0, 0.0, pedestal),
              rotation_z=rng.uniform(-0.6, 0.6))
        return pedestal + size
    tall = rng.uniform(1.5, 1.9)
    clothes = special_material("clothes", "person", rng, rng.choice(("sheen", "coat")))
    for side in (-1, 1):
        b.cylinder("person", 0.07 * tall / 1.7, 0.47 * tall, (side * 0.1, 0.0, 0.0), material=clothes)
        b.cylinder("person", 0.05 * tall / 1.7, 0.4 * tall, (side * 0.24 * tall / 1.7, 0.0, 0.45 * tall),
                   material=skin, rotation=(0.0, side * rng.uniform(0.05, 0.5), 0.0))
    b.cylinder("person", 0.16 * tall / 1.7, 0.36 * tall, (0.0, 0.0, 0.47 * tall), material=clothes,
               top_radius=0.2 * tall / 1.7, segments=24)
    b.sphere("person", 0.065 * tall, (0.0, 0.0, 0.9 * tall), material=skin, subdivisions=3)
    return tall


def _piece(b: Builder, rng, index: int) -> None:
    """A glass or coated object around the figure."""
    angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(0.6, 2.0)
    x, y = distance * math.cos(angle), distance * math.sin(angle)
    kind = "glass" if index == 0 or rng.random() < 0.5 else rng.choice(SPECIAL[1:])
    class_name = "car" if kind == "glass" else "truck"
    material = special_material(f"piece.{index}", class_name, rng, kind)
    if rng.random() < 0.5:
        radius = rng.uniform(0.1, 0.35)
        b.sphere(class_name, radius, (x, y, radius), material=material, subdivisions=4)
    else:
        radius, height = rng.uniform(0.08, 0.25), rng.uniform(0.2, 0.9)
        b.cylinder(class_name, radius, height, (x, y, 0.0), material=material, segments=32,
                   top_radius=radius * rng.uniform(0.3, 1.2))


def _key_light(scene, rng, height: float) -> None:
    kind = rng.choice(("SPOT", "AREA", "POINT"))
    light = bpy.data.lights.new("Key", kind)
    light.energy = rng.uniform(100.0, 800.0)
    light.color = (1.0, rng.uniform(0.8, 1.0), rng.uniform(0.6, 1.0))
    if kind == "SPOT":
        light.spot_size = rng.uniform(0.4, 1.2)
        light.spot_blend = rng.uniform(0.1, 0.6)
    elif kind == "AREA":
        light.size = rng.uniform(0.5, 2.0)
    obj = bpy.data.objects.new("Key", light)
    scene.collection.objects.link(obj)
    angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(2.0, 4.0)
    obj.location = (distance * math.cos(angle), distance * math.sin(angle), height + rng.uniform(0.5, 2.5))
    dx, dy, dz = (-c for c in obj.location)
    dz += height / 2
    obj.rotation_euler = (math.atan2(math.hypot(dx, dy), -dz), 0.0, math.atan2(dy, dx) - math.pi / 2)


def _haze(scene, rng) -> None:
    """A box of thin scattering haze around the set (no class: volumes write no object index)."""
    mesh = box_mesh("haze", (16.0, 16.0, 6.0))
    mesh.materials.append(fog_material("haze", rng.uniform(0.01, 0.06)))
    obj = bpy.data.objects.new("Haze", mesh)
    scene.collection.objects.link(obj)


def _camera(rng, target, height: float) -> dict:
    lens = rng.uniform(35.0, 85.0)
    # The subject fills 50-110 % of the frame's height (2:1 frames: an 18 mm tall sensor).
    distance = height * lens / 18.0 / rng.uniform(0.5, 1.1)
    azimuth = math.radians(rng.uniform(-50, 50)) - math.pi / 2
    z = max(0.2, target[2] + rng.uniform(-0.5, 1.0))
    location = (target[0] + distance * math.cos(azimuth), target[1] + distance * math.sin(azimuth), z)
    dx, dy, dz = (t - o for t, o in zip(target, location))
    rotation = (math.atan2(math.hypot(dx, dy), -dz), 0.0, math.atan2(dy, dx) - math.pi / 2)
    return dict(location=location, rotation=rotation, lens=lens,
                velocity=(rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01), 0.0))
