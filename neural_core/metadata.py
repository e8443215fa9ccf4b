"""Model metadata embedded in every exported ONNX file (as `metadata_props`).

The exporter writes it, the runtime reads it and refuses a model whose metadata is missing or
does not fit the schema in this checkout. Values are JSON strings under keys prefixed with
`photoreal.`.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Mapping

from . import schema
from .errors import ModelMetadataError

PREFIX = "photoreal."
MODEL_KINDS = ("rad", "crn")

# What an exported graph takes and gives. The graph's inputs are the render passes as Blender
# writes them, one input per pass named by its schema key (`required_passes`: "image",
# "depth", "normal", ..., "object_index"), each (batch, channels, H, W) float32, any H and W.
# The schema's transforms, the dataset standardisation, the class one-hot and the padding to
# `grid_multiple` all happen inside the graph, so the runtime feeds the arrays it read from the
# EXR without touching them. The output OUTPUT_NAME is linear HDR radiance (batch, 3, H, W)
# (not "image": ONNX value names are unique and RAD already has an input of that name).
INPUT_FORMAT = "passes"
OUTPUT_NAME = "enhanced"
# RAD's branches halve the resolution up to 5 times. The RAD graph pads (edge-replicated,
# cropped after) to a multiple of this, and the runtime starts tiles at multiples of it, so each
# level's pixel grid is an exact half of the one above in tiles and whole frames alike: that is
# what makes tiled output match whole-frame output.
RAD_GRID_ALIGNMENT = 32
# Tiles overlap by at least this; the 32 px of each tile nearest a shared edge are dropped and
# the next 64 px cross-fade. Measured on a fresh RAD (small config), tiled output then differs
# from the whole frame by ~1e-6 (1/255 is the requirement). A network that sees further (RAD's
# context module) records a larger overlap in its metadata (`tile_overlap`).
DEFAULT_TILE_OVERLAP = 128


# What the CLI and the add-on say about a model whose metadata says `untrained`.
UNTRAINED_WARNING = ("this model is freshly initialised, not trained, so its output is not an "
                     "enhancement: train one with `python -m training` and use that model "
                     "(in the add-on: as a Custom model)")


@dataclass
class ModelMetadata:
    model_kind: str
    image_passes: list[str] = field(default_factory=lambda: ["image"])   # RAD's radiance inputs
    gbuffer_passes: list[str] = field(default_factory=list)
    gbuffer_mean: list[float] = field(default_factory=list)
    gbuffer_std: list[float] = field(default_factory=list)
    class_source: str = "object_index"
    num_images: int = 1                       # CRN may emit k images; the runtime uses the first
    grid_multiple: int = 1                    # the graph pads H and W to multiples of this
    tile_overlap: int = DEFAULT_TILE_OVERLAP   # px tiles must overlap to match the whole frame
    # RAD on top of the denoiser: its residual on renders with every bounce (bounces plane 1),
    # relative to other renders; applied inside the graph (export.FromPasses).
    full_bounce_scale: float = 1.0
    trained_on: str = "untrained: freshly initialised weights"
    config: dict = field(default_factory=dict)  # the network config, to rebuild it in PyTorch
    schema_version: str = schema.SCHEMA_VERSION
    classes: list[str] = field(default_factory=lambda: list(schema.CLASSES))
    image_transform: str = schema.TRANSFORM_HDR
    depth_far: float = schema.DEPTH_FAR
    max_radiance: float = schema.MAX_RADIANCE
    input_format: str = INPUT_FORMAT

    # -- derived facts ------------------------------------------------------------------------
    @property
    def required_passes(self) -> list[str]:
        """Passes a frame must have for this model, in the order the model reads them."""
        if self.model_kind == "crn":
            return [self.class_source]
        return [*self.image_passes, *self.gbuffer_passes, self.class_source]

    @property
    def gbuffer_channels(self) -> list[str]:
        return schema.gbuffer_channel_names(self.gbuffer_passes)

    @property
    def input_names(self) -> tuple[str, ...]:
        """The graph's inputs: one per required pass, named by its schema key."""
        return tuple(self.required_passes)

    @property
    def stats(self) -> schema.GBufferStats:
        return schema.GBufferStats(tuple(self.gbuffer_mean), tuple(self.gbuffer_std))

    @property
    def is_trained(self) -> bool:
        return not self.trained_on.startswith("untrained")

    # -- (de)serialisation --------------------------------------------------------------------
    def to_props(self) -> dict[str, str]:
        self.validate()
        props = {PREFIX + k: json.dumps(v) for k, v in asdict(self).items()}
        # Written for people reading the file with other tools; ignored when loading.
        props[PREFIX + "required_passes"] = json.dumps(self.required_passes)
        props[PREFIX + "gbuffer_channels"] = json.dumps(self.gbuffer_channels)
        return props

    @classmethod
    def from_props(cls, props: Mapping[str, str], source: str = "model") -> "ModelMetadata":
        ours = {k[len(PREFIX):]: v for k, v in props.items() if k.startswith(PREFIX)}
        if not ours:
            raise ModelMetadataError(
                f"{source} has no Photoreal Enhance metadata (no '{PREFIX}*' entries). Export "
                f"models with `python -m training export` or neural_core.export, which embed it.")
        missing = [k for k in ("model_kind", "schema_version") if k not in ours]
        if missing:
            raise ModelMetadataError(f"{source} metadata lacks {', '.join(PREFIX + m for m in missing)}")
        if "input_format" not in ours:
            raise ModelMetadataError(
                f"{source} was exported by an earlier version whose graph takes preprocessed "
                f"tensors, not render passes. Export it again from its checkpoint with "
                f"`python -m training export` (the weights are unchanged).")
        if ours.get("model_kind") == '"rad"' and "image_passes" not in ours:
            raise ModelMetadataError(
                f"{source} is a RAD model exported before models recorded which radiance passes "
                f"they read (Cycles' denoised image, its Noisy Image), so the add-on cannot tell "
                f"whether it expects a denoised render. Export it again from its checkpoint with "
                f"`python -m training export` (the weights are unchanged).")
        known = set(cls.__dataclass_fields__)
        try:
            values = {k: json.loads(v) for k, v in ours.items() if k in known}
        except json.JSONDecodeError as exc:
            raise ModelMetadataError(f"{source} metadata is not valid JSON: {exc}") from None
        meta = cls(**values)
        meta.validate(source)
        return meta

    def validate(self, source: str = "model") -> None:
        """Check that this metadata fits the schema of this checkout; raise with the reason."""
        problems = []
        if self.schema_version != schema.SCHEMA_VERSION:
            problems.append(f"schema version {self.schema_version!r} (this add-on reads "
                            f"{schema.SCHEMA_VERSION!r})")
        if self.model_kind not in MODEL_KINDS:
            problems.append(f"model kind {self.model_kind!r} (expected one of {MODEL_KINDS})")
        if list(self.classes) != list(schema.CLASSES):
            problems.append(f"class list of {len(self.classes)} classes differs from the schema's "
                            f"{schema.NUM_CLASSES}")
        if self.model_kind == "rad" and (not self.image_passes or self.image_passes[0] != "image"
                                         or any(p not in schema.IMAGE_PASSES for p in self.image_passes)):
            problems.append(f"image passes {self.image_passes} (expected 'image' first, then any of "
                            f"{schema.IMAGE_PASSES[1:]})")
        unknown = [p for p in self.gbuffer_passes if p not in schema.GBUFFER_PASS_ORDER]
        if unknown:
            problems.append(f"unknown G-buffer passes {unknown}")
        n = schema.num_gbuffer_channels([p for p in self.gbuffer_passes if p in schema.PASSES])
        if len(self.gbuffer_mean) != n or len(self.gbuffer_std) != n:
            problems.append(f"normalisation for {len(self.gbuffer_mean)}/{len(self.gbuffer_std)} "
                            f"channels but the G-buffers have {n}")
        if self.class_source not in schema.CLASS_SOURCES:
            problems.append(f"class source {self.class_source!r}")
        if self.image_transform != schema.TRANSFORM_HDR or self.depth_far != schema.DEPTH_FAR \
                or self.max_radiance != schema.MAX_RADIANCE:
            problems.append("image/depth normalisation constants differ from the schema's")
        if self.input_format != INPUT_FORMAT:
            problems.append(f"graph input format {self.input_format!r} (this add-on feeds "
                            f"{INPUT_FORMAT!r})")
        if self.grid_multiple < 1:
            problems.append(f"grid multiple {self.grid_multiple}")
        if self.tile_overlap < 0:
            problems.append(f"tile overlap {self.tile_overlap}")
        if self.full_bounce_scale != 1.0 and (self.model_kind != "rad" or "bounces" not in self.gbuffer_passes
                                              or not 0.0 <= self.full_bounce_scale <= 10.0):
            problems.append(f"full-bounce residual scale {self.full_bounce_scale} (needs a RAD model "
                            f"with the bounces input, and a scale of 0 to 10)")
        if problems:
            raise ModelMetadataError(f"{source} does not match this schema: " + "; ".join(problems))


def read_onnx_metadata(path: str) -> ModelMetadata:
    """Read and validate metadata with onnxruntime only (no onnx/torch import)."""
    import onnxruntime as ort

    from .errors import CorruptFileError
    try:
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several private exception types
        raise CorruptFileError(f"cannot load ONNX model {path}: {exc}") from exc
    return ModelMetadata.from_props(session.get_modelmeta().custom_metadata_map, source=str(path))
