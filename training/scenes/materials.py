"""Randomised Principled BSDF materials that also write the schema's material AOVs.

Every material writes the AOVs named by MATERIAL_AOVS (roughness, metallic) with the exact
values it feeds to the BSDF, and carries the pass_index of the one class it is used for.
"""
from __future__ import annotations

import colorsys
import random
from dataclasses import dataclass

import bpy

from addon.blender_api import node_tree, socket
from neural_core import schema

from . import textures

# The schema's AOV passes that every generated material writes.
MATERIAL_AOVS = ("roughness", "metallic")


@dataclass(frozen=True)
class Palette:
    """Ranges a material is drawn from. Colours are linear HSV; `hue` may wrap past 1."""

    hue: tuple[float, float]
    sat: tuple[float, float]
    val: tuple[float, float]
    roughness: tuple[float, float]
    metallic: tuple[float, float] = (0.0, 0.0)


_GREY = (0.0, 1.0), (0.0, 0.06)
PALETTES: dict[str, Palette] = {
    "road": Palette(*_GREY, (0.02, 0.07), (0.55, 0.9)),
    "sidewalk": Palette((0.05, 0.12), (0.0, 0.15), (0.15, 0.4), (0.5, 0.9)),
    "building": Palette((0.0, 0.15), (0.05, 0.45), (0.1, 0.6), (0.5, 0.95)),
    "wall": Palette((0.0, 0.12), (0.05, 0.4), (0.12, 0.5), (0.6, 0.95)),
    "fence": Palette((0.05, 0.12), (0.0, 0.5), (0.05, 0.4), (0.3, 0.8), (0.0, 0.8)),
    "pole": Palette(*_GREY, (0.05, 0.35), (0.2, 0.6), (0.5, 1.0)),
    "traffic light": Palette(*_GREY, (0.01, 0.05), (0.3, 0.6), (0.0, 0.5)),
    "traffic sign": Palette((0.0, 1.0), (0.6, 1.0), (0.3, 0.8), (0.2, 0.5)),
    "vegetation": Palette((0.2, 0.38), (0.5, 0.9), (0.03, 0.2), (0.5, 0.9)),
    "terrain": Palette((0.12, 0.3), (0.4, 0.8), (0.04, 0.2), (0.7, 1.0)),
    "person": Palette((0.0, 1.0), (0.1, 0.8), (0.03, 0.6), (0.4, 0.9)),
    "rider": Palette((0.0, 1.0), (0.1, 0.8), (0.03, 0.6), (0.4, 0.9)),
    "car": Palette((0.0, 1.0), (0.0, 0.9), (0.02, 0.7), (0.08, 0.4), (0.2, 0.9)),
    "truck": Palette((0.0, 1.0), (0.0, 0.7), (0.1, 0.7), (0.2, 0.6), (0.0, 0.6)),
    "bus": Palette((0.0, 1.0), (0.3, 0.9), (0.2, 0.7), (0.2, 0.5), (0.0, 0.5)),
    "bicycle": Palette((0.0, 1.0), (0.0, 0.9), (0.05, 0.6), (0.2, 0.5), (0.3, 1.0)),
    "motorcycle": Palette((0.0, 1.0), (0.0, 0.9), (0.02, 0.5), (0.1, 0.4), (0.3, 1.0)),
    # Interior surfaces (used with interior class mapping, see interior.py)
    "floor": Palette((0.05, 0.1), (0.3, 0.7), (0.05, 0.45), (0.15, 0.6)),
    "interior wall": Palette((0.0, 1.0), (0.0, 0.25), (0.3, 0.8), (0.6, 0.95)),
    "ceiling": Palette(*_GREY, (0.6, 0.85), (0.8, 1.0)),
    "furniture": Palette((0.0, 0.14), (0.1, 0.8), (0.02, 0.6), (0.15, 0.8), (0.0, 0.3)),
    "rug": Palette((0.0, 1.0), (0.3, 0.9), (0.05, 0.5), (0.85, 1.0)),
    "chair": Palette((0.0, 1.0), (0.0, 0.8), (0.02, 0.6), (0.2, 0.7), (0.0, 1.0)),
    "picture": Palette((0.0, 1.0), (0.2, 1.0), (0.1, 0.9), (0.1, 0.5)),
    "metal": Palette(*_GREY, (0.3, 0.9), (0.1, 0.4), (0.9, 1.0)),
    # Close-up heroes (tabletop.build_closeup): saturated lacquer and anodised metal.
    "glossy paint": Palette((0.0, 1.0), (0.6, 1.0), (0.1, 0.9), (0.02, 0.35), (0.0, 0.6)),
}


def _uniform(rng: random.Random, bounds: tuple[float, float]) -> float:
    return rng.uniform(*bounds)


def _color(rng: random.Random, palette: Palette) -> tuple[float, float, float, float]:
    rgb = colorsys.hsv_to_rgb(_uniform(rng, palette.hue) % 1.0, _uniform(rng, palette.sat),
                              _uniform(rng, palette.val))
    return (*rgb, 1.0)


class _NodeMaker:
    """Adds nodes and links to one material's node tree."""

    def __init__(self, material):
        self.tree = node_tree(material)
        self.tree.nodes.clear()
        self.output = self.new("ShaderNodeOutputMaterial")
        self.bsdf = self.new("ShaderNodeBsdfPrincipled")
        self.link(self.bsdf.outputs["BSDF"], self.output.inputs["Surface"])

    def new(self, node_type: str, **props):
        node = self.tree.nodes.new(node_type)
        for name, value in props.items():
            setattr(node, name, value)
        return node

    def link(self, from_socket, to_socket) -> None:
        self.tree.links.new(from_socket, to_socket)

    def value(self, v: float):
        node = self.new("ShaderNodeValue")
        node.outputs[0].default_value = v
        return node.outputs[0]

    def mix_float(self, factor, a, b):
        mix = self.new("ShaderNodeMix", data_type="FLOAT")
        self.link(factor, socket(mix.inputs, "Factor_Float"))
        self.link(a, socket(mix.inputs, "A_Float"))
        self.link(b, socket(mix.inputs, "B_Float"))
        return socket(mix.outputs, "Result_Float")

    def mix_color(self, factor, a, b):
        mix = self.new("ShaderNodeMix", data_type="RGBA")
        self.link(factor, socket(mix.inputs, "Factor_Float"))
        self.link(a, socket(mix.inputs, "A_Color"))
        self.link(b, socket(mix.inputs, "B_Color"))
        return socket(mix.outputs, "Result_Color")

    def bsdf_with_aovs(self, roughness, metallic) -> None:
        """Feed roughness/metallic to the BSDF and to the AOVs, so the AOVs are the truth."""
        values = {"roughness": roughness, "metallic": metallic}
        self.link(roughness, self.bsdf.inputs["Roughness"])
        self.link(metallic, self.bsdf.inputs["Metallic"])
        for key in MATERIAL_AOVS:
            aov = self.new("ShaderNodeOutputAOV")
            aov.aov_name = schema.pass_spec(key).blender_names[0]
            self.link(values[key], aov.inputs["Value"])


def _new_material(name: str, class_name: str):
    material = bpy.data.materials.new(name)
    material.pass_index = schema.pass_index_for_class(class_name)
    material[schema.CLASS_PROPERTY] = class_name
    return material


def plain_material(name: str, class_name: str, color, roughness: float, metallic: float,
                   emission=None, emission_strength: float = 0.0):
    material = _new_material(name, class_name)
    nodes = _NodeMaker(material)
    nodes.bsdf.inputs["Base Color"].default_value = color
    if emission_strength > 0:
        nodes.bsdf.inputs["Emission Color"].default_value = emission or color
        nodes.bsdf.inputs["Emission Strength"].default_value = emission_strength
    nodes.bsdf_with_aovs(nodes.value(roughness), nodes.value(metallic))
    material.diffuse_color = color
    return material


def special_material(name: str, class_name: str, rng: random.Random, kind: str):
    """Principled BSDF lobes the other materials never use, for the `studio` kind: `glass`
    (transmission), `subsurface` (wax, skin, marble), `coat` (clear-coated paint) or `sheen`
    (velvet). The AOVs get the base roughness and metallic, as the BSDF does."""
    material = _new_material(name, class_name)
    nodes = _NodeMaker(material)
    inputs = nodes.bsdf.inputs
    hue = rng.random()
    if kind == "glass":
        color = colorsys.hsv_to_rgb(hue, rng.uniform(0.0, 0.3), rng.uniform(0.85, 1.0))
        inputs["Transmission Weight"].default_value = 1.0
        inputs["IOR"].default_value = rng.uniform(1.33, 1.6)
        roughness = rng.choice((0.0, rng.uniform(0.0, 0.25)))
    elif kind == "subsurface":
        color = colorsys.hsv_to_rgb(rng.uniform(0.0, 0.12), rng.uniform(0.1, 0.6), rng.uniform(0.4, 0.9))
        inputs["Subsurface Weight"].default_value = 1.0
        inputs["Subsurface Scale"].default_value = rng.uniform(0.02, 0.2)
        roughness = rng.uniform(0.25, 0.6)
    elif kind == "coat":
        color = colorsys.hsv_to_rgb(hue, rng.uniform(0.5, 1.0), rng.uniform(0.05, 0.7))
        inputs["Coat Weight"].default_value = 1.0
        inputs["Coat Roughness"].default_value = rng.uniform(0.0, 0.1)
        roughness = rng.uniform(0.3, 0.7)
    elif kind == "sheen":
        color = colorsys.hsv_to_rgb(hue, rng.uniform(0.4, 0.9), rng.uniform(0.03, 0.4))
        inputs["Sheen Weight"].default_value = 1.0
        roughness = rng.uniform(0.7, 1.0)
    else:
        raise ValueError(f"unknown special material {kind!r}")
    inputs["Base Color"].default_value = (*color, 1.0)
    nodes.bsdf_with_aovs(nodes.value(roughness), nodes.value(0.0))
    material.diffuse_color = (*color, 1.0)
    return material


def fog_material(name: str, density: float, color=(1.0, 1.0, 1.0)):
    """A homogeneous scattering volume and no surface: haze in the air of a scene."""
    material = bpy.data.materials.new(name)
    tree = node_tree(material)
    tree.nodes.clear()
    output = tree.nodes.new("ShaderNodeOutputMaterial")
    volume = tree.nodes.new("ShaderNodeVolumePrincipled")
    volume.inputs["Density"].default_value = density
    volume.inputs["Color"].default_value = (*color, 1.0)
    tree.links.new(volume.outputs["Volume"], output.inputs["Volume"])
    return material


def textured_material(name: str, class_name: str, rng: random.Random, palette: Palette):
    """Two colours and two roughness values of `palette`, mixed by a random fine pattern
    (training.scenes.textures). The AOVs get the mixed roughness, exactly as the BSDF does."""
    material = _new_material(name, class_name)
    nodes = _NodeMaker(material)
    factor = textures.pattern(nodes, rng)
    colors = [nodes.new("ShaderNodeRGB").outputs[0] for _ in range(2)]
    first = _color(rng, palette)
    colors[0].default_value = first
    # The second colour is the first one darker or lighter half the time: grain, print, grout.
    colors[1].default_value = (tuple(c * rng.uniform(0.2, 0.7) for c in first[:3]) + (1.0,)
                               if rng.random() < 0.5 else _color(rng, palette))
    nodes.link(nodes.mix_color(factor, colors[0], colors[1]), nodes.bsdf.inputs["Base Color"])
    roughness = nodes.mix_float(factor, nodes.value(_uniform(rng, palette.roughness)),
                                nodes.value(_uniform(rng, palette.roughness)))
    nodes.bsdf_with_aovs(roughness, nodes.value(_uniform(rng, palette.metallic)))
    material.diffuse_color = first
    return material


def facade_material(name: str, rng: random.Random, lit_windows: float = 0.35):
    """A building facade: a grid of glossy windows (some lit) on a rough wall.

    The Brick texture on (x + y, z) object coordinates draws the grid on every vertical face;
    its mortar is the wall, its bricks the windows.
    """
    palette = PALETTES["building"]
    material = _new_material(name, "building")
    nodes = _NodeMaker(material)
    coords = nodes.new("ShaderNodeTexCoord")
    xyz = nodes.new("ShaderNodeSeparateXYZ")
    nodes.link(coords.outputs["Object"], xyz.inputs[0])
    along = nodes.new("ShaderNodeMath", operation="ADD")
    nodes.link(xyz.outputs["X"], along.inputs[0])
    nodes.link(xyz.outputs["Y"], along.inputs[1])
    uv = nodes.new("ShaderNodeCombineXYZ")
    nodes.link(along.outputs[0], uv.inputs["X"])
    nodes.link(xyz.outputs["Z"], uv.inputs["Y"])

    brick = nodes.new("ShaderNodeTexBrick", offset=0.0, squash=1.0)
    nodes.link(uv.outputs[0], brick.inputs["Vector"])
    floor_height = rng.uniform(2.8, 3.6)
    brick.inputs["Scale"].default_value = 1.0
    brick.inputs["Row Height"].default_value = floor_height
    brick.inputs["Brick Width"].default_value = rng.uniform(1.8, 3.5)
    brick.inputs["Mortar Size"].default_value = rng.uniform(0.5, 1.0)
    brick.inputs["Mortar Smooth"].default_value = 0.0
    brick.inputs["Bias"].default_value = rng.uniform(-0.5, 0.5)
    glass = rng.uniform(0.01, 0.06)
    brick.inputs["Color1"].default_value = (glass, glass, glass * 1.2, 1.0)
    lit = rng.uniform(0.3, 0.7)
    brick.inputs["Color2"].default_value = (lit, lit * 0.85, lit * 0.6, 1.0)
    wall_color = _color(rng, palette)
    brick.inputs["Mortar"].default_value = wall_color

    is_wall = brick.outputs["Fac"]  # 1 on mortar (wall), 0 in bricks (windows)
    nodes.link(brick.outputs["Color"], nodes.bsdf.inputs["Base Color"])
    if rng.random() < lit_windows:  # emission in the windows only
        emission = nodes.mix_color(is_wall, brick.outputs["Color"], nodes.value(0.0))
        nodes.link(emission, nodes.bsdf.inputs["Emission Color"])
        nodes.bsdf.inputs["Emission Strength"].default_value = rng.uniform(0.5, 3.0)
    roughness = nodes.mix_float(is_wall, nodes.value(rng.uniform(0.02, 0.15)),
                                nodes.value(_uniform(rng, palette.roughness)))
    metallic = nodes.mix_float(is_wall, nodes.value(rng.uniform(0.0, 0.6)), nodes.value(0.0))
    nodes.bsdf_with_aovs(roughness, metallic)
    material.diffuse_color = wall_color
    return material


def sky_material(name: str, zenith, horizon, strength: float):
    """Emissive gradient for the sky dome (camera-visible only), tagged 'sky'."""
    material = _new_material(name, "sky")
    nodes = _NodeMaker(material)
    nodes.tree.nodes.remove(nodes.bsdf)
    coords = nodes.new("ShaderNodeTexCoord")
    xyz = nodes.new("ShaderNodeSeparateXYZ")
    nodes.link(coords.outputs["Normal"], xyz.inputs[0])
    height = nodes.new("ShaderNodeMath", operation="POWER")
    absz = nodes.new("ShaderNodeMath", operation="ABSOLUTE")
    nodes.link(xyz.outputs["Z"], absz.inputs[0])
    nodes.link(absz.outputs[0], height.inputs[0])
    height.inputs[1].default_value = 0.5
    color = nodes.mix_color(height.outputs[0], nodes.new("ShaderNodeRGB").outputs[0],
                            nodes.new("ShaderNodeRGB").outputs[0])
    rgb_nodes = [n for n in nodes.tree.nodes if n.bl_idname == "ShaderNodeRGB"]
    rgb_nodes[0].outputs[0].default_value = horizon
    rgb_nodes[1].outputs[0].default_value = zenith
    emission = nodes.new("ShaderNodeEmission")
    emission.inputs["Strength"].default_value = strength
    nodes.link(color, emission.inputs["Color"])
    nodes.link(emission.outputs[0], nodes.output.inputs["Surface"])
    _zero_aovs(nodes)
    return material


def _zero_aovs(nodes) -> None:
    """Emitters have no BSDF: their roughness and metallic AOVs are 0."""
    zero = nodes.value(0.0)
    for key in MATERIAL_AOVS:
        aov = nodes.new("ShaderNodeOutputAOV")
        aov.aov_name = schema.pass_spec(key).blender_names[0]
        nodes.link(zero, aov.inputs["Value"])


def hdri_sky_material(name: str, image, rotation: float, strength: float):
    """The world's HDRI on the sky dome, looked up by view direction like the world does."""
    material = _new_material(name, "sky")
    nodes = _NodeMaker(material)
    nodes.tree.nodes.remove(nodes.bsdf)
    geometry = nodes.new("ShaderNodeNewGeometry")
    towards_dome = nodes.new("ShaderNodeVectorMath", operation="SCALE")
    nodes.link(geometry.outputs["Incoming"], towards_dome.inputs[0])
    socket(towards_dome.inputs, "Scale").default_value = -1.0
    mapping = nodes.new("ShaderNodeMapping")
    mapping.inputs["Rotation"].default_value = (0.0, 0.0, rotation)
    nodes.link(towards_dome.outputs["Vector"], mapping.inputs["Vector"])
    env = nodes.new("ShaderNodeTexEnvironment")
    env.image = image
    nodes.link(mapping.outputs["Vector"], env.inputs["Vector"])
    emission = nodes.new("ShaderNodeEmission")
    emission.inputs["Strength"].default_value = strength
    nodes.link(env.outputs["Color"], emission.inputs["Color"])
    nodes.link(emission.outputs[0], nodes.output.inputs["Surface"])
    _zero_aovs(nodes)
    return material


class MaterialLibrary:
    """A few random variants per (class, palette), created on first use from the scene's rng."""

    def __init__(self, rng: random.Random, variants: int = 3):
        self.rng = rng
        self.variants = variants
        self.lit_windows = 0.35  # chance that a facade has lit windows
        self.textured = 0.6      # chance that a material has a fine pattern (textures.py)
        self._pool: dict[tuple[str, str], list] = {}

    def random(self, class_name: str, palette: str | None = None):
        key = (class_name, palette or class_name)
        pool = self._pool.setdefault(key, [])
        if len(pool) < self.variants:
            pool.append(self._make(class_name, key[1], len(pool)))
        return self.rng.choice(pool)

    def _make(self, class_name: str, palette_name: str, index: int):
        name = f"{palette_name}.{index}"
        if palette_name == "building":
            return facade_material(name, self.rng, self.lit_windows)
        palette = PALETTES[palette_name]
        if self.rng.random() < self.textured:
            return textured_material(name, class_name, self.rng, palette)
        return plain_material(name, class_name, _color(self.rng, palette),
                              _uniform(self.rng, palette.roughness),
                              _uniform(self.rng, palette.metallic))

    def emissive(self, class_name: str, color, strength: float, name: str = "lamp"):
        """A light-emitting material (lamp shades, traffic light bulbs); not pooled."""
        return plain_material(f"{name}.{class_name}", class_name, color, 0.3, 0.0,
                              emission=color, emission_strength=strength)
