"""Small pieces shared by the networks: convolutions, FLOP counting, export preparation."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.utils.flop_counter import FlopCounterMode


def conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, bias: bool = True,
         padding_mode: str = "zeros", groups: int = 1) -> nn.Conv2d:
    """A 'same' convolution (odd kernel); stride 2 gives ceil(size / 2)."""
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=bias,
                     padding_mode=padding_mode, groups=groups)


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
    the weight it produces, not the iteration.
    """
    model = copy.deepcopy(model)
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    return model
