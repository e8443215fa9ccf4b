"""`python -m training export RUN_DIR --out MODEL.onnx`: a trained generator -> ONNX for the add-on.

The model's metadata carries everything the runtime needs and nothing it has to guess: the
network kind and config, the G-buffer passes and the run's normalisation statistics, the class
source, and a `trained_on` text naming the data, the number of steps and the VGG used.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from neural_core import schema
from neural_core.metadata import ModelMetadata

from . import checkpoint

log = logging.getLogger(__name__)


def load_run(run: str | os.PathLike, checkpoint_path: str | os.PathLike | None = None) -> dict:
    if checkpoint_path:
        payload = checkpoint.load_named(checkpoint_path)
        payload["path"] = str(checkpoint_path)
    else:
        payload = checkpoint.latest(run)
    if payload is None:
        raise FileNotFoundError(f"{run} has no checkpoint (looked in {checkpoint.checkpoint_dir(run)}); "
                                f"train first with `python -m training train-rad|train-crn --run {run}`")
    payload["info"] = json.loads(payload["info"])
    return payload


def generator_from(payload: dict) -> torch.nn.Module:
    from neural_core.networks import build_network
    info = payload["info"]
    model = build_network(info["kind"], info["net_config"])
    model.load_state_dict(payload["models"]["generator"])
    return model.eval()


def scale_residual(model: torch.nn.Module, scale: float) -> None:
    """RAD on top of the denoiser returns image + residual (encoded domain); scale the residual,
    exactly, through its last (linear) layer. A smaller correction gives up a little of the mean
    gain for a better worst scene; scripts/calibrate_residual.py picks the scale on validation
    scenes."""
    if not 0.0 < scale <= 1.0:
        raise ValueError(f"--residual-scale must be in (0, 1], not {scale}")
    require_residual_network(model, "--residual-scale")
    with torch.no_grad():
        model.to_rgb.weight.mul_(scale)
        model.to_rgb.bias.mul_(scale)


def require_residual_network(model: torch.nn.Module, option: str) -> None:
    """Residual scales only mean something for a network that returns image + residual."""
    if not getattr(getattr(model, "config", None), "zero_residual", False):
        raise ValueError(f"{option} needs a network that returns image + residual "
                         "(RADConfig.denoised); this one predicts the image itself")


def trained_on(payload: dict, run: str | os.PathLike, residual_scale: float = 1.0,
               full_bounce_scale: float | None = None) -> str:
    info = payload["info"]
    vgg = "; ".join(info.get("vgg", {}).values()) or "no VGG"
    fallback = " [VGG FALLBACK: random features]" if "FIXED RANDOM" in vgg else ""
    scaled = f", residual x{residual_scale:g}" if residual_scale != 1.0 else ""
    if full_bounce_scale is not None:
        scaled += f" (x{full_bounce_scale:g} on renders with every bounce)"
    return (f"{info['kind']} {info['mode']} training, {payload['step']} steps, run {Path(run).resolve().name}"
            f"{scaled}{fallback}; data: {info['data']}")


def metadata_from(payload: dict, run: str | os.PathLike, residual_scale: float = 1.0,
                  full_bounce_scale: float | None = None) -> ModelMetadata:
    from neural_core.export import metadata_for
    info = payload["info"]
    stats = info.get("gbuffer_stats")
    if info["kind"] == "rad":
        passes = list(info["net_config"].get("gbuffer_passes", []))
        channels = schema.gbuffer_channel_names(passes)
        if stats and stats["channels"] != channels:
            raise ValueError(f"the run was trained on G-buffer channels {stats['channels'][:4]}... that are "
                             f"not the schema passes {passes}; the add-on cannot feed them. Train on "
                             f"exported scenes or an EPE list written by the add-on's exporter")
    gstats = schema.GBufferStats.from_dict(stats) if info["kind"] == "rad" and stats else None
    metadata = metadata_for(info["kind"], info["net_config"], gstats,
                            trained_on(payload, run, residual_scale, full_bounce_scale),
                            info.get("class_source", "object_index"))
    if full_bounce_scale is not None:
        # Relative to the weights, which carry residual_scale already.
        metadata.full_bounce_scale = full_bounce_scale / residual_scale
        metadata.validate(str(run))
    return metadata


def export_run(run: str | os.PathLike, out: str | os.PathLike, checkpoint_path=None,
               fp16: bool = False, residual_scale: float = 1.0, full_bounce_scale: float | None = None) -> Path:
    from neural_core.export import export_onnx
    payload = load_run(run, checkpoint_path)
    model = generator_from(payload)
    if residual_scale != 1.0:
        scale_residual(model, residual_scale)
    if full_bounce_scale is not None:
        require_residual_network(model, "--full-bounce-scale")
    metadata = metadata_from(payload, run, residual_scale, full_bounce_scale)
    out = Path(out)
    export_onnx(model, metadata, out)
    if fp16:
        # The runtime picks MODEL.fp16.onnx next to MODEL.onnx on CUDA.
        export_onnx(model, metadata, out.with_name(out.stem + ".fp16.onnx"), fp16=True)
    log.info("exported %s (step %d) to %s", payload["path"], payload["step"], out)
    return out
