"""A room: floor, walls, ceiling, windows, ceiling lights, furniture, lamps, plants, people.

Cityscapes has no indoor classes, so indoor things are mapped onto the schema's classes by
what they look like and how they sit in the frame (documented in training/scenes/README.md):

    walls -> wall            ceiling -> building        floor -> sidewalk
    rug -> terrain           window (bright outside) -> sky
    cabinets, shelves, tables, sofas, beds -> truck      chairs, stools -> bicycle
    lamp stands -> pole      lamp shades (emissive) -> traffic light
    pictures, screens -> traffic sign                    plants -> vegetation    people -> person
"""
from __future__ import annotations

import math
import random

import bpy

from .geometry import Builder
from .lighting import Layout

WALL = 0.15


def build(builder: Builder, rng: random.Random) -> Layout:
    width, depth, height = rng.uniform(4.0, 8.0), rng.uniform(5.0, 9.0), rng.uniform(2.5, 3.4)
    _shell(builder, rng, width, depth, height)
    _windows(builder, rng, width, depth, height)
    _ceiling_lights(builder.scene, rng, width, depth, height)
    _furniture(builder, rng, width, depth)
    for _ in range(rng.randint(1, 3)):
        _floor_lamp(builder, rng, *_spot_near_wall(rng, width, depth, 0.5))
    for _ in range(rng.randint(1, 4)):
        _picture(builder, rng, width, depth, height)
    for _ in range(rng.randint(0, 3)):
        _plant(builder, rng, *_spot_near_wall(rng, width, depth, 0.5))
    for _ in range(rng.randint(0, 2)):
        _person(builder, rng, rng.uniform(-width / 3, width / 3), rng.uniform(0.0, depth / 3))
    camera = dict(
        location=(rng.uniform(-width / 4, width / 4), -depth / 2 + rng.uniform(0.4, 1.0),
                  rng.uniform(0.6, 2.3)),
        rotation=(math.radians(90 - rng.uniform(0.0, 20.0)), 0.0, math.radians(rng.uniform(-35, 35))),
        lens=math.exp(rng.uniform(math.log(12.0), math.log(40.0))),
        velocity=(rng.uniform(-0.05, 0.05), rng.uniform(0.0, 0.1), 0.0),
    )
    return Layout(camera=camera, outdoor=False, world_strength=rng.uniform(0.02, 0.15),
                  world_color=(0.6, 0.7, 1.0, 1.0), hdri_chance=0.3)


def _shell(b, rng, width, depth, height):
    b.box("sidewalk", (width + 2 * WALL, depth + 2 * WALL, 0.1), (0, 0, -0.1),
          b.materials.random("sidewalk", "floor"))
    b.box("building", (width + 2 * WALL, depth + 2 * WALL, 0.1), (0, 0, height),
          b.materials.random("building", "ceiling"))
    wall = b.materials.random("wall", "interior wall")
    for sx in (-1, 1):
        b.box("wall", (WALL, depth, height), (sx * (width + WALL) / 2, 0, 0), wall)
    for sy in (-1, 1):
        b.box("wall", (width + 2 * WALL, WALL, height), (0, sy * (depth + WALL) / 2, 0), wall)
    if rng.random() < 0.7:
        b.box("terrain", (rng.uniform(1.5, width * 0.7), rng.uniform(1.5, depth * 0.6), 0.01),
              (rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 1.5), 0.0), b.materials.random("terrain", "rug"))


def _windows(b, rng, width, depth, height):
    """Bright emissive panes on the far and side walls: the outside, seen as sky."""
    daylight = rng.uniform(2.0, 8.0)
    color = (rng.uniform(0.7, 0.9), rng.uniform(0.8, 0.95), 1.0, 1.0)
    pane = b.materials.emissive("sky", color, daylight, "window")
    walls = rng.sample(["back", "left", "right"], rng.randint(1, 2))
    for wall in walls:
        w, h = rng.uniform(0.8, 2.2), rng.uniform(1.0, min(1.8, height - 1.1))
        z = rng.uniform(0.7, height - h - 0.2)
        if wall == "back":
            b.box("sky", (w, 0.02, h), (rng.uniform(-width / 3, width / 3), depth / 2 - 0.01, z), pane)
        else:
            sx = -1 if wall == "left" else 1
            b.box("sky", (0.02, w, h), (sx * (width / 2 - 0.01), rng.uniform(-depth / 4, depth / 3), z),
                  pane)


def _ceiling_lights(scene, rng, width, depth, height):
    for i in range(rng.randint(1, 2)):
        light = bpy.data.lights.new(f"Ceiling{i}", "AREA")
        light.shape = "RECTANGLE"
        light.size, light.size_y = rng.uniform(0.4, 1.5), rng.uniform(0.4, 1.5)
        light.energy = rng.uniform(80.0, 400.0)
        warmth = rng.uniform(0.0, 0.35)
        light.color = (1.0, 1.0 - 0.4 * warmth, 1.0 - warmth)
        obj = bpy.data.objects.new(f"Ceiling{i}", light)
        scene.collection.objects.link(obj)
        obj.location = (rng.uniform(-width / 4, width / 4), rng.uniform(-depth / 4, depth / 3), height - 0.02)


def _spot_near_wall(rng, width, depth, margin):
    """(x, y, facing) on a random side/back wall, `margin` metres in."""
    wall = rng.choice(("left", "right", "back"))
    if wall == "back":
        return rng.uniform(-width / 2 + margin, width / 2 - margin), depth / 2 - margin, 0.0
    sx = -1 if wall == "left" else 1
    return sx * (width / 2 - margin), rng.uniform(-depth / 4, depth / 2 - margin), sx * math.pi / 2


def _furniture(b, rng, width, depth):
    for _ in range(rng.randint(2, 5)):  # cabinets, shelves, wardrobes against the walls
        w, d, h = rng.uniform(0.6, 2.0), rng.uniform(0.35, 0.7), rng.uniform(0.5, 2.2)
        x, y, facing = _spot_near_wall(rng, width, depth, d / 2 + 0.01)
        b.box("truck", (w, d, h), (x, y, 0.0), b.materials.random("truck", "furniture"),
              rotation_z=facing)
    if rng.random() < 0.6:
        x, y, facing = _spot_near_wall(rng, width, depth, 0.5)
        sofa = b.materials.random("truck", "rug")
        b.box("truck", (2.0, 0.9, 0.45), (x, y, 0.0), sofa, rotation_z=facing)
    _table_with_chairs(b, rng, rng.uniform(-width / 5, width / 5), rng.uniform(-depth / 8, depth / 5))


def _table_with_chairs(b, rng, x, y):
    w, d, h = rng.uniform(0.8, 1.8), rng.uniform(0.7, 1.1), rng.uniform(0.7, 0.78)
    wood = b.materials.random("truck", "furniture")
    b.box("truck", (w, d, 0.05), (x, y, h - 0.05), wood)
    for sx in (-1, 1):
        for sy in (-1, 1):
            leg = (x + sx * (w / 2 - 0.05), y + sy * (d / 2 - 0.05), 0.0)
            b.box("truck", (0.06, 0.06, h - 0.05), leg, wood)
    chair = b.materials.random("bicycle", "chair")
    for i in range(rng.randint(0, 4)):
        angle = i * math.pi / 2 + rng.uniform(-0.2, 0.2)
        cx, cy = x + math.sin(angle) * (w / 2 + 0.35), y - math.cos(angle) * (d / 2 + 0.35)
        b.box("bicycle", (0.42, 0.42, 0.04), (cx, cy, 0.45), chair, rotation_z=angle)
        back = (cx + math.sin(angle) * 0.2, cy - math.cos(angle) * 0.2, 0.45)
        b.box("bicycle", (0.42, 0.04, 0.45), back, chair, rotation_z=angle)
        b.cylinder("bicycle", 0.025, 0.45, (cx, cy, 0.0), chair, segments=6)


def _floor_lamp(b, rng, x, y, _facing):
    height = rng.uniform(1.2, 1.8)
    b.cylinder("pole", 0.02, height, (x, y, 0.0), b.materials.random("pole", "metal"), segments=6)
    color = (1.0, rng.uniform(0.6, 0.85), rng.uniform(0.3, 0.6), 1.0)
    shade = b.materials.emissive("traffic light", color, rng.uniform(3.0, 15.0), "lampshade")
    b.cylinder("traffic light", 0.22, 0.3, (x, y, height - 0.05), shade, segments=12, top_radius=0.12)


def _picture(b, rng, width, depth, height):
    w, h = rng.uniform(0.4, 1.4), rng.uniform(0.3, 1.0)
    x, y, facing = _spot_near_wall(rng, width, depth, 0.02)
    b.box("traffic sign", (w, 0.03, h), (x, y, rng.uniform(1.0, height - h - 0.2)),
          b.materials.random("traffic sign", "picture"), rotation_z=facing)


def _plant(b, rng, x, y, _facing):
    pot = rng.uniform(0.2, 0.5)
    b.cylinder("vegetation", 0.18, pot, (x, y, 0.0), b.materials.random("vegetation", "furniture"),
               segments=10, top_radius=0.22)
    b.sphere("vegetation", rng.uniform(0.25, 0.5), (x, y, pot + 0.3))


def _person(b, rng, x, y):
    height = rng.uniform(1.5, 1.9)
    b.cylinder("person", 0.2, height * 0.82, (x, y, 0.0), segments=10, top_radius=0.17)
    b.sphere("person", 0.11, (x, y, height * 0.82 + 0.1), b.materials.random("person", "sidewalk"), 1)
