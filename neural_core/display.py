"""The view transform for PNG output, and side-by-side comparison images.

EXR output keeps the linear HDR values; PNG output is for looking at, through this transform:

    v      = rgb_linear * 2**exposure                       (exposure in stops, default 0)
    c      = clip(v, 0, 1)                                   (per channel; HDR above 1 clips)
    srgb   = 12.92 * c                     if c <= 0.0031308
             1.055 * c**(1/2.4) - 0.055    otherwise         (the sRGB OETF, IEC 61966-2-1)
    png    = round(255 * srgb)             as uint8

That is Blender's "Standard" view transform with Look "None", exposure `exposure` and gamma 1,
so a PNG from here looks like the render saved from Blender with View Transform = Standard
(Blender 4.x/5.x default to AgX, which compresses highlights instead of clipping them).
NaN is shown as black. numpy + Pillow only (runs inside Blender).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from .files import write_atomic

# Pillow draws the labels; imported lazily so `to_display` works without it.


def srgb_oetf(linear: np.ndarray) -> np.ndarray:
    """Linear [0, 1] -> sRGB-encoded [0, 1]."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(linear <= 0.0031308, 12.92 * linear,
                    1.055 * np.power(linear, 1.0 / 2.4) - 0.055)


def to_display(rgb: np.ndarray, exposure: float = 0.0) -> np.ndarray:
    """(H, W, 3) linear HDR -> (H, W, 3) uint8 display sRGB, by the formula above."""
    exposed = np.nan_to_num(np.asarray(rgb, np.float32)[..., :3], nan=0.0) * np.float32(2.0 ** exposure)
    return np.rint(srgb_oetf(exposed) * 255.0).astype(np.uint8)


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write a uint8 (H, W, 3) image as PNG, atomically."""
    from PIL import Image
    write_atomic(path, lambda tmp: Image.fromarray(image).save(tmp, format="PNG"))


def side_by_side(images: Sequence[np.ndarray], labels: Sequence[str], gap: int = 8) -> np.ndarray:
    """Display uint8 images (same height) next to each other, each with a label strip on top."""
    from PIL import Image, ImageDraw, ImageFont

    if len(images) != len(labels):
        raise ValueError("one label per image")
    height = images[0].shape[0]
    if any(img.shape[0] != height for img in images):
        raise ValueError("side-by-side images must have the same height")
    font_size = max(12, height // 30)
    try:
        font = ImageFont.load_default(size=font_size)
    except TypeError:  # Pillow < 10.1 has a single fixed-size bitmap font
        font = ImageFont.load_default()
    strip = font_size + 2 * (font_size // 2)
    width = sum(img.shape[1] for img in images) + gap * (len(images) - 1)
    canvas = Image.new("RGB", (width, height + strip), (24, 24, 24))
    draw = ImageDraw.Draw(canvas)
    x = 0
    for img, label in zip(images, labels):
        canvas.paste(Image.fromarray(img), (x, strip))
        draw.text((x + font_size // 2, font_size // 2), label, fill=(235, 235, 235), font=font)
        x += img.shape[1] + gap
    return np.asarray(canvas)
