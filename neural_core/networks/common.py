"""Small pieces shared by the networks: convolutions, FLOP counting, export preparation."""
from __future__ import annotations

import copy
import dataclasses

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode


class JSONConfig:
    """from_dict/to_dict for the network config dataclasses, which travel as JSON in the ONNX
    metadata and in training checkpoints. Subclasses set `label` ("RAD", "CRN")."""

    label = "network"

    @classmethod
    def from_dict(cls, values: dict | None):
        values = dict(values or {})
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown {cls.label} config keys {sorted(unknown)}; known: "
                             f"{', '.join(cls.__dataclass_fields__)}")
        return cls(**values)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, bias: bool = True,
         padding_mode: str = "zeros") -> nn.Conv2d:
    """A 'same' convolution (odd kernel); stride 2 gives ceil(size / 2)."""
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=bias,
                     padding_mode=padding_mode)


def count_flops(model: nn.Module, height: int, width: int, *inputs: torch.Tensor) -> int:
    """FLOPs (2 x multiply-accumulates) of one forward pass at height x width, batch 1.

    Counted by torch's FlopCounterMode on a real pass, so functional convolutions and branches
    at reduced resolution count at their real size. Element-wise work (norms, activations,
    resampling) is not counted: it is memory-bound and small next to the convolutions.
    `inputs` default to the model's `example_inputs(1, height, width)`.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(*(inputs or model.example_inputs(1, height, width)))
    return int(counter.get_total_flops())


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def without_parametrizations(model: nn.Module) -> nn.Module:
    """A copy with parametrizations (spectral norm) folded into plain weights, for export.

    Spectral norm's power iteration is a training-time device; the exported graph should hold
    the weight it produces, not the iteration. The copy is rebuilt from the model's config with
    spectral norm off (torch's remove_parametrizations edits the generated class, which a
    deep copy shares with the original, so it cannot be used on a copy).
    """
    if not any(parametrize.is_parametrized(m) for m in model.modules()):
        return copy.deepcopy(model)
    state = {k: v for k, v in model.state_dict().items() if ".parametrizations." not in k}
    was_training = model.training
    model.eval()   # read the weights without a power-iteration step (which would update u, v)
    with torch.no_grad():
        for name, module in model.named_modules():
            if parametrize.is_parametrized(module):
                for tensor_name in module.parametrizations.keys():
                    state[f"{name}.{tensor_name}"] = getattr(module, tensor_name).detach().clone()
    plain = type(model)(dataclasses.replace(model.config, spectral_norm=False))
    model.train(was_training)
    plain.load_state_dict(state)
    return plain.train(was_training)


def upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of `x` to the height and width of `like`."""
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)
