"""Procedural scenes for training data (needs the `bpy` module; Blender 4.5 and 5.x).

    from training.scenes import build_scene, apply_preset, set_output_exr
    info = build_scene("street", seed=10001, resolution=(320, 180))
    apply_preset(bpy.context.scene, "fast")

Every object carries its semantic class (custom property schema.CLASS_PROPERTY and
pass_index = schema.pass_index_for_class), every material writes the roughness/metallic AOVs,
and all schema passes are enabled. See training/scenes/README.md for the class mapping and
the seed ranges.
"""
from .build import KINDS, build_scene, describe
from .render import (ENGINES, FAST, FAST_BOUNCE_RANGE, PRESETS, REFERENCE, SCENE_PASSES, RenderPreset,
                     apply_preset, draw_fast_preset, enable_passes, parse_fast_preset, set_output_exr)

__all__ = ["ENGINES", "KINDS", "build_scene", "describe", "FAST", "FAST_BOUNCE_RANGE", "REFERENCE", "PRESETS",
           "SCENE_PASSES", "RenderPreset", "apply_preset", "draw_fast_preset", "enable_passes",
           "parse_fast_preset", "set_output_exr"]
