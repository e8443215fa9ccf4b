"""What every scene kind shares: world, sun, sky dome, camera, small motions for the Vector pass."""
from __future__ import annotations

import colorsys
import math
import random
from dataclasses import dataclass

from pathlib import Path

import bpy

from addon.blender_api import node_tree

from .geometry import Builder, dome_mesh
from .materials import hdri_sky_material, sky_material

SKY_DOME_RADIUS = 1500.0   # beyond the schema's DEPTH_FAR, so sky depth reads as background


@dataclass
class Layout:
    """What a scene kind decided; `finish_scene` turns it into camera and lights."""

    camera: dict
    outdoor: bool              # sky dome (class 'sky') and, by day, a sun
    world_strength: float
    world_color: tuple | None = None
    night: bool = False
    hdri_chance: float = 0.0   # chance that a real HDRI (Blender's studio lights) lights the scene


def animate(obj, velocity, frame: int) -> None:
    """Motion through `frame` (metres per frame), so the Vector pass is non-zero there.

    Keys on frame - 1 and frame + 1 only: the object sits at its built position on `frame`.
    """
    base = tuple(obj.location)
    for key_frame, sign in ((frame - 1, -1.0), (frame + 1, 1.0)):
        obj.location = tuple(c + sign * v for c, v in zip(base, velocity))
        obj.keyframe_insert("location", frame=key_frame)
    obj.location = base


def sky_colors(rng: random.Random, night: bool = False):
    """(zenith, horizon, overcast): day skies are blue or grey, night skies dark with a glow."""
    if night:
        zenith = colorsys.hsv_to_rgb(rng.uniform(0.6, 0.68), rng.uniform(0.5, 0.8), rng.uniform(0.01, 0.04))
        horizon = colorsys.hsv_to_rgb(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.6), rng.uniform(0.03, 0.1))
        return (*zenith, 1.0), (*horizon, 1.0), False
    hue = rng.uniform(0.55, 0.64)
    overcast = rng.random() < 0.25
    sat = rng.uniform(0.0, 0.15) if overcast else rng.uniform(0.35, 0.7)
    zenith = colorsys.hsv_to_rgb(hue, sat, rng.uniform(0.4, 0.8))
    horizon = colorsys.hsv_to_rgb(hue - 0.03, sat * 0.35, rng.uniform(0.7, 1.0))
    return (*zenith, 1.0), (*horizon, 1.0), overcast


def setup_world(scene, color, strength: float) -> None:
    world = bpy.data.worlds.new("World")
    background = node_tree(world).nodes["Background"]
    background.inputs["Color"].default_value = color
    background.inputs["Strength"].default_value = strength
    scene.world = world


def hdri_files() -> list[Path]:
    """The real HDRIs every Blender ships (datafiles/studiolights/world/*.exr, bpy wheel too)."""
    folder = bpy.utils.system_resource("DATAFILES", path="studiolights/world")
    files = sorted(Path(folder).glob("*.exr")) if folder else []
    if not files:
        raise RuntimeError(f"no studio-light HDRIs under {folder!r}: this Blender lacks datafiles/")
    return files


def setup_hdri_world(scene, rng: random.Random, strength: float) -> dict:
    """Light the scene with one of Blender's HDRIs at a random rotation; returns what was drawn
    (the same environment is reused by `add_sky_dome` so the camera sees the sky it is lit by)."""
    path = rng.choice(hdri_files())
    hdri = dict(name=path.stem, image=bpy.data.images.load(str(path), check_existing=True),
                rotation=rng.uniform(0.0, 2 * math.pi), strength=strength)
    world = bpy.data.worlds.new("World")
    tree = node_tree(world)
    coords = tree.nodes.new("ShaderNodeTexCoord")
    mapping = tree.nodes.new("ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, hdri["rotation"])
    env = tree.nodes.new("ShaderNodeTexEnvironment")
    env.image = hdri["image"]
    tree.links.new(coords.outputs["Generated"], mapping.inputs["Vector"])
    tree.links.new(mapping.outputs["Vector"], env.inputs["Vector"])
    background = tree.nodes["Background"]
    tree.links.new(env.outputs["Color"], background.inputs["Color"])
    background.inputs["Strength"].default_value = strength
    scene.world = world
    return hdri


def add_sky_dome(builder: Builder, zenith, horizon, strength: float, hdri: dict | None = None):
    """A camera-only emissive dome tagged 'sky': the world lights the scene, the dome labels it.
    With `hdri` the dome shows that environment, otherwise a zenith-horizon gradient."""
    material = (hdri_sky_material("sky", hdri["image"], hdri["rotation"], hdri["strength"]) if hdri
                else sky_material("sky", zenith, horizon, strength))
    obj = builder.add(dome_mesh("sky", SKY_DOME_RADIUS), "sky", material)
    for ray in ("visible_diffuse", "visible_glossy", "visible_transmission",
                "visible_volume_scatter", "visible_shadow"):
        setattr(obj, ray, False)
    return obj


def add_sun(scene, rng: random.Random, overcast: bool):
    sun = bpy.data.lights.new("Sun", "SUN")
    elevation = math.radians(rng.uniform(12.0, 70.0))
    sun.energy = (rng.uniform(0.5, 1.5) if overcast else rng.uniform(2.5, 5.0)) * (
        0.5 + 0.5 * math.sin(elevation))
    warmth = 1.0 - math.sin(elevation)
    sun.color = (1.0, 1.0 - 0.25 * warmth, 1.0 - 0.45 * warmth)
    sun.angle = math.radians(rng.uniform(0.5, 3.0) if not overcast else rng.uniform(10.0, 30.0))
    obj = bpy.data.objects.new("Sun", sun)
    scene.collection.objects.link(obj)
    obj.rotation_euler = (math.pi / 2 - elevation, 0.0, rng.uniform(0.0, 2 * math.pi))
    return obj


def add_camera(scene, camera: dict, frame: int):
    data = bpy.data.cameras.new("Camera")
    data.lens = camera["lens"]
    data.sensor_width = 36.0
    data.clip_start = 0.05
    data.clip_end = SKY_DOME_RADIUS * 2
    obj = bpy.data.objects.new("Camera", data)
    scene.collection.objects.link(obj)
    obj.location = camera["location"]
    obj.rotation_euler = camera["rotation"]
    if any(camera.get("velocity", (0, 0, 0))):
        animate(obj, camera["velocity"], frame)
    scene.camera = obj
    return obj
