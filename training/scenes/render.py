"""Render settings: the fast and reference presets, and the schema's passes.

The pass list is not repeated here: it comes from neural_core.schema.PASSES (the `setting`
field names the ViewLayer property of every built-in pass; AOV passes are added as AOVs).
"""
from __future__ import annotations

import contextlib
import math
import os
import random
import re
import sys
from dataclasses import dataclass, replace

from addon.blender_api import EEVEE, set_multilayer_exr
from neural_core import schema

from .blender_compat import enable_gpu_devices
from .materials import MATERIAL_AOVS


ENGINES = ("cycles", "eevee")


@dataclass(frozen=True)
class RenderPreset:
    """Cycles sampling, light-path and denoiser settings; or, with engine 'eevee', EEVEE's
    render samples (EEVEE has no light-path limits and no denoiser: those fields are unused)."""

    name: str
    samples: int
    max_bounces: int
    diffuse_bounces: int
    glossy_bounces: int
    transmission_bounces: int
    transparent_max_bounces: int
    caustics: bool
    # Cycles' own denoiser (Blender's default), with the noisy image stored as a pass, so one
    # render gives both what a user sees with the denoiser on and with it off.
    denoise: bool = False
    engine: str = "cycles"

    def with_samples(self, samples: int) -> "RenderPreset":
        return replace(self, samples=int(samples))

    def with_denoise(self, denoise: bool) -> "RenderPreset":
        return replace(self, denoise=bool(denoise))

    def with_engine(self, engine: str) -> "RenderPreset":
        if engine not in ENGINES:
            raise ValueError(f"the render engine must be one of {', '.join(ENGINES)}, not {engine!r}")
        return replace(self, engine=engine, denoise=self.denoise and engine == "cycles")


# Few samples and bounces, denoised as Blender does by default: the RAD network's input.
FAST = RenderPreset("fast", samples=8, max_bounces=3, diffuse_bounces=1, glossy_bounces=1,
                    transmission_bounces=2, transparent_max_bounces=4, caustics=False, denoise=True)
# Cycles' default ("full") light paths, denoised: the RAD network's target. 64 denoised samples
# are what a 2-core CPU allows for hundreds of scenes; held-out sets render 512+ raw samples.
REFERENCE = RenderPreset("reference", samples=64, max_bounces=12, diffuse_bounces=4,
                         glossy_bounces=4, transmission_bounces=12, transparent_max_bounces=8,
                         caustics=True, denoise=True)
PRESETS = {p.name: p for p in (FAST, REFERENCE)}

# The range a training corpus draws each scene's fast render from (log-uniform samples).
FAST_SAMPLE_RANGE = (1, 64)
FAST_BOUNCE_RANGE = (1, 12)


def draw_fast_preset(scene_seed: int, bounces: tuple[int, int] = FAST_BOUNCE_RANGE) -> RenderPreset:
    """The fast render of one corpus scene: 1-64 spp and `bounces` (default 1-12) bounces,
    denoiser on, drawn from the scene's seed (so a resumed corpus draws the same)."""
    rng = random.Random(f"photoreal-fast:{int(scene_seed)}")
    low, high = FAST_SAMPLE_RANGE
    samples = int(round(math.exp(rng.uniform(math.log(low), math.log(high)))))
    return bounce_preset("fast", samples, rng.randint(*bounces))


def bounce_preset(name: str, samples: int, bounces: int, denoise: bool = True) -> RenderPreset:
    """`samples` spp with every light path cut at `bounces` (diffuse/glossy at most Cycles' 4)."""
    return RenderPreset(name, samples=samples, max_bounces=bounces,
                        diffuse_bounces=min(bounces, 4), glossy_bounces=min(bounces, 4),
                        transmission_bounces=bounces, transparent_max_bounces=max(bounces, 4),
                        caustics=False, denoise=denoise)


def parse_fast_preset(text: str) -> RenderPreset:
    """'4spp-1b' -> the fast render 'fast-4spp-1b' at 4 spp and 1 bounce, denoiser on."""
    match = re.fullmatch(r"(\d+)spp-(\d+)b", text.strip())
    if not match or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise ValueError(f"a fast render is written like 4spp-1b (samples, bounces), not {text!r}")
    return bounce_preset(f"fast-{text.strip()}", int(match.group(1)), int(match.group(2)))


# Passes the generated materials can fill (class_aov is written by the add-on, not by us).
# The denoiser's noisy image is not among them: `apply_preset` stores it with the denoiser.
SCENE_PASSES = tuple(key for key, spec in schema.PASSES.items()
                     if (not spec.is_aov or key in MATERIAL_AOVS) and key != "noisy" and spec.rendered)


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
    ('CPU', or 'GPU': every GPU of the best backend Blender finds; RuntimeError if none), or
    EEVEE with its samples if the preset's engine is 'eevee' (EEVEE's defaults otherwise)."""
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    if preset.engine == "eevee":
        scene.render.engine = EEVEE
        scene.eevee.taa_render_samples = preset.samples
        return preset
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
    cycles.use_denoising = preset.denoise
    for view_layer in scene.view_layers:
        view_layer.cycles.denoising_store_passes = preset.denoise   # the "Noisy Image" pass
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
    # One interleaved part: faster to write and readable by single-part EXR readers.
    set_multilayer_exr(scene.render.image_settings, depth="16" if half else "32", codec=codec,
                       interleave=True)
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
