"""Table-top product shots: products on a table before a backdrop, lit by an HDRI and softboxes.

Two kinds: `build` (tabletop) frames the table from arm's length; `build_closeup` (closeup) fills
the frame with one or two hero products in saturated, glossy or metallic paint, 10-60 cm from the
lens, where the reflections of the room and the light bounced between products dominate.

Close range, long lenses, glossy and metallic products and fine printed textures: the opposite
of the street scenes' wide views. Cityscapes classes are mapped by role (training/scenes/README.md):

    table top -> road        floor -> sidewalk          backdrop -> wall
    boxes, packs -> truck    bottles, cans, jars -> car  balls, fruit -> vegetation
    labels, cards -> traffic sign                        figurines -> person
"""
from __future__ import annotations

import math
import random

import bpy

from .geometry import Builder
from .lighting import Layout

TABLE_HEIGHT = 0.75


def build(builder: Builder, rng: random.Random) -> Layout:
    width, depth = rng.uniform(1.2, 2.4), rng.uniform(0.8, 1.4)
    _table_and_room(builder, rng, width, depth)
    products = [_product(builder, rng, width, depth) for _ in range(rng.randint(3, 9))]
    for _ in range(rng.randint(0, 2)):
        _softbox(builder.scene, rng)
    target = products[0].location if products else (0.0, 0.0, TABLE_HEIGHT)
    return Layout(camera=_camera(rng, target), outdoor=False, world_strength=rng.uniform(0.4, 2.0),
                  world_color=None, hdri_chance=1.0)


def build_closeup(builder: Builder, rng: random.Random) -> Layout:
    width, depth = rng.uniform(1.0, 2.0), rng.uniform(0.8, 1.2)
    _table_and_room(builder, rng, width, depth)
    hero_size, hero = _hero(builder, rng)
    for _ in range(rng.randint(1, 2)):   # a second hero beside the first
        if rng.random() < 0.5:
            _hero(builder, rng, offset=hero_size * rng.uniform(1.5, 3.0))
    for _ in range(rng.randint(0, 4)):   # out-of-focus companions further back
        _product(builder, rng, width, depth)
    for _ in range(rng.randint(0, 2)):
        _softbox(builder.scene, rng)
    return Layout(camera=_closeup_camera(rng, hero.location, hero_size), outdoor=False,
                  world_strength=rng.uniform(0.4, 2.0), world_color=None, hdri_chance=1.0)


def _hero(b: Builder, rng, offset: float = 0.0):
    """A saturated glossy/metallic product near the table's centre; returns (its size, it)."""
    x, y = offset * rng.choice((-1, 1)), rng.uniform(-0.1, 0.1)
    shape = rng.choice(("ball", "ball", "bottle", "can", "box"))
    class_name = {"ball": "vegetation", "box": "truck"}.get(shape, "car")
    paint = b.materials.random(class_name, "glossy paint")
    if shape == "ball":
        radius = rng.uniform(0.025, 0.1)
        return radius * 2, b.sphere(class_name, radius, (x, y, TABLE_HEIGHT + radius),
                                    material=paint, subdivisions=4)
    if shape == "box":
        side = rng.uniform(0.04, 0.2)
        size = (side, side * rng.uniform(0.5, 1.5), side * rng.uniform(0.5, 2.0))
        return max(size), b.box(class_name, size, (x, y, TABLE_HEIGHT + size[2] / 2), material=paint,
                                rotation_z=rng.uniform(0, math.pi))
    radius, height = rng.uniform(0.02, 0.06), rng.uniform(0.06, 0.25)
    top = radius * (rng.uniform(0.2, 0.5) if shape == "bottle" else 1.0)
    return height, b.cylinder(class_name, radius, height, (x, y, TABLE_HEIGHT + height / 2),
                              material=paint, segments=32, top_radius=top)


def _table_and_room(b: Builder, rng, width, depth) -> None:
    b.box("road", (width, depth, 0.04), (0.0, 0.0, TABLE_HEIGHT - 0.02), material=b.materials.random("road", "furniture"))
    for sx in (-1, 1):
        for sy in (-1, 1):
            b.box("road", (0.05, 0.05, TABLE_HEIGHT - 0.04),
                  (sx * (width / 2 - 0.06), sy * (depth / 2 - 0.06), (TABLE_HEIGHT - 0.04) / 2))
    b.box("sidewalk", (8.0, 8.0, 0.02), (0.0, 0.0, -0.01), material=b.materials.random("sidewalk", "floor"))
    if rng.random() < 0.7:   # a backdrop behind the table; otherwise the HDRI is the background
        b.box("wall", (6.0, 0.05, 3.0), (0.0, depth / 2 + rng.uniform(0.2, 1.5), 1.5),
              material=b.materials.random("wall", "interior wall"), rotation_z=rng.uniform(-0.3, 0.3))


def _product(b: Builder, rng, width, depth):
    x, y = rng.uniform(-width / 2.5, width / 2.5), rng.uniform(-depth / 3, depth / 3)
    shape = rng.choice(("box", "bottle", "can", "ball", "label", "figurine"))
    palette = rng.choice(("car", "truck", "bus", "picture", "metal", "chair", "traffic sign"))
    if shape == "box":
        size = (rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.3), rng.uniform(0.05, 0.35))
        return b.box("truck", size, (x, y, TABLE_HEIGHT + size[2] / 2),
                     material=b.materials.random("truck", palette), rotation_z=rng.uniform(0, math.pi))
    if shape in ("bottle", "can"):
        radius, height = rng.uniform(0.025, 0.08), rng.uniform(0.08, 0.35)
        top = radius * (rng.uniform(0.2, 0.5) if shape == "bottle" else 1.0)
        return b.cylinder("car", radius, height, (x, y, TABLE_HEIGHT + height / 2),
                          material=b.materials.random("car", palette), segments=24, top_radius=top)
    if shape == "ball":
        radius = rng.uniform(0.03, 0.12)
        return b.sphere("vegetation", radius, (x, y, TABLE_HEIGHT + radius),
                        material=b.materials.random("vegetation", palette), subdivisions=3)
    if shape == "label":
        size = (rng.uniform(0.08, 0.25), 0.01, rng.uniform(0.06, 0.2))
        return b.box("traffic sign", size, (x, y, TABLE_HEIGHT + size[2] / 2),
                     material=b.materials.random("traffic sign", "picture"), rotation_z=rng.uniform(-0.6, 0.6))
    scale = rng.uniform(0.08, 0.2)
    body = b.cylinder("person", 0.2 * scale, scale, (x, y, TABLE_HEIGHT + scale / 2), segments=12)
    b.sphere("person", 0.15 * scale, (x, y, TABLE_HEIGHT + scale * 1.15))
    return body


def _softbox(scene, rng) -> None:
    light = bpy.data.lights.new("Softbox", "AREA")
    light.shape = "RECTANGLE"
    light.size, light.size_y = rng.uniform(0.3, 1.2), rng.uniform(0.3, 1.2)
    light.energy = rng.uniform(20.0, 200.0)
    light.color = (1.0, rng.uniform(0.85, 1.0), rng.uniform(0.7, 1.0))
    obj = bpy.data.objects.new("Softbox", light)
    scene.collection.objects.link(obj)
    angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(1.0, 2.5)
    obj.location = (distance * math.cos(angle), distance * math.sin(angle), TABLE_HEIGHT + rng.uniform(0.5, 1.8))
    _aim(obj, (0.0, 0.0, TABLE_HEIGHT))


def _aim(obj, target) -> None:
    dx, dy, dz = (t - o for t, o in zip(target, obj.location))
    obj.rotation_euler = (math.atan2(math.hypot(dx, dy), -dz), 0.0, math.atan2(dy, dx) - math.pi / 2)


def _camera(rng, target) -> dict:
    lens = rng.uniform(30.0, 100.0)
    distance = rng.uniform(0.5, 1.6) * lens / 50.0
    azimuth = _azimuth(rng)
    return _camera_at(rng, target, lens, distance, azimuth, TABLE_HEIGHT + rng.uniform(0.05, 0.8))


def _closeup_camera(rng, target, hero_size: float) -> dict:
    """The hero spans 25-90 % of the frame's width (36 mm sensor: width = distance * 36 / lens)."""
    lens = rng.uniform(35.0, 100.0)
    distance = max(0.1, hero_size * lens / 36.0 / rng.uniform(0.25, 0.9))
    azimuth = _azimuth(rng)
    return _camera_at(rng, target, lens, distance, azimuth, target[2] + distance * rng.uniform(0.0, 0.6))


def _azimuth(rng) -> float:
    return math.radians(rng.uniform(-40, 40)) - math.pi / 2


def _camera_at(rng, target, lens: float, distance: float, azimuth: float, height: float) -> dict:
    location = (target[0] + distance * math.cos(azimuth), target[1] + distance * math.sin(azimuth), height)
    dx, dy, dz = (t - o for t, o in zip(target, location))
    rotation = (math.atan2(math.hypot(dx, dy), -dz), 0.0, math.atan2(dy, dx) - math.pi / 2)
    return dict(location=location, rotation=rotation, lens=lens,
                velocity=(rng.uniform(-0.01, 0.01), rng.uniform(-0.01, 0.01), 0.0))
