"""A street: road along +Y with lane marks, sidewalks, terrain strips, facades with windows,
street lamps, traffic lights and signs, trees, parked and moving vehicles, cyclists, people.

All classes are the schema's Cityscapes classes under their own names.
"""
from __future__ import annotations

import math
import random

from .geometry import Builder, rotate2d
from .lighting import Layout, animate

STREET_LENGTH = (-30.0, 120.0)   # y range in metres; the camera stands near y = 0 looking +Y
NIGHT_PROBABILITY = 0.15         # night: no sun, dark sky, street lamps and lit windows


def build(builder: Builder, rng: random.Random) -> Layout:
    night = rng.random() < NIGHT_PROBABILITY
    builder.scene["photoreal_night"] = night
    builder.materials.lit_windows = 0.8 if night else 0.35
    road_width = rng.uniform(6.0, 12.0)
    sides = {side: _side_widths(rng) for side in (-1, 1)}
    _ground(builder, rng, road_width, sides)
    for side, (sidewalk, terrain) in sides.items():
        curb = road_width / 2
        _buildings(builder, rng, side, curb + sidewalk + terrain)
        _street_furniture(builder, rng, side, curb, sidewalk, night)
        _people(builder, rng, side, curb, sidewalk)
    _vehicles(builder, rng, road_width)
    camera = _camera(rng, road_width)
    strength = rng.uniform(0.02, 0.08) if night else rng.uniform(0.4, 1.4)
    return Layout(camera=camera, outdoor=True, world_strength=strength, night=night,
                  hdri_chance=0.0 if night else 0.5)


def _side_widths(rng):
    sidewalk = rng.uniform(2.0, 4.5)
    terrain = rng.uniform(1.0, 4.0) if rng.random() < 0.5 else 0.0
    return sidewalk, terrain


def _spans(rng, lo, hi, size_range, gap_range):
    """Consecutive (start, length) intervals along the street."""
    y = lo + rng.uniform(*gap_range)
    while y < hi:
        length = rng.uniform(*size_range)
        yield y, length
        y += length + rng.uniform(*gap_range)


def _ground(b: Builder, rng, road_width, sides):
    lo, hi = STREET_LENGTH
    length, mid = hi - lo, (hi + lo) / 2
    b.box("terrain", (600.0, 600.0, 0.1), (0.0, mid, -0.14))
    b.box("road", (road_width, length, 0.04), (0.0, mid, -0.04))
    paint = b.materials.random("road", "sidewalk")
    if rng.random() < 0.8:
        for y, dash in _spans(rng, lo, hi, (2.5, 3.5), (4.0, 8.0)):
            b.box("road", (0.15, dash, 0.01), (0.0, y + dash / 2, 0.0), paint)
    for side, (sidewalk, terrain) in sides.items():
        x = side * (road_width / 2 + sidewalk / 2)
        b.box("sidewalk", (sidewalk, length, 0.15), (x, mid, -0.04))
        if terrain:
            x = side * (road_width / 2 + sidewalk + terrain / 2)
            b.box("terrain", (terrain, length, 0.08), (x, mid, -0.04))


def _buildings(b: Builder, rng, side, front):
    lo, hi = STREET_LENGTH
    for y, width in _spans(rng, lo, hi, (6.0, 22.0), (0.0, 5.0)):
        depth, height = rng.uniform(8.0, 16.0), rng.uniform(5.0, 35.0)
        b.box("building", (depth, width, height), (side * (front + depth / 2), y + width / 2, -0.1))
        gap_y = y + width
        filler = rng.random()
        if filler < 0.25:
            b.box("wall", (0.3, 3.0, rng.uniform(1.0, 2.5)), (side * (front + 0.2), gap_y + 1.5, 0.0))
        elif filler < 0.45:
            b.box("fence", (0.06, 3.0, rng.uniform(1.0, 2.0)), (side * (front + 0.2), gap_y + 1.5, 0.0))


def _street_furniture(b: Builder, rng, side, curb, sidewalk, night):
    lo, hi = STREET_LENGTH
    edge = side * (curb + 0.4)
    for y, _ in _spans(rng, lo, hi, (0.1, 0.1), (12.0, 25.0)):
        _street_lamp(b, rng, edge, y, side, night)
    for y, _ in _spans(rng, lo + 5, hi, (0.1, 0.1), (7.0, 16.0)):
        if rng.random() < 0.6:
            _tree(b, rng, side * (curb + sidewalk * rng.uniform(0.5, 0.9)), y)
    for _ in range(rng.randint(0, 3)):
        _sign(b, rng, edge, rng.uniform(5.0, hi * 0.6))
    if rng.random() < 0.7:
        _traffic_light(b, rng, edge, rng.uniform(8.0, 40.0), side)
    if rng.random() < 0.3:
        y = rng.uniform(0.0, 60.0)
        b.box("fence", (0.05, rng.uniform(4.0, 15.0), 1.0), (edge - side * 0.2, y, 0.1))


def _street_lamp(b, rng, x, y, side, night):
    height = rng.uniform(5.0, 8.0)
    metal = b.materials.random("pole")
    b.cylinder("pole", 0.08, height, (x, y, 0.0), metal, segments=8)
    arm = 1.5
    b.box("pole", (arm, 0.12, 0.1), (x - side * arm / 2, y, height - 0.1), metal)
    strength = rng.uniform(40.0, 120.0) if night else rng.uniform(5.0, 30.0)
    glow = b.materials.emissive("pole", (1.0, 0.85, 0.6, 1.0), strength, "streetlamp")
    b.box("pole", (0.5, 0.25, 0.08), (x - side * arm, y, height - 0.18), glow)


def _tree(b, rng, x, y):
    trunk = rng.uniform(1.5, 3.5)
    b.cylinder("vegetation", 0.15, trunk, (x, y, 0.0), b.materials.random("vegetation", "fence"),
               segments=7, top_radius=0.1)
    radius = rng.uniform(1.2, 2.8)
    for _ in range(rng.randint(1, 3)):
        offset = [rng.uniform(-0.6, 0.6) for _ in range(3)]
        b.sphere("vegetation", radius * rng.uniform(0.7, 1.0),
                 (x + offset[0], y + offset[1], trunk + radius * 0.8 + offset[2]), subdivisions=2)


def _sign(b, rng, x, y):
    height = rng.uniform(2.0, 3.0)
    b.cylinder("pole", 0.04, height, (x, y, 0.0), segments=6)
    size = rng.uniform(0.5, 0.9)
    if rng.random() < 0.5:  # round sign facing the camera (-Y)
        b.cylinder("traffic sign", size / 2, 0.04, (x, y - 0.05, height),
                   segments=16, rotation=(math.pi / 2, 0.0, 0.0))
    else:
        b.box("traffic sign", (size, 0.04, size), (x, y - 0.05, height - size / 2))


def _traffic_light(b, rng, x, y, side):
    height = rng.uniform(3.0, 5.0)
    b.cylinder("pole", 0.1, height, (x, y, 0.0), segments=8)
    over_road = rng.random() < 0.5
    hx = x - side * rng.uniform(2.0, 4.0) if over_road else x
    if over_road:
        b.box("pole", (abs(hx - x), 0.1, 0.1), ((hx + x) / 2, y, height - 0.1))
    housing_bottom = height - 1.1
    b.box("traffic light", (0.35, 0.3, 1.0), (hx, y, housing_bottom))
    lit = rng.randrange(3)
    for i, color in enumerate(((0.1, 1.0, 0.3, 1.0), (1.0, 0.6, 0.0, 1.0), (1.0, 0.05, 0.02, 1.0))):
        strength = rng.uniform(10.0, 40.0) if i == lit else 0.2
        bulb = b.materials.emissive("traffic light", color, strength, f"bulb{i}")
        b.sphere("traffic light", 0.1, (hx, y - 0.16, housing_bottom + 0.2 + 0.3 * i), bulb, 1)


def _people(b, rng, side, curb, sidewalk):
    for _ in range(rng.randint(0, 8)):
        x = side * (curb + rng.uniform(0.4, sidewalk - 0.3))
        y = rng.uniform(0.0, 60.0)
        person = _person(b, rng, "person", x, y, 0.11)
        walk = rng.uniform(-1.0, 1.0) * 0.7
        for obj in person:
            animate(obj, (0.0, walk, 0.0), b.frame)


def _person(b, rng, class_name, x, y, z, scale=1.0):
    height = rng.uniform(1.5, 1.9) * scale
    body = b.cylinder(class_name, 0.2, height * 0.82, (x, y, z), segments=10, top_radius=0.17)
    head = b.sphere(class_name, 0.11, (x, y, z + height * 0.82 + 0.1),
                    b.materials.random(class_name, "sidewalk"), 1)
    return body, head


def _vehicles(b: Builder, rng, road_width):
    hi = STREET_LENGTH[1]
    for side in (-1, 1):
        parked_x = side * (road_width / 2 - 1.1)
        for y, _ in _spans(rng, 2.0, hi * 0.7, (5.5, 5.5), (0.3, 6.0)):
            if rng.random() < 0.55:
                _vehicle(b, rng, parked_x, y, math.pi / 2 * (1 - side) + rng.uniform(-0.05, 0.05), 0.0)
    lanes = (-road_width / 4, road_width / 4)
    for _ in range(rng.randint(0, 4)):
        lane = rng.choice((0, 1))
        heading = 0.0 if lane == 1 else math.pi
        _vehicle(b, rng, lanes[lane], rng.uniform(6.0, 70.0), heading, rng.uniform(0.3, 0.8))
    if rng.random() < 0.5:
        _two_wheeler(b, rng, road_width / 2 - 0.7, rng.uniform(5.0, 30.0))


def _vehicle(b, rng, x, y, heading, speed):
    roll = rng.random()
    if roll < 0.8:
        kind, length, width, body_h, cabin = "car", rng.uniform(3.8, 4.8), 1.8, 0.7, True
    elif roll < 0.93:
        kind, length, width, body_h, cabin = "truck", rng.uniform(5.5, 8.0), 2.3, 2.4, False
    else:
        kind, length, width, body_h, cabin = "bus", rng.uniform(10.0, 12.0), 2.5, 2.8, False
    objects = []

    def part(mesh_fn, *args, local=(0.0, 0.0, 0.0), **kwargs):
        dx, dy = rotate2d(local[0], local[1], heading)
        obj = mesh_fn(kind, *args, (x + dx, y + dy, local[2]), **kwargs)
        obj.rotation_euler[2] += heading
        objects.append(obj)

    paint = b.materials.random(kind)
    part(b.box, (width, length, body_h), local=(0.0, 0.0, 0.3), material=paint)
    if cabin:
        glass = b.materials.random(kind, "metal")
        part(b.box, (width * 0.88, length * 0.5, 0.55), local=(0.0, -length * 0.05, 0.3 + body_h),
             material=glass)
    tyre = b.materials.random(kind, "road")
    for wx in (-1, 1):
        for wy in (-1, 1):
            part(b.cylinder, 0.33, 0.22, local=(wx * (width / 2 - 0.05), wy * length * 0.33, 0.33),
                 material=tyre, segments=10, rotation=(0.0, math.pi / 2, 0.0))
    # Wheels were rotated about Y; the heading is added on top.
    if speed:
        dx, dy = rotate2d(0.0, speed, heading)
        for obj in objects:
            animate(obj, (dx, dy, 0.0), b.frame)


def _two_wheeler(b, rng, x, y):
    kind = "bicycle" if rng.random() < 0.7 else "motorcycle"
    radius = 0.35 if kind == "bicycle" else 0.3
    parts = [b.cylinder(kind, radius, 0.05, (x - 0.025, y + wy, radius), segments=14,
                        rotation=(0.0, math.pi / 2, 0.0)) for wy in (-0.55, 0.55)]
    parts.append(b.box(kind, (0.06 if kind == "bicycle" else 0.3, 1.1, 0.3), (x, y, radius + 0.05)))
    parts.extend(_person(b, rng, "rider", x, y, radius + 0.35, scale=0.8))
    for obj in parts:
        animate(obj, (0.0, 0.3, 0.0), b.frame)


def _camera(rng, road_width):
    return dict(
        location=(rng.uniform(-road_width / 4, road_width / 4), rng.uniform(-12.0, -4.0),
                  rng.uniform(0.5, 8.0)),     # from a car bumper to a first-floor window
        rotation=(math.radians(90 + rng.uniform(-12.0, 4.0)), 0.0, math.radians(rng.uniform(-20, 20))),
        lens=math.exp(rng.uniform(math.log(14.0), math.log(70.0))),
        velocity=(0.0, rng.uniform(0.0, 0.6), 0.0),
    )
