"""What the runtime does with frames that are not quite what a model was trained on
(issue 13, items 10 and 11). Each fallback returns a warning for the user; none is silent.

- Plain Blender EXRs lack the custom `roughness` and `metallic` AOVs that the add-on writes:
  they are filled with the constants the add-on itself writes for materials without a
  Principled BSDF (addon/passes.py, AOV_SOURCES).
- Id passes whose values are no tagged class (another pass_index convention) are counted.
- Radiance above the range the networks see (schema.MAX_RADIANCE) is passed through from the
  input, so a sun disc of 2.8e5 stays 2.8e5 instead of being clipped at 1000.
"""
from __future__ import annotations

import numpy as np

from . import schema

# The add-on's values for materials without a Principled BSDF (addon/passes.py AOV_SOURCES).
AOV_DEFAULTS = {"roughness": 0.5, "metallic": 0.0}
# Highlights fade from the model's output to the input's radiance between these levels: the
# networks clip their input at MAX_RADIANCE, so above it their output knows nothing.
HIGHLIGHT_START = 0.5 * schema.MAX_RADIANCE
HIGHLIGHT_END = schema.MAX_RADIANCE


def fill_default_aovs(frame: schema.Frame, required) -> tuple[schema.Frame, list[str]]:
    """The frame with missing default-able AOVs filled, and a warning naming them."""
    missing = [key for key in required if key in AOV_DEFAULTS and key not in frame]
    if not missing or "image" not in frame:
        return frame, []
    h, w = frame["image"].shape[:2]
    filled = {**frame, **{key: np.full((h, w, 1), AOV_DEFAULTS[key], np.float32) for key in missing}}
    values = ", ".join(f"{key} = {AOV_DEFAULTS[key]:g}" for key in missing)
    return filled, [f"the frame has no {' / '.join(missing)} AOV, so the add-on's defaults are "
                    f"used ({values}); render with the add-on (Enhance on Render or the button "
                    f"enables them) for the model's full quality"]


def fill_full_light_paths(frame: schema.Frame, required) -> tuple[schema.Frame, list[str]]:
    """A frame that does not say its light-path depth is taken as fully lit: the model then only
    refines, never adds light that may already be there (the safe side for a full render)."""
    if "bounces" not in required or "bounces" in frame or not frame:
        return frame, []
    return schema.with_light_paths(frame, schema.FULL_BOUNCE_DEPTH), [
        "the frame does not say how many light bounces it was rendered with, so full light paths "
        "are assumed and no missing light is added; give --bounces N (the render's Max Bounces) "
        "for renders with fewer"]


def foreign_ids_warning(frame: schema.Frame, source: str) -> list[str]:
    """A warning when the id pass holds values that decode to no tagged class."""
    if source not in frame:
        return []
    ids = np.asarray(frame[source], np.float32)
    rounded = np.rint(ids)
    foreign = (np.abs(ids - rounded) > 1e-3) | (rounded < 0) | (rounded > schema.NUM_CLASSES - 1)
    count = int(foreign.sum())
    if count == 0:
        return []
    example = float(ids[foreign].flat[0])
    return [f"{count} pixel(s) of the {source} pass hold ids that are no tagged class (e.g. "
            f"{example:g}; classes are pass_index = class id + 1, 1-{schema.NUM_CLASSES - 1}); "
            f"they count as void. Tag objects with the custom property "
            f"'{schema.CLASS_PROPERTY}' instead of setting pass indices by hand"]


def keep_highlights(rgb: np.ndarray, image: np.ndarray) -> np.ndarray:
    """Model output (3, H, W) with the input's radiance faded in above HIGHLIGHT_START."""
    source = image.transpose(2, 0, 1)
    peak = source.max(axis=0)
    if not peak.max(initial=0.0) > HIGHLIGHT_START:
        return rgb
    weight = np.clip((peak - HIGHLIGHT_START) / (HIGHLIGHT_END - HIGHLIGHT_START), 0.0, 1.0)
    out = rgb if rgb.flags.writeable else rgb.copy()
    out += weight * (source - out)
    return out
