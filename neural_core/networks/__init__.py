"""PyTorch networks: RAD (after EPE) and CRN. Used by training and export only; the add-on's
runtime path never imports this package (it needs torch)."""
from __future__ import annotations

from torch import nn

from .common import count_flops, count_params
from .crn import CRN, CRNConfig
from .rad import RADConfig, RADNet

NETWORKS = {"rad": (RADNet, RADConfig), "crn": (CRN, CRNConfig)}


def config_for(kind: str, config: dict | None = None):
    """The config dataclass of a network kind from a dict (None = the small default)."""
    if kind not in NETWORKS:
        raise ValueError(f"unknown network kind {kind!r}; choose one of {', '.join(NETWORKS)}")
    return NETWORKS[kind][1].from_dict(config)


def build_network(kind: str, config: dict | None = None) -> nn.Module:
    """A freshly initialised network of `kind` ('rad' or 'crn') from a config dict.

    The dict is what `dataclasses.asdict(config)` gave (and what ONNX metadata stores); missing
    keys take the small config's defaults.
    """
    config_object = config_for(kind, config)
    return NETWORKS[kind][0](config_object)


__all__ = ["build_network", "config_for", "count_flops", "count_params", "CRN", "CRNConfig",
           "RADConfig", "RADNet", "NETWORKS"]
