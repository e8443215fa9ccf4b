"""Small pieces shared by the networks: convolutions, FLOP counting, export preparation."""
from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn.utils import parametrize


def conv(c_in: int, c_out: int, kernel: int = 3, stride: int = 1, bias: bool = True,
         padding_mode: str = "zeros", groups: int = 1) -> nn.Conv2d:
    """A 'same' convolution (odd kernel); stride 2 gives ceil(size / 2)."""
    return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=bias,
                     padding_mode=padding_mode, groups=groups)


def count_flops(model: nn.Module, height: int, width: int, *inputs: torch.Tensor) -> int:
    """FLOPs (2 x multiply-accumulates) of every Conv2d in one forward pass at height x width.

    Counted with forward hooks on a real pass, so branches at reduced resolution count at their
    real size. Element-wise work (norms, activations, resampling) is not counted: it is memory-
    bound and small next to the convolutions. `inputs` default to the model's `example_inputs`.
    """
    total = 0

    def hook(module: nn.Conv2d, _inputs, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        macs_per_output = kh * kw * module.in_channels // module.groups
        total += 2 * macs_per_output * output.numel()

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(*(inputs or model.example_inputs(1, height, width)))
    finally:
        for h in handles:
            h.remove()
    return total


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
