"""ONNX export of the networks, with the model metadata embedded in `metadata_props`.

Exported graphs have dynamic batch, height and width and the input/output names of
`metadata.INPUT_NAMES` / `metadata.OUTPUT_NAME`, so the runtime needs nothing but the file.
CRN is exported through a wrapper that pads the class map to the network's size multiple,
keeps the first of its k images and crops back: the exported CRN takes any H x W.

Needs torch and onnx (training side); the runtime reads the result with onnxruntime only.
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from . import schema
from .metadata import INPUT_NAMES, OUTPUT_NAME, ModelMetadata
from .networks import config_for
from .networks.common import without_parametrizations

OPSET = 17
# Odd, non-square sizes for tracing, so no size can be mistaken for a constant.
_TRACE_HEIGHT, _TRACE_WIDTH = 37, 53


class CRNForExport(nn.Module):
    """classes (B, NUM_CLASSES, H, W), any H, W -> first image (B, 3, H, W).

    The class map is padded at the bottom/right to the size multiple by repeating its edge, and
    the output is cropped back. Layer norm statistics then include the padded strip: the output
    near the edge differs a little from a model that saw a larger real frame, never wildly.
    """

    def __init__(self, crn: nn.Module):
        super().__init__()
        self.crn = crn
        self.multiple = crn.size_multiple

    def forward(self, classes: torch.Tensor) -> torch.Tensor:
        height, width = classes.shape[-2], classes.shape[-1]
        pad_h = (self.multiple - height % self.multiple) % self.multiple
        pad_w = (self.multiple - width % self.multiple) % self.multiple
        padded = F.pad(classes, [0, pad_w, 0, pad_h], mode="replicate")
        images = self.crn(padded)
        return images[:, 0, :, :height, :width]


class _HalfPrecision(nn.Module):
    """Runs the model in fp16 inside the graph; inputs and outputs stay fp32 for the runtime."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.half()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(*(x.half() for x in inputs)).float()


def metadata_for(kind: str, config=None, stats: schema.GBufferStats | None = None,
                 trained_on: str = "untrained: freshly initialised weights",
                 class_source: str = "object_index") -> ModelMetadata:
    """ModelMetadata for a network of `kind` built from `config` (dataclass or dict).

    `stats` are the dataset's G-buffer standardisation (identity if None). The exported CRN pads
    internally, so its size_multiple is 1.
    """
    cfg = config_for(kind, config if isinstance(config, dict) or config is None else config.to_dict())
    passes = list(cfg.gbuffer_passes) if kind == "rad" else []
    stats = stats or schema.GBufferStats.identity(schema.num_gbuffer_channels(passes))
    return ModelMetadata(
        model_kind=kind, gbuffer_passes=passes, gbuffer_mean=list(stats.mean),
        gbuffer_std=list(stats.std), class_source=class_source,
        num_images=cfg.num_images if kind == "crn" else 1, size_multiple=1,
        trained_on=trained_on, config=json.loads(json.dumps(cfg.to_dict())))  # as read back


def exportable(model: nn.Module, fp16: bool = False) -> nn.Module:
    """The module that is traced: eval mode, spectral norm folded, CRN wrapped, optional fp16."""
    module = without_parametrizations(model).eval()
    if model.kind == "crn":
        module = CRNForExport(module)
    if fp16:
        module = _HalfPrecision(module)
    return module.eval()


def export_onnx(model: nn.Module, metadata: ModelMetadata, path: str | os.PathLike,
                fp16: bool = False) -> Path:
    """Write `model` as ONNX (opset 17, dynamic batch/height/width) with `metadata` embedded.

    The file is written next to `path` and moved into place only once onnx.checker accepts it.
    """
    if metadata.model_kind != model.kind:
        raise ValueError(f"metadata says {metadata.model_kind!r} but the model is {model.kind!r}")
    metadata.validate("export metadata")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = exportable(model, fp16)
    example = model.example_inputs(2, _TRACE_HEIGHT, _TRACE_WIDTH)
    input_names = list(INPUT_NAMES[model.kind])
    dynamic_axes = {name: {0: "batch", 2: "height", 3: "width"} for name in [*input_names, OUTPUT_NAME]}
    fd, tmp = tempfile.mkstemp(suffix=".onnx.tmp", dir=path.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            # The tracer warns about Python ints taken from shapes; they are recorded as Shape ops.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            torch.onnx.export(module, example, tmp, input_names=input_names,
                              output_names=[OUTPUT_NAME], dynamic_axes=dynamic_axes,
                              opset_version=OPSET, dynamo=False, do_constant_folding=True)
        proto = onnx.load(tmp)
        _set_metadata(proto, metadata.to_props())
        proto.producer_name = "photoreal-enhance"
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes files private; a model is meant to be shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _set_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace all metadata_props with `props` (a re-export must not keep stale entries)."""
    del proto.metadata_props[:]
    for key, value in sorted(props.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
