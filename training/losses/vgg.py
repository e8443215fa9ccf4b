"""VGG-16/19 feature extractors in plain torch (there is no torchvision here).

The layer list reproduces torchvision's `features` Sequential index for index, so a
torchvision state dict (`features.N.weight`, `features.N.bias`) loads unchanged:

    --vgg-weights PATH                       an explicit file, or
    $TORCH_HOME/hub/checkpoints/vgg16-397923af.pth / vgg19-dcbb9e9d.pth   (torch hub cache)

Pretrained weights cannot be downloaded on every machine. When none are found the network
falls back to FIXED RANDOM FEATURES: Kaiming-normal convolutions drawn from a fixed seed
(FALLBACK_SEED), so every run and every process sees the same features. Random conv features
still measure local structure and colour statistics (they are a usable, if weaker, perceptual
metric), but they are not ImageNet features: `VGG.description` says so and the trainers print
it at start-up and write it into the run's log and tensorboard.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from neural_core import schema

log = logging.getLogger(__name__)

# "M" is a 2x2 pooling layer; numbers are 3x3 conv widths (each followed by a ReLU).
CONFIGS = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}
HUB_FILES = {"vgg16": "vgg16-397923af.pth", "vgg19": "vgg19-dcbb9e9d.pth"}
FALLBACK_SEED = 20170901
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: str) -> list[str]:
    """Names of the `features` entries in torchvision order: conv1_1, relu1_1, ..., pool5."""
    names, block, conv = [], 1, 1
    for item in CONFIGS[arch]:
        if item == "M":
            names.append(f"pool{block}")
            block, conv = block + 1, 1
        else:
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
            conv += 1
    return names


def hub_path(arch: str) -> Path:
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints" / HUB_FILES[arch]


def find_weights(arch: str, explicit: str | os.PathLike | None = None) -> Path | None:
    """The state dict to load: the explicit path (must exist), else the hub cache, else None."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"--vgg-weights {path} does not exist; give a torchvision "
                                    f"{arch} state dict ({HUB_FILES[arch]})")
        return path
    path = hub_path(arch)
    return path if path.is_file() else None


def srgb_oetf(linear: torch.Tensor) -> torch.Tensor:
    """Linear [0, 1] -> sRGB-encoded [0, 1]; the clamp keeps pow's gradient finite at 0."""
    curve = 1.055 * torch.clamp(linear, min=0.0031308).pow(1 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, 12.92 * linear, curve)


def clamp_straight_through(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Clamped values, but gradients as if unclamped: an output that starts below 0 (a fresh
    network's often do) still learns from the loss instead of sitting in a zero-gradient zone."""
    return x + (x.clamp(low, high) - x).detach()


def display_from_encoded(encoded: torch.Tensor) -> torch.Tensor:
    """Network domain (log1p linear HDR) -> display sRGB in [0, 1], as a PNG of it would look."""
    top = float(torch.log1p(torch.tensor(schema.MAX_RADIANCE)))
    linear = torch.expm1(clamp_straight_through(encoded, 0.0, top))
    return srgb_oetf(clamp_straight_through(linear, 0.0, 1.0))


class VGG(nn.Module):
    """Frozen VGG feature extractor returning the activations named in `taps`.

    pooling='avg' gives CRN's variant, padding='replicate' EPE's; neither changes the state
    dict. Input: encoded images (B, 3, H, W); they are shown to VGG as display sRGB with
    ImageNet normalisation, which is what torchvision's weights expect.
    """

    def __init__(self, arch: str = "vgg16", weights: str | os.PathLike | None = None,
                 pooling: str = "max", padding: str = "zeros", last_layer: str | None = None):
        super().__init__()
        if arch not in CONFIGS:
            raise ValueError(f"arch must be one of {sorted(CONFIGS)}, not {arch!r}")
        self.arch = arch
        self.names = layer_names(arch)
        self.features = _make_features(arch, pooling, padding)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        path = find_weights(arch, weights)
        self.pretrained = path is not None
        if path is not None:
            self._load(path)
            self.description = f"{arch}: ImageNet weights loaded from {path}"
        else:
            _init_fixed_random(self.features)
            self.description = (
                f"WARNING: no pretrained {arch} weights (looked for --vgg-weights and {hub_path(arch)}). "
                f"Using the documented fallback: FIXED RANDOM {arch} features (Kaiming init, seed "
                f"{FALLBACK_SEED}). Perceptual losses and metrics are NOT ImageNet-VGG based. Put "
                f"torchvision's {HUB_FILES[arch]} there, or pass --vgg-weights, for real ones.")
        if last_layer is not None:
            self.truncate(last_layer)
        self.requires_grad_(False)
        self.eval()

    def truncate(self, last_layer: str) -> None:
        """Drop the layers after `last_layer` (saves compute when only shallow taps are used)."""
        keep = self.names.index(last_layer) + 1
        self.features = self.features[:keep]
        self.names = self.names[:keep]

    def train(self, mode: bool = True):
        return super().train(False)  # frozen: never leave eval mode

    def _load(self, path: Path) -> None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        ours = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        expected = self.features.state_dict()
        missing = sorted(set(expected) - set(ours), key=lambda k: int(k.split(".")[0]))
        if missing:
            raise ValueError(f"{path} is not a torchvision {self.arch} state dict: it lacks "
                             f"features.{missing[0]} (and {len(missing) - 1} more)")
        for key, tensor in expected.items():
            if ours[key].shape != tensor.shape:
                raise ValueError(f"{path}: features.{key} has shape {tuple(ours[key].shape)}, "
                                 f"{self.arch} needs {tuple(tensor.shape)}; is it a different VGG?")
        self.features.load_state_dict({k: ours[k] for k in expected})

    def normalise(self, encoded: torch.Tensor) -> torch.Tensor:
        return (display_from_encoded(encoded) - self.mean) / self.std

    def forward(self, encoded: torch.Tensor, taps: list[str]) -> dict[str, torch.Tensor]:
        unknown = [t for t in taps if t not in self.names]
        if unknown:
            raise ValueError(f"unknown VGG layer(s) {unknown}; known: {self.names}")
        return self.run(self.normalise(encoded), taps)

    def run(self, x: torch.Tensor, taps: list[str]) -> dict[str, torch.Tensor]:
        """Features of an already normalised input."""
        wanted, out = set(taps), {}
        last = max(self.names.index(t) for t in taps)
        for index, layer in enumerate(self.features[:last + 1]):
            x = layer(x)
            if self.names[index] in wanted:
                out[self.names[index]] = x
        return out


def _make_features(arch: str, pooling: str, padding: str) -> nn.Sequential:
    layers, channels = [], 3
    for item in CONFIGS[arch]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2) if pooling == "max" else nn.AvgPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item, 3, padding=1, padding_mode=padding), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers)


def _init_fixed_random(features: nn.Sequential) -> None:
    generator = torch.Generator().manual_seed(FALLBACK_SEED)
    for layer in features:
        if isinstance(layer, nn.Conv2d):
            fan_in = layer.in_channels * 9
            with torch.no_grad():
                layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
                layer.bias.zero_()
