"""Render settings: the fast and reference presets, and the schema's passes.

The pass list is not repeated here: it comes from neural_core.schema.PASSES (the `setting`
field names the ViewLayer property of every built-in pass; AOV passes are added as AOVs).
"""
from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import asdict, dataclass

from neural_core import schema

from .blender_compat import enable_gpu_devices, set_multilayer_exr
from .materials import MATERIAL_AOVS


@dataclass(frozen=True)
class RenderPreset:
    """Cycles sampling and light-path settings. The denoiser is always off."""

    name: str
    samples: int
    max_bounces: int
    diffuse_bounces: int
    glossy_bounces: int
    transmission_bounces: int
    transparent_max_bounces: int
    caustics: bool

    def with_samples(self, samples: int) -> "RenderPreset":
        return RenderPreset(**{**asdict(self), "samples": int(samples)})


# Few samples and bounces: what an artist's preview looks like; the RAD network's input.
FAST = RenderPreset("fast", samples=8, max_bounces=3, diffuse_bounces=1, glossy_bounces=1,
                    transmission_bounces=2, transparent_max_bounces=4, caustics=False)
# Cycles' default ("full") light paths and many samples: the RAD network's target.
REFERENCE = RenderPreset("reference", samples=128, max_bounces=12, diffuse_bounces=4,
                         glossy_bounces=4, transmission_bounces=12, transparent_max_bounces=8,
                         caustics=True)
PRESETS = {p.name: p for p in (FAST, REFERENCE)}

# Passes the generated materials can fill (class_aov is written by the add-on, not by us).
SCENE_PASSES = tuple(key for key, spec in schema.PASSES.items()
                     if not spec.is_aov or key in MATERIAL_AOVS)


def enable_passes(scene, keys=SCENE_PASSES) -> None:
    """Turn on every pass in `keys` on each view layer, AOVs included."""
    for view_layer in scene.view_layers:
        for key in keys:
            spec = schema.pass_spec(key)
            if spec.is_aov:
                _ensure_aov(view_layer, spec.blender_names[0], spec.aov_type)
            else:
                setattr(view_layer, spec.setting, True)
    # Cycles drops the Vector pass when motion blur is on.
    scene.render.use_motion_blur = False


def _ensure_aov(view_layer, name: str, aov_type: str) -> None:
    if name not in [aov.name for aov in view_layer.aovs]:
        aov = view_layer.aovs.add()
        aov.name = name
        aov.type = aov_type


def apply_preset(scene, preset: RenderPreset | str, noise_seed: int = 0,
                 device: str = "CPU") -> RenderPreset:
    """Configure Cycles with `preset` (a RenderPreset or 'fast'/'reference') on `device`
    ('CPU', or 'GPU': every GPU of the best backend Blender finds; RuntimeError if none)."""
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    scene.render.engine = "CYCLES"
    cycles = scene.cycles
    device = device.upper()
    if device == "GPU":
        enable_gpu_devices()
    elif device != "CPU":
        raise ValueError(f"device must be 'CPU' or 'GPU', not {device!r}")
    cycles.device = device
    cycles.samples = preset.samples
    cycles.use_adaptive_sampling = False   # same sample count everywhere: noise is comparable
    cycles.use_denoising = False
    cycles.seed = noise_seed
    cycles.use_animated_seed = False
    cycles.max_bounces = preset.max_bounces
    cycles.diffuse_bounces = preset.diffuse_bounces
    cycles.glossy_bounces = preset.glossy_bounces
    cycles.transmission_bounces = preset.transmission_bounces
    cycles.transparent_max_bounces = preset.transparent_max_bounces
    cycles.caustics_reflective = cycles.caustics_refractive = preset.caustics
    return preset


def set_output_exr(scene, path: str, half: bool = False, codec: str = "ZIP") -> None:
    """Make `render(write_still=True)` write every pass into one multilayer EXR at `path`."""
    set_multilayer_exr(scene.render.image_settings, half=half, codec=codec)
    scene.render.filepath = path
    scene.render.use_file_extension = False


@contextlib.contextmanager
def quiet_stdout(enabled: bool):
    """Silence Blender's per-tile render log (C-level stdout) so the progress bar stays readable."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)
