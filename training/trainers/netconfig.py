"""Network configs for training: a named preset of neural_core's config dataclass, JSON
overrides from --net-config, and the G-buffer passes of the data (RAD)."""
from __future__ import annotations

import json

PRESETS = ("small", "denoised", "paper", "tiny")
# 'tiny' is for tests and smoke runs: seconds per step on a laptop CPU at 32-64 px crops.
TINY = {
    "rad": {"num_branches": 2, "blocks_per_branch": (0, 1), "base_channels": 8, "gbuffer_dim": 8,
            "kernel_scales": 2},
    "crn": {"num_modules": 3, "widths": (16, 16, 8), "width_multiplier": 1.0, "num_images": 2},
}


def config_class(kind: str):
    from neural_core.networks import rad
    if kind == "rad":
        return rad.RADConfig
    from neural_core.networks import crn
    return crn.CRNConfig


def network_config(kind: str, preset: str, overrides: str | dict = "", gbuffer_passes=None) -> dict:
    if preset not in PRESETS:
        raise ValueError(f"--net must be one of {PRESETS}, not {preset!r}")
    values = dict(TINY[kind]) if preset == "tiny" else {}
    values.update(json.loads(overrides) if isinstance(overrides, str) and overrides else (overrides or {}))
    if kind == "rad":
        values["gbuffer_passes"] = tuple(gbuffer_passes or ())
    cls = config_class(kind)
    if preset == "denoised" and kind != "rad":
        raise ValueError("--net denoised is a RAD preset (on top of Cycles' denoiser)")
    cfg = getattr(cls, "small" if preset == "tiny" else preset)(**values)
    return json.loads(json.dumps(cfg.to_dict()))   # tuples -> lists: plain JSON from here on


def build(kind: str, config: dict):
    from neural_core.networks import build_network
    return build_network(kind, config)
