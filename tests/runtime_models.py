"""Test helpers for the runtime and CLI tests: small real ONNX models and synthetic frames.

Models are built with torch and exported with embedded metadata; frames hold plausible values
for every pass a model needs. torch is used here (tests), never by the runtime itself.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neural_core import schema
from neural_core.metadata import ModelMetadata


def make_frame(height: int, width: int, passes=None, seed: int = 0) -> schema.Frame:
    """A frame with plausible values: HDR image, background depth at inf, unit normals,
    blocky class ids in the object index pass (pass_index = class id + 1, 0 = untagged)."""
    rng = np.random.default_rng(seed)
    passes = passes or ["image", *schema.DEFAULT_GBUFFER_PASSES, "object_index"]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = 0.5 + 0.5 * np.sin(xx / 23.0)[..., None] * np.cos(yy / 17.0)[..., None]
    frame: schema.Frame = {}
    for key in passes:
        n = schema.pass_spec(key).num_channels
        noise = rng.random((height, width, n), dtype=np.float32)
        if key in ("image", "emission"):
            values = (smooth * 3.0 + noise) ** 2 * (0.2 if key == "emission" else 1.0)
        elif key == "depth":
            values = 1.0 + 50.0 * noise
            values[: height // 5] = np.inf            # sky: Cycles writes 1e10/inf there
        elif key == "normal":
            values = noise * 2 - 1
            values /= np.linalg.norm(values, axis=-1, keepdims=True) + 1e-6
        elif key in ("object_index", "material_index", "class_aov"):
            blocks = rng.integers(0, schema.NUM_CLASSES, ((height + 31) // 32, (width + 31) // 32))
            values = np.kron(blocks, np.ones((32, 32)))[:height, :width, None]
        else:
            values = 0.7 * smooth + 0.3 * noise
        frame[key] = np.ascontiguousarray(values, dtype=np.float32)
    return frame


def metadata_for(kind: str, **overrides) -> ModelMetadata:
    passes = list(schema.DEFAULT_GBUFFER_PASSES) if kind == "rad" else []
    n = schema.num_gbuffer_channels(passes)
    values = dict(model_kind=kind, gbuffer_passes=passes, gbuffer_mean=[0.1] * n,
                  gbuffer_std=[0.9] * n, size_multiple=1 if kind == "rad" else 8,
                  config={"test": "tiny"})
    values.update(overrides)
    return ModelMetadata(**values)


# ---------------------------------------------------------------------------------------------
# Tiny torch models with the real input/output contract
# ---------------------------------------------------------------------------------------------

def tiny_rad(gbuffer_channels: int, seed: int = 0):
    """A two-level U-shaped conv net on (image, gbuffers, classes) with a residual output:
    small, but with a stride-2 level and bilinear upsampling like RAD's branches."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class TinyRAD(nn.Module):
        def __init__(self):
            super().__init__()
            c_in = 3 + gbuffer_channels + schema.NUM_CLASSES
            self.inp = nn.Conv2d(c_in, 8, 3, padding=1)
            self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
            self.mid = nn.Conv2d(8, 8, 3, padding=1)
            self.out = nn.Conv2d(16, 3, 3, padding=1)

        def forward(self, image, gbuffers, classes):
            x = F.relu(self.inp(torch.cat([image, gbuffers, classes], dim=1)))
            y = F.relu(self.mid(F.relu(self.down(x))))
            y = F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)
            return image + 0.1 * torch.tanh(self.out(torch.cat([x, y], dim=1)))

    torch.manual_seed(seed)
    return TinyRAD().eval()


def tiny_crn(num_images: int = 1, seed: int = 0):
    """A coarse-to-fine conv net on one-hot classes (B, NUM_CLASSES, H, W), H, W multiples of 8."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    class TinyCRN(nn.Module):
        def __init__(self):
            super().__init__()
            self.coarse = nn.Conv2d(schema.NUM_CLASSES, 8, 3, padding=1)
            self.fine = nn.Conv2d(8 + schema.NUM_CLASSES, 3 * num_images, 3, padding=1)

        def forward(self, classes):
            coarse = F.relu(self.coarse(F.avg_pool2d(classes, 8)))
            up = F.interpolate(coarse, scale_factor=8.0, mode="bilinear", align_corners=False)
            return F.softplus(self.fine(torch.cat([up, classes], dim=1)))

    torch.manual_seed(seed)
    return TinyCRN().eval()


def example_inputs(kind: str, metadata: ModelMetadata, height: int = 32, width: int = 32):
    import torch
    classes = torch.zeros(1, schema.NUM_CLASSES, height, width)
    classes[:, 0] = 1
    if kind == "crn":
        return (classes,)
    return (torch.rand(1, 3, height, width), torch.rand(1, len(metadata.gbuffer_channels), height, width),
            classes)


def export_model(model, metadata: ModelMetadata | None, path: Path, props: dict | None = None) -> Path:
    """Export with the real input names and dynamic batch/height/width, embedding `metadata`
    (or raw `props`, to build broken models)."""
    import onnx
    import torch

    kind = metadata.model_kind if metadata is not None else "rad"
    names = list(metadata.input_names if metadata is not None else ("image", "gbuffers", "classes"))
    inputs = example_inputs(kind, metadata or metadata_for("rad"))
    dynamic = {name: {0: "batch", 2: "height", 3: "width"} for name in names}
    dynamic["enhanced"] = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(model, inputs, str(path), input_names=names, output_names=["enhanced"],
                      dynamic_axes=dynamic, dynamo=False)
    proto = onnx.load(str(path))
    entries = metadata.to_props() if metadata is not None else {}
    entries.update(props or {})
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path
