"""ONNX export of the networks, with the model metadata embedded in `metadata_props`.

An exported graph takes the render passes as Blender writes them and gives linear radiance
(see `metadata.INPUT_FORMAT`): `FromPasses` wraps the network with the schema's transforms, the
dataset standardisation, the class one-hot, the padding to the grid multiple and the decode, so
that they run inside onnxruntime (threaded, and on the GPU when there is one) instead of as
numpy passes over ~20 float planes per pixel in the runtime. Batch, height and width are
dynamic; any H x W works.

Needs torch and onnx (training side); the runtime reads the result with onnxruntime only.
"""
from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path

import onnx
import torch
import torch.nn.functional as F
from torch import nn

from . import schema
from .files import write_atomic
from .metadata import DEFAULT_TILE_OVERLAP, OUTPUT_NAME, RAD_GRID_ALIGNMENT, ModelMetadata
from .networks import config_for
from .networks.common import without_parametrizations

OPSET = 17
# Odd, non-square sizes for tracing, so no size can be mistaken for a constant.
_TRACE_HEIGHT, _TRACE_WIDTH = 37, 53


# ---------------------------------------------------------------------------------------------
# The schema's transforms in torch (the numpy originals in `schema` feed training; the tests
# hold these to them)
# ---------------------------------------------------------------------------------------------

def encode_radiance(rgb: torch.Tensor) -> torch.Tensor:
    """schema.encode_radiance: log(1 + clamp(x, 0, MAX_RADIANCE))."""
    return torch.log(1.0 + rgb.clamp(0.0, schema.MAX_RADIANCE))


def decode_radiance(encoded: torch.Tensor) -> torch.Tensor:
    """schema.decode_radiance: exp(clamp(y, 0, log1p(MAX_RADIANCE))) - 1."""
    return torch.exp(encoded.clamp(0.0, math.log1p(schema.MAX_RADIANCE))) - 1.0


def transform_pass(key: str, values: torch.Tensor) -> torch.Tensor:
    """schema.apply_transform for one pass (B, C, H, W)."""
    transform = schema.pass_spec(key).transform
    if transform == schema.TRANSFORM_HDR:
        return encode_radiance(values)
    if transform == schema.TRANSFORM_DEPTH:
        # NaN -> far like schema's nan_to_num; the clamp takes +-inf to far / 0.
        depth = torch.where(torch.isnan(values), torch.full_like(values, schema.DEPTH_FAR), values)
        return torch.log(1.0 + depth.clamp(0.0, schema.DEPTH_FAR)) / math.log1p(schema.DEPTH_FAR)
    if transform == schema.TRANSFORM_INDEX:
        raise ValueError(f"pass {key!r} holds ids; it becomes the class one-hot, not a G-buffer channel")
    return values


def class_one_hot(index_pass: torch.Tensor) -> torch.Tensor:
    """schema.class_map_from_index + schema.one_hot: (B, 1, H, W) pass ids (class id + 1,
    0 = untagged) -> (B, NUM_CLASSES, H, W) one-hot, void where untagged or out of range."""
    ids = torch.round(index_pass) - 1.0
    valid = (ids >= 0) & (ids < schema.NUM_CLASSES - 1)
    ids = torch.where(valid, ids, torch.full_like(ids, float(schema.VOID_CLASS)))
    classes = torch.arange(schema.NUM_CLASSES, dtype=ids.dtype, device=ids.device)
    return (ids == classes.view(1, -1, 1, 1)).to(index_pass.dtype)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad (B, C, H, W) at the bottom/right to multiples of `multiple` by repeating the edge."""
    if multiple == 1:
        return x
    height, width = x.shape[-2], x.shape[-1]
    pad_h = (multiple - height % multiple) % multiple
    pad_w = (multiple - width % multiple) % multiple
    return F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")


class FromPasses(nn.Module):
    """Render passes -> network -> linear radiance: the module that is exported.

    Inputs, in `metadata.input_names` order: the passes, (B, C, H, W) float32 as rendered.
    Output: (B, 3, H, W) linear HDR (CRN: the first of its k images).

    Everything is padded to `metadata.grid_multiple` by repeating the edge and cropped back.
    For CRN the layer norm statistics then include the padded strip: the output near the edge
    differs a little from a model that saw a larger real frame, never wildly.
    """

    def __init__(self, network: nn.Module, metadata: ModelMetadata):
        super().__init__()
        self.network = network
        self.kind = metadata.model_kind
        self.input_names = list(metadata.input_names)
        self.gbuffer_passes = list(metadata.gbuffer_passes)
        self.image_passes = list(metadata.image_passes)
        self.class_source = metadata.class_source
        self.multiple = metadata.grid_multiple
        self.full_bounce_scale = metadata.full_bounce_scale
        std = torch.tensor(metadata.gbuffer_std, dtype=torch.float32).clamp_min(1e-6)
        # Not in the state dict: they come from the metadata, not from training.
        self.register_buffer("mean", torch.tensor(metadata.gbuffer_mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("inv_std", (1.0 / std).view(1, -1, 1, 1), persistent=False)

    def forward(self, *passes: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.input_names, passes))
        height, width = passes[0].shape[-2], passes[0].shape[-1]
        classes = class_one_hot(pad_to_multiple(named[self.class_source], self.multiple))
        if self.kind == "crn":
            encoded = self.network(classes)[:, 0]
        else:
            image = pad_to_multiple(torch.cat([encode_radiance(named[k]) for k in self.image_passes], 1),
                                    self.multiple)
            encoded = self.network(image, self._gbuffers(named, image), classes)
            if self.full_bounce_scale != 1.0:
                encoded = self._scale_full_bounce_residual(encoded, image[:, :3], named["bounces"])
        return decode_radiance(encoded[..., :height, :width])

    def _scale_full_bounce_residual(self, encoded, base, bounces) -> torch.Tensor:
        """Renders with every bounce miss no light: there the correction on top of the denoised
        image (encoded domain) is scaled by `full_bounce_scale` (calibrated on validation
        scenes, scripts/calibrate_residual.py)."""
        full = (pad_to_multiple(bounces, self.multiple) >= 1.0).to(encoded.dtype)
        return base + (encoded - base) * (1.0 + (self.full_bounce_scale - 1.0) * full)

    def _gbuffers(self, named: dict, image: torch.Tensor) -> torch.Tensor:
        if not self.gbuffer_passes:
            return image[:, :0]     # the baseline without G-buffers: zero channels
        planes = torch.cat([transform_pass(k, named[k]) for k in self.gbuffer_passes], dim=1)
        return pad_to_multiple((planes - self.mean) * self.inv_std, self.multiple)


def example_passes(metadata: ModelMetadata, batch: int = 1, height: int = 64, width: int = 64,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Plausible random passes for `metadata.input_names`: HDR radiance, depths with a sky at
    infinity, unit normals, blocky class ids (class id + 1, some untagged)."""
    gen = torch.Generator().manual_seed(seed)
    tensors = []
    for key in metadata.input_names:
        spec = schema.pass_spec(key)
        shape = (batch, spec.num_channels, height, width)
        if spec.transform == schema.TRANSFORM_INDEX:
            coarse = torch.randint(0, schema.NUM_CLASSES + 1, (batch, 1, (height + 7) // 8, (width + 7) // 8),
                                   generator=gen).float()
            tensors.append(F.interpolate(coarse, scale_factor=8, mode="nearest")[..., :height, :width])
        elif spec.transform == schema.TRANSFORM_HDR:
            tensors.append(torch.rand(shape, generator=gen) ** 2 * 4.0)
        elif spec.transform == schema.TRANSFORM_DEPTH:
            depth = 1.0 + 50.0 * torch.rand(shape, generator=gen)
            depth[..., : height // 5, :] = float("inf")
            tensors.append(depth)
        elif key == "normal":
            tensors.append(F.normalize(torch.randn(shape, generator=gen), dim=1))
        else:
            tensors.append(torch.rand(shape, generator=gen))
    return tuple(tensors)


class _HalfPrecision(nn.Module):
    """Runs the network in fp16 inside the graph; the passes, their transforms and the output
    stay fp32 (raw radiance and depth overflow fp16's 65504)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model.half()

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        return self.model(*(x.half() for x in inputs)).float()


def metadata_for(kind: str, config=None, stats: schema.GBufferStats | None = None,
                 trained_on: str = "untrained: freshly initialised weights",
                 class_source: str = "object_index") -> ModelMetadata:
    """ModelMetadata for a network of `kind` built from `config` (dataclass or dict).

    `stats` are the dataset's G-buffer standardisation (identity if None). The graph pads to
    `grid_multiple`: RAD's tile grid (which covers its own halvings), CRN's size multiple.
    """
    cfg = config_for(kind, config if isinstance(config, dict) or config is None else config.to_dict())
    passes = list(cfg.gbuffer_passes) if kind == "rad" else []
    stats = stats or schema.GBufferStats.identity(schema.num_gbuffer_channels(passes))
    return ModelMetadata(
        model_kind=kind, gbuffer_passes=passes,
        image_passes=list(cfg.image_passes) if kind == "rad" else [], gbuffer_mean=list(stats.mean),
        gbuffer_std=list(stats.std), class_source=class_source,
        num_images=cfg.num_images if kind == "crn" else 1,
        grid_multiple=cfg.size_multiple if kind == "crn" else RAD_GRID_ALIGNMENT,
        tile_overlap=cfg.tile_overlap if kind == "rad" else DEFAULT_TILE_OVERLAP,
        trained_on=trained_on, config=json.loads(json.dumps(cfg.to_dict())))  # as read back


def exportable(model: nn.Module, metadata: ModelMetadata, fp16: bool = False) -> nn.Module:
    """The module that is traced: eval mode, spectral norm folded, the network in fp16 if asked,
    wrapped in FromPasses."""
    network = without_parametrizations(model).eval()
    if fp16:
        network = _HalfPrecision(network)
    return FromPasses(network, metadata).eval()


def export_onnx(model: nn.Module, metadata: ModelMetadata, path: str | os.PathLike,
                fp16: bool = False) -> Path:
    """Write `model` as ONNX (opset 17, dynamic batch/height/width) with `metadata` embedded.

    The file is written next to `path` and moved into place only once onnx.checker accepts it.
    """
    if metadata.model_kind != model.kind:
        raise ValueError(f"metadata says {metadata.model_kind!r} but the model is {model.kind!r}")
    metadata.validate("export metadata")
    module = exportable(model, metadata, fp16)
    example = example_passes(metadata, 2, _TRACE_HEIGHT, _TRACE_WIDTH)
    input_names = list(metadata.input_names)
    dynamic_axes = {name: {0: "batch", 2: "height", 3: "width"} for name in [*input_names, OUTPUT_NAME]}

    def write(tmp: Path) -> None:
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
    return write_atomic(path, write)


def _set_metadata(proto: onnx.ModelProto, props: dict[str, str]) -> None:
    """Replace all metadata_props with `props` (a re-export must not keep stale entries)."""
    del proto.metadata_props[:]
    for key, value in sorted(props.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
