"""Rendering-aware denormalisation (RAD), the modulation at the heart of the RAD network.

Every normalisation of the network is a parameter-free norm followed by a per-pixel scale and
shift predicted from an embedding of the G-buffers (EPE, Richter et al.). Normalisation is
BatchNorm with running statistics (or none), never GroupNorm, so inference has no per-image
statistics and tiled inference matches whole-frame inference. Also the conv factory that every
RAD module is built with.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from .common import conv

if TYPE_CHECKING:
    from .rad import RADConfig


class _Convs:
    """Conv factory bound to a config: padding mode and optional spectral norm."""

    def __init__(self, cfg: RADConfig):
        self.cfg = cfg

    def plain(self, c_in, c_out, kernel=3, stride=1, bias=True) -> nn.Conv2d:
        return conv(c_in, c_out, kernel, stride, bias, self.cfg.padding_mode)

    def gbuffer(self, c_in, c_out, kernel=3, stride=1) -> nn.Module:
        """Convs of the G-buffer path, spectrally normalised in the paper config."""
        layer = conv(c_in, c_out, kernel, stride, True, self.cfg.padding_mode)
        return spectral_norm(layer) if self.cfg.spectral_norm else layer


class ResidualConv(nn.Module):
    """relu(x + relu(conv3x3(x))): the residual layers of EPE's G-buffer path."""

    def __init__(self, dim: int, convs: _Convs):
        super().__init__()
        self.conv = convs.gbuffer(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + F.relu(self.conv(x)))


class RunningNorm(nn.BatchNorm2d):
    """BatchNorm without affine terms whose inference is written out as x * scale + shift.

    The same numbers (and state-dict keys) as BatchNorm2d; the explicit form exports for inputs
    whose channel count the ONNX tracer cannot see (the output RAD after the 1x1 decoder's split
    convolution). Elsewhere the RADs keep BatchNorm2d, which onnxruntime folds into the
    preceding convolution and benchmarks/same_weights maps back to PyTorch.
    """

    def __init__(self, channels: int):
        super().__init__(channels, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            return super().forward(x)
        scale = torch.rsqrt(self.running_var + self.eps)
        return x * scale[:, None, None] - (self.running_mean * scale)[:, None, None]


class RAD(nn.Module):
    """Rendering-aware denormalisation: norm(x) * gamma(g') + beta(g'), g' = layers(g)."""

    def __init__(self, channels: int, cfg: RADConfig, convs: _Convs, explicit_norm: bool = False):
        super().__init__()
        # Running statistics only: no per-image statistics at inference, so tiles agree.
        norm = RunningNorm(channels) if explicit_norm else nn.BatchNorm2d(channels, affine=False)
        self.norm = norm if cfg.norm == "batch" else nn.Identity()
        self.layers = nn.Sequential(*(ResidualConv(cfg.gbuffer_dim, convs) for _ in range(cfg.rad_layers)))
        # Two 1x1 convs rather than one split in two: a Split breaks onnxruntime's blocked
        # (NCHWc) layout and costs two reorders per RAD.
        self.gamma = convs.plain(cfg.gbuffer_dim, channels, kernel=1)
        self.beta = convs.plain(cfg.gbuffer_dim, channels, kernel=1)
        with torch.no_grad():
            self.gamma.bias.fill_(1.0)   # gamma starts near 1: a fresh RAD is nearly the norm alone
            self.gamma.weight.mul_(0.1)
            self.beta.bias.zero_()
            self.beta.weight.mul_(0.1)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        g = self.layers(g)
        gamma, beta = self.gamma(g), self.beta(g)
        return self.norm(x) * gamma + beta
