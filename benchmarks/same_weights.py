"""A PyTorch network holding the weights of an exported ONNX model, for eager-vs-ORT timing.

The network is rebuilt from the `config` in the model's metadata. Most ONNX initializers keep
their PyTorch names; the exporter renames some (BatchNorm folded into the convolution before
it, layer-norm affines turned into Mul/Add constants, identical constants merged). Those are
found by exporting the freshly built network the same way with distinctive values (every
BatchNorm with random running means and unit variance) and pairing the two graphs node by node:
in that reference export a folded convolution's weight equals the PyTorch weight and its bias
equals minus the running mean, so each renamed constant points at one PyTorch tensor.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
        elif node.op_type == "Identity" and node.input[0] in values:   # merged duplicates
            values[node.output[0]] = values[node.input[0]]
    return values


def _computing_nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    return [n for n in graph.node if n.op_type not in ("Constant", "Identity")]


def _paired_constants(reference: onnx.GraphProto, model: onnx.GraphProto) -> dict[str, np.ndarray]:
    """reference constant name -> the model's value in the same node slot."""
    ref_values, values = _constants(reference), _constants(model)
    ref_nodes, nodes = _computing_nodes(reference), _computing_nodes(model)
    if [n.op_type for n in ref_nodes] != [n.op_type for n in nodes]:
        raise ValueError("the model's graph differs from a fresh export of its config "
                         "(exported with another torch version?)")
    paired = {}
    for ref_node, node in zip(ref_nodes, nodes):
        for ref_name, name in zip(ref_node.input, node.input):
            if ref_name in ref_values and name in values:
                paired[ref_name] = values[name]
    return paired


def _distinctive_values(module: torch.nn.Module) -> None:
    """Every tensor random and positive; BatchNorm at unit variance: a folded BatchNorm then
    leaves the weight as it was and makes the bias -running_mean, so each constant of the
    reference export shows which tensor it came from."""
    generator = torch.Generator().manual_seed(1)
    for p in module.parameters():
        p.copy_(torch.rand(p.shape, generator=generator) + 0.5)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats:
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=generator) + 0.5)
            m.running_var.fill_(1.0 - m.eps)
            if m.affine:
                m.weight.data.fill_(1.0), m.bias.data.zero_()


def torch_from_onnx(path: str | Path) -> torch.nn.Module:
    """The exported module (FromPasses around the network, eval) with the ONNX file's weights."""
    from neural_core.export import export_onnx, exportable
    from neural_core.metadata import ModelMetadata
    from neural_core.networks import build_network

    model = onnx.load(str(path))
    metadata = ModelMetadata.from_props({p.key: p.value for p in model.metadata_props}, source=str(path))
    network = build_network(metadata.model_kind, json.loads(json.dumps(metadata.config))).eval()
    with torch.no_grad():
        _distinctive_values(network)
    module = exportable(network, metadata).eval()
    with tempfile.TemporaryDirectory(prefix="same_weights_") as tmp:
        reference = onnx.load(str(export_onnx(network, metadata, Path(tmp) / "reference.onnx")))
    paired = _paired_constants(reference.graph, model.graph)
    ref_values = _constants(reference.graph)
    state = module.state_dict()
    loaded = set()
    with torch.no_grad():
        for ref_name, value in paired.items():
            target = _target(ref_name, ref_values[ref_name], state)
            if target is None:
                continue
            key, sign = target
            state[key].copy_(torch.from_numpy(sign * value.astype(np.float32)).reshape(state[key].shape))
            loaded.add(key)
        for key, tensor in state.items():   # a folded BatchNorm whose bias was zero had none
            if key.endswith("running_mean") and key not in loaded:
                tensor.zero_()
                loaded.add(key)
    missing = [k for k, v in state.items() if k not in loaded and v.is_floating_point()
               and not k.endswith("running_var")]
    if missing:
        raise ValueError(f"{path}: no ONNX constant found for {missing}")
    return module


def _target(ref_name: str, ref_value: np.ndarray, state: dict) -> tuple[str, float] | None:
    """(state key, sign) of the PyTorch tensor a reference constant holds, or None (shapes, axes)."""
    if ref_name in state:
        return ref_name, 1.0
    flat = ref_value.ravel()
    if flat.size < 2 or not np.issubdtype(flat.dtype, np.floating):
        return None
    for key, tensor in state.items():
        if tensor.numel() != flat.size or not tensor.is_floating_point():
            continue
        values = tensor.detach().numpy().ravel()
        for sign in (1.0, -1.0):
            if np.allclose(values, sign * flat, rtol=1e-5, atol=1e-7):
                return key, sign
    return None
