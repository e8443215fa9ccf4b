"""Fine surface detail for generated materials: procedural patterns and small image textures.

A network trained only on flat colours learns that smoothing is always safe and blurs real
texture (wood grain, fabric, print, tiles). Every textured material draws one pattern at a
scale from a few centimetres to a metre, so some detail lands at pixel scale in every render.

`pattern(nodes, rng)` returns a float socket in [0, 1] that a material mixes two colours and
two roughness values with; image textures are made once per scene from numpy and kept in
memory (no file is written or read).
"""
from __future__ import annotations

import math
import random

import bpy
import numpy as np

IMAGE_SIZE = 128
# (name, weight): how often each procedural pattern is drawn.
PATTERNS = (("noise", 3), ("voronoi", 2), ("wave", 2), ("checker", 1), ("brick", 1),
            ("magic", 1), ("image", 3))
IMAGE_KINDS = ("print", "weave", "planks", "tiles", "speckle")


def pattern(nodes, rng: random.Random):
    """A [0, 1] float socket: a random pattern on object coordinates at a random scale."""
    kind = rng.choices([p for p, _ in PATTERNS], weights=[w for _, w in PATTERNS])[0]
    vector = _coordinates(nodes, rng)
    factor = _PATTERN_BUILDERS[kind](nodes, rng, vector)
    if kind not in ("checker", "brick", "image") and rng.random() < 0.4:
        factor = _hard_edges(nodes, rng, factor)   # crisp edges: the hardest case for a smoother
    return factor


def _coordinates(nodes, rng: random.Random):
    coords = nodes.new("ShaderNodeTexCoord")
    mapping = nodes.new("ShaderNodeMapping")
    nodes.link(coords.outputs["Object"], mapping.inputs["Vector"])
    scale = math.exp(rng.uniform(math.log(1.0), math.log(25.0)))   # repeats per metre
    stretch = rng.uniform(1.0, 3.0) if rng.random() < 0.3 else 1.0
    mapping.inputs["Scale"].default_value = (scale * stretch, scale, scale)
    mapping.inputs["Rotation"].default_value = tuple(rng.uniform(0.0, math.pi) for _ in range(3))
    return mapping.outputs["Vector"]


def _noise(nodes, rng, vector):
    tex = nodes.new("ShaderNodeTexNoise")
    nodes.link(vector, tex.inputs["Vector"])
    tex.inputs["Scale"].default_value = rng.uniform(1.0, 6.0)
    tex.inputs["Detail"].default_value = rng.uniform(2.0, 12.0)
    tex.inputs["Roughness"].default_value = rng.uniform(0.4, 0.75)
    return tex.outputs["Fac"]


def _voronoi(nodes, rng, vector):
    tex = nodes.new("ShaderNodeTexVoronoi")
    tex.feature = rng.choice(("F1", "F2", "DISTANCE_TO_EDGE"))
    nodes.link(vector, tex.inputs["Vector"])
    tex.inputs["Scale"].default_value = rng.uniform(1.0, 5.0)
    return tex.outputs["Distance"]


def _wave(nodes, rng, vector):
    tex = nodes.new("ShaderNodeTexWave")
    tex.wave_type = rng.choice(("BANDS", "RINGS"))
    nodes.link(vector, tex.inputs["Vector"])
    tex.inputs["Scale"].default_value = rng.uniform(0.5, 4.0)
    tex.inputs["Distortion"].default_value = rng.uniform(0.0, 12.0)   # wood grain when high
    tex.inputs["Detail"].default_value = rng.uniform(0.0, 6.0)
    return tex.outputs["Fac"]


def _checker(nodes, rng, vector):
    tex = nodes.new("ShaderNodeTexChecker")
    nodes.link(vector, tex.inputs["Vector"])
    tex.inputs["Scale"].default_value = rng.uniform(1.0, 6.0)
    tex.inputs["Color1"].default_value = (1.0, 1.0, 1.0, 1.0)
    tex.inputs["Color2"].default_value = (0.0, 0.0, 0.0, 1.0)
    return tex.outputs["Fac"]


def _brick(nodes, rng, vector):
    tex = nodes.new("ShaderNodeTexBrick")
    nodes.link(vector, tex.inputs["Vector"])
    tex.inputs["Scale"].default_value = rng.uniform(1.0, 5.0)
    tex.inputs["Mortar Size"].default_value = rng.uniform(0.01, 0.06)
    tex.inputs["Color1"].default_value = (1.0, 1.0, 1.0, 1.0)
    tex.inputs["Color2"].default_value = (0.6, 0.6, 0.6, 1.0)
    tex.inputs["Mortar"].default_value = (0.0, 0.0, 0.0, 1.0)
    return _luminance(nodes, tex.outputs["Color"])


def _magic(nodes, rng, vector):
    tex = nodes.new("ShaderNodeTexMagic")
    tex.turbulence_depth = rng.randint(1, 4)
    nodes.link(vector, tex.inputs["Vector"])
    tex.inputs["Scale"].default_value = rng.uniform(1.0, 5.0)
    return tex.outputs["Fac"]


def _image(nodes, rng, vector):
    tex = nodes.new("ShaderNodeTexImage", interpolation="Linear")
    tex.image = image_texture(rng.choice(IMAGE_KINDS), rng.randrange(1 << 30))
    nodes.link(vector, tex.inputs["Vector"])
    return _luminance(nodes, tex.outputs["Color"])


_PATTERN_BUILDERS = {"noise": _noise, "voronoi": _voronoi, "wave": _wave, "checker": _checker,
                     "brick": _brick, "magic": _magic, "image": _image}


def _luminance(nodes, color_socket):
    bw = nodes.new("ShaderNodeRGBToBW")
    nodes.link(color_socket, bw.inputs["Color"])
    return bw.outputs["Val"]


def _hard_edges(nodes, rng, factor):
    """Threshold a smooth pattern into two flat regions with sharp boundaries."""
    ramp = nodes.new("ShaderNodeValToRGB")
    ramp.color_ramp.interpolation = "CONSTANT"
    ramp.color_ramp.elements[1].position = rng.uniform(0.35, 0.65)
    nodes.link(factor, ramp.inputs["Fac"])
    return _luminance(nodes, ramp.outputs["Color"])


# ---------------------------------------------------------------------------------------------
# Image textures, drawn with numpy (kept in memory by Blender, never written to disk)
# ---------------------------------------------------------------------------------------------

def image_texture(kind: str, seed: int):
    """A grey IMAGE_SIZE² tileable image of `kind` as a Blender image (linear, non-colour)."""
    values = _IMAGE_DRAWERS[kind](np.random.default_rng(seed), IMAGE_SIZE)
    rgba = np.empty((IMAGE_SIZE, IMAGE_SIZE, 4), np.float32)
    rgba[..., :3] = np.clip(values, 0.0, 1.0)[..., None]
    rgba[..., 3] = 1.0
    image = bpy.data.images.new(f"tex.{kind}.{seed}", IMAGE_SIZE, IMAGE_SIZE, float_buffer=True)
    image.colorspace_settings.name = "Non-Color"
    image.pixels.foreach_set(rgba.ravel())
    image.update()
    return image


def _print(rng, n):
    """Rows of glyph-like blocks: signage, labels, book spines, printed fabric."""
    img = np.ones((n, n), np.float32)
    row_h = int(rng.integers(6, 16))
    for top in range(2, n - row_h, row_h + int(rng.integers(2, 6))):
        x = int(rng.integers(0, 6))
        while x < n - 4:
            w = min(int(rng.integers(2, 7)), n - x)
            glyph = rng.random((row_h - 2, w)) < 0.45
            img[top:top + row_h - 2, x:x + w][glyph] = 0.0
            x += w + int(rng.integers(1, 4)) + (6 if rng.random() < 0.15 else 0)
    return img


def _weave(rng, n):
    y, x = np.mgrid[0:n, 0:n]
    period = int(rng.choice([4, 8, 16]))
    warp = np.sin(2 * np.pi * x / period) * 0.5 + 0.5
    weft = np.sin(2 * np.pi * y / period) * 0.5 + 0.5
    over = ((x // (period // 2) + y // (period // 2)) % 2).astype(np.float32)
    return 0.25 + 0.6 * (over * warp + (1 - over) * weft) + 0.1 * rng.random((n, n))


def _planks(rng, n):
    width = int(rng.choice([8, 16, 32]))
    img = np.empty((n, n), np.float32)
    for left in range(0, n, width):
        grain = np.sin(np.arange(n) / rng.uniform(1.5, 4.0) + rng.uniform(0, 6)) * 0.08
        img[:, left:left + width] = rng.uniform(0.4, 0.9) + grain[:, None]
        img[:, left] = 0.1
    return img + 0.05 * rng.random((n, n))


def _tiles(rng, n):
    size = int(rng.choice([8, 16, 32]))
    cells = rng.uniform(0.3, 1.0, (n // size + 1, n // size + 1))
    img = np.kron(cells, np.ones((size, size)))[:n, :n].astype(np.float32)
    img[::size, :] = img[:, ::size] = 0.15       # grout lines
    return img


def _speckle(rng, n):
    img = 0.6 + 0.25 * rng.standard_normal((n, n))
    dots = rng.random((n, n)) < 0.03
    img[dots] = rng.uniform(0.0, 1.0, int(dots.sum()))
    return img.astype(np.float32)


_IMAGE_DRAWERS = {"print": _print, "weave": _weave, "planks": _planks, "tiles": _tiles,
                  "speckle": _speckle}
