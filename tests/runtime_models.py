"""Test helpers for the runtime and CLI tests: small real ONNX models and synthetic frames.

Models are the real networks (narrow configs) exported by neural_core.export with embedded
metadata; frames hold plausible values for every pass a model needs. torch is used here (tests),
never by the runtime itself.
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
    passes = passes or ["image", "noisy", *schema.DEFAULT_GBUFFER_PASSES, "object_index"]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    smooth = 0.5 + 0.5 * np.sin(xx / 23.0)[..., None] * np.cos(yy / 17.0)[..., None]
    frame: schema.Frame = {}
    for key in passes:
        n = schema.pass_spec(key).num_channels
        noise = rng.random((height, width, n), dtype=np.float32)
        if key in ("image", "noisy", "emission"):
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


# Small but real: H1's RAD and CRN, narrowed so that tests stay fast. RAD keeps three branches
# (down to 1/4 resolution), so tile alignment and bilinear upsampling are exercised.
TINY_CONFIGS = {
    "rad": {"base_channels": 4, "gbuffer_dim": 4},
    "crn": {"num_modules": 3, "widths": [8, 8, 8], "width_multiplier": 1.0, "num_images": 2},
}
TEST_STATS_MEAN, TEST_STATS_STD = 0.1, 0.9   # not the identity, so standardisation is exercised


def build(kind: str, seed: int = 0, **config):
    import torch
    from neural_core.networks import build_network

    torch.set_num_threads(1)  # tiny networks: a second thread only adds waiting on a busy machine
    torch.manual_seed(seed)
    return build_network(kind, {**TINY_CONFIGS[kind], **config}).eval()


def metadata_for(model, **overrides) -> ModelMetadata:
    from neural_core.export import metadata_for as export_metadata

    n = schema.num_gbuffer_channels(model.config.gbuffer_passes) if model.kind == "rad" else 0
    stats = schema.GBufferStats((TEST_STATS_MEAN,) * n, (TEST_STATS_STD,) * n)
    meta = export_metadata(model.kind, model.config, stats=stats)
    for key, value in overrides.items():
        setattr(meta, key, value)
    return meta


def export_model(model, path: Path, metadata: ModelMetadata | None = None) -> Path:
    from neural_core.export import export_onnx

    return export_onnx(model, metadata or metadata_for(model), path)


def with_metadata(source: Path, path: Path, props: dict | None = None, strip: bool = False) -> Path:
    """A copy of an exported model whose metadata entries are overwritten by `props`, or all
    stripped: models the runtime must refuse, without exporting again."""
    import onnx

    proto = onnx.load(str(source))
    entries = {} if strip else {e.key: e.value for e in proto.metadata_props}
    entries.update(props or {})
    del proto.metadata_props[:]
    for key, value in entries.items():
        proto.metadata_props.add(key=key, value=value)
    onnx.save(proto, str(path))
    return path


def torch_reference(model, frame: schema.Frame, metadata: ModelMetadata) -> np.ndarray:
    """The frame through the PyTorch network on the schema's numpy tensors (edge-padded to the
    grid multiple, cropped after) -> linear (H, W, 3): what the exported graph, which does all
    of this inside, must reproduce."""
    import torch
    from neural_core.networks.common import without_parametrizations

    network = without_parametrizations(model).eval()
    height, width = schema.frame_size({k: frame[k] for k in metadata.required_passes})
    m = metadata.grid_multiple
    pad = ((0, 0), (0, -height % m), (0, -width % m))
    classes = schema.one_hot(np.pad(schema.class_map_from_frame(frame, metadata.class_source),
                                    pad[1:], mode="edge"))
    if model.kind == "crn":
        tensors = [classes]
    else:
        images = np.concatenate([schema.image_tensor({"image": frame[k]}) for k in metadata.image_passes])
        tensors = [np.pad(images, pad, mode="edge"),
                   np.pad(schema.gbuffer_tensor(frame, metadata.gbuffer_passes, metadata.stats), pad,
                          mode="edge"), classes]
    with torch.inference_mode():
        out = network(*(torch.from_numpy(t)[None] for t in tensors))[0].numpy()
    if model.kind == "crn":
        out = out[0]
    return schema.decode_radiance(out[:, :height, :width]).transpose(1, 2, 0)
