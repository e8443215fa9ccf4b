"""Cascaded Refinement Network (Chen & Koltun, "Photographic Image Synthesis with Cascaded
Refinement Networks", ICCV 2017): class map -> image, as a baseline for RAD.

A cascade of refinement modules, the first at `base_size` (4 x 8 at the training resolution),
each doubling the resolution. Module i sees the label map area-downsampled to its size (soft
labels, by 2x2 average pooling) concatenated after the bilinearly upsampled features of module
i-1 (align_corners=True, as the TensorFlow original). Each module is 2 x (3x3 conv without
bias -> layer norm over C, H, W -> LeakyReLU 0.2). A 1x1 convolution with bias and no activation
projects to k images, in the encoded (log1p) domain of `schema.encode_radiance` rather than the
original's 0..255.

Layer norm uses per-image statistics, so CRN must run on the whole frame, not tiles.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import schema
from ..errors import SizeMismatchError
from .common import JSONConfig, conv

LEAKY_SLOPE = 0.2


@dataclass
class CRNConfig(JSONConfig):
    """Width and depth of a CRN. JSON-serialisable with `dataclasses.asdict`."""

    label = "CRN"

    num_modules: int = 6
    base_size: tuple[int, int] = (4, 8)       # first module's (H, W) at the training resolution
    widths: tuple[int, ...] = (256, 256, 192, 128, 64, 32)   # per module, before the multiplier
    width_multiplier: float = 0.5
    num_images: int = 3                       # k images for the diversity loss; export keeps the first

    def __post_init__(self) -> None:
        self.base_size = tuple(int(v) for v in self.base_size)
        self.widths = tuple(int(w) for w in self.widths)
        self.validate()

    @classmethod
    def small(cls, **overrides) -> "CRNConfig":
        """Default: trains on a CPU at 128 x 256, about 1 M parameters (4 MB as ONNX)."""
        return cls(**overrides)

    @classmethod
    def paper(cls, **overrides) -> "CRNConfig":
        """The 256p model of the paper: 7 modules 4x8 .. 256x512, widths 1024 x5, 512 x2, k = 9."""
        values = dict(num_modules=7, widths=(1024,) * 5 + (512, 512), width_multiplier=1.0,
                      num_images=9)
        values.update(overrides)
        return cls(**values)

    @property
    def module_widths(self) -> tuple[int, ...]:
        return tuple(max(1, round(w * self.width_multiplier)) for w in self.widths)

    @property
    def size_multiple(self) -> int:
        """Output H and W must be multiples of this: the first module's size there is (H, W) / it."""
        return 2 ** (self.num_modules - 1)

    @property
    def training_size(self) -> tuple[int, int]:
        return (self.base_size[0] * self.size_multiple, self.base_size[1] * self.size_multiple)

    def validate(self) -> None:
        problems = []
        if self.num_modules < 1:
            problems.append("num_modules must be >= 1")
        if len(self.widths) != self.num_modules:
            problems.append(f"widths has {len(self.widths)} entries for {self.num_modules} modules")
        if self.num_images < 1:
            problems.append("num_images must be >= 1")
        if self.width_multiplier <= 0:
            problems.append("width_multiplier must be > 0")
        if problems:
            raise ValueError("invalid CRN config: " + "; ".join(problems))


class RefinementModule(nn.Module):
    """2 x (3x3 conv, no bias -> layer norm over C,H,W -> LeakyReLU 0.2)."""

    def __init__(self, c_in: int, width: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(2):
            # GroupNorm with one group = layer norm over (C, H, W) per sample, with a
            # per-channel affine, as tf.contrib.layers.layer_norm in the original.
            layers += [conv(c_in if i == 0 else width, width, bias=False), nn.GroupNorm(1, width),
                       nn.LeakyReLU(LEAKY_SLOPE)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)

    def forward_parts(self, parts: list[torch.Tensor]) -> torch.Tensor:
        """forward(torch.cat(parts, 1)) written for ONNX Runtime (see CRN.forward_for_onnx)."""
        conv0, norm0, act, conv1, norm1 = self.layers[:5]
        # conv(cat(a, b), W) = conv(a, W_a) + conv(b, W_b): no concatenated copy at full resolution,
        # and each part keeps a channel count ORT's blocked (NCHWc) convolution takes directly.
        # The weight is split in the graph (torch does not fold Split), so the file still holds
        # the one PyTorch weight; ORT folds the split when it loads the model.
        weights = torch.split(conv0.weight, [int(p.shape[1]) for p in parts], dim=1)
        x = sum(F.conv2d(p, w, padding=conv0.padding) for p, w in zip(parts, weights))
        x = act(_layer_norm(x, norm0))
        return act(_layer_norm(conv1(x), norm1))


def _mean_chw(x: torch.Tensor) -> torch.Tensor:
    """x.mean over (C, H, W), one axis at a time: equal in exact arithmetic, and no float32 sum
    runs over more than one axis' length. onnxruntime's single running sum over millions of
    values drifts (CRN at 1080p was off by 0.8 % on average against a float64 reference;
    PyTorch's own mean by 2e-6)."""
    return x.mean(dim=3, keepdim=True).mean(dim=2, keepdim=True).mean(dim=1, keepdim=True)


def _layer_norm(x: torch.Tensor, norm: nn.GroupNorm) -> torch.Tensor:
    """norm(x) for a one-group GroupNorm, as ops ORT runs multi-threaded and in few passes.

    GroupNorm(1) exports as Reshape -> InstanceNormalization over one 'channel' -> Reshape -> Mul
    -> Add, and ORT's InstanceNormalization runs one channel on one thread. Here the statistics
    are two ReduceMeans (of x and x * x) and the affine one Mul and one Add with per-channel
    factors that already hold the statistics.
    """
    mean = _mean_chw(x)
    var = _mean_chw(x * x) - mean * mean
    # (B, 1) x (C,) -> (B, C): the parameters enter the graph as they are (a reshaped
    # parameter becomes a folded constant, which the exporter may mis-order when it merges
    # identical ones).
    scale = torch.rsqrt(var + norm.eps).flatten(1) * norm.weight
    shift = norm.bias - mean.flatten(1) * scale
    return x * scale[..., None, None] + shift[..., None, None]


class CRN(nn.Module):
    """forward(classes (B, NUM_CLASSES, H, W) one-hot or soft) -> (B, k, 3, H, W) encoded images.

    H and W must be multiples of `config.size_multiple`.
    """

    kind = "crn"

    def __init__(self, config: CRNConfig | None = None):
        super().__init__()
        cfg = self.config = config or CRNConfig.small()
        widths = cfg.module_widths
        self.refinements = nn.ModuleList(
            RefinementModule((widths[i - 1] if i else 0) + schema.NUM_CLASSES, widths[i])
            for i in range(cfg.num_modules))
        self.to_rgb = conv(widths[-1], 3 * cfg.num_images, kernel=1)

    @property
    def size_multiple(self) -> int:
        return self.config.size_multiple

    def forward(self, classes: torch.Tensor) -> torch.Tensor:
        # While exporting, the graph is the ONNX form; eager and training keep concat + GroupNorm.
        return self._forward(classes, onnx_form=torch.onnx.is_in_onnx_export())

    def forward_for_onnx(self, classes: torch.Tensor) -> torch.Tensor:
        """forward(classes), the same function, written as a graph ONNX Runtime runs fast."""
        return self._forward(classes, onnx_form=True)

    def _forward(self, classes: torch.Tensor, onnx_form: bool) -> torch.Tensor:
        self._check_input(classes)
        pyramid = [classes]
        for _ in range(self.config.num_modules - 1):
            pyramid.append(F.avg_pool2d(pyramid[-1], 2))   # area downsampling: soft labels
        features = None
        for module, labels in zip(self.refinements, reversed(pyramid)):
            parts = [labels]
            if features is not None:
                parts.insert(0, F.interpolate(features, size=labels.shape[-2:], mode="bilinear",
                                              align_corners=True))
            features = module.forward_parts(parts) if onnx_form else module(torch.cat(parts, dim=1))
        return self.to_rgb(features).unflatten(1, (self.config.num_images, 3))

    def _check_input(self, classes: torch.Tensor) -> None:
        if classes.dim() != 4 or classes.shape[1] != schema.NUM_CLASSES:
            raise SizeMismatchError(f"CRN input has shape {tuple(classes.shape)}, expected "
                                    f"(B, {schema.NUM_CLASSES}, H, W) one-hot classes")
        h, w = int(classes.shape[-2]), int(classes.shape[-1])
        m = self.size_multiple
        if h % m or w % m:
            raise SizeMismatchError(
                f"CRN with {self.config.num_modules} modules needs H and W that are multiples of "
                f"{m}, got {h} x {w}; pad the class map (the exported ONNX model does this itself)")

    def example_inputs(self, batch: int = 1, height: int | None = None, width: int | None = None,
                       seed: int = 0) -> tuple[torch.Tensor]:
        """A blocky random one-hot class map (at the training size unless given)."""
        height = height or self.config.training_size[0]
        width = width or self.config.training_size[1]
        gen = torch.Generator().manual_seed(seed)
        coarse = torch.randint(0, schema.NUM_CLASSES, (batch, 1, (height + 7) // 8, (width + 7) // 8),
                               generator=gen)
        ids = F.interpolate(coarse.float(), scale_factor=8, mode="nearest")[..., :height, :width].long()
        return (F.one_hot(ids[:, 0], schema.NUM_CLASSES).permute(0, 3, 1, 2).float(),)
