"""The RAD enhancement network, after EPE (Richter et al., "Enhancing Photorealism Enhancement").

An HRNet whose residual blocks are modulated by rendering-aware denormalisation (RAD): every
normalisation is a parameter-free norm followed by a per-pixel scale and shift predicted from an
embedding of the G-buffers at that branch's resolution. The output is a residual on the input
image, in the log1p domain of `schema.encode_radiance`.

Differences from EPE's code, each on purpose:
- The G-buffer channel count comes from the schema (`gbuffer_passes`), not a hard-wired 32.
- Normalisation is BatchNorm with running statistics (or none), never GroupNorm, so inference
  has no per-image statistics and tiled inference matches whole-frame inference.
- All class streams run as two GEMMs merged by the class masks, for any batch size (EPE
  crashes for batch > 1); the small config groups similar classes into one stream.
- gamma's 1x1 convolution starts with bias 1, so a fresh RAD is close to the identity.
- The small config's output is kernel-predicting: the input filtered by per-pixel 5x5 kernels
  at 3 scales, plus the residual. Trained on few scenes, this denoises far better than the
  residual alone (the ablation is in neural_core/models/rad.md). The paper config keeps
  EPE's residual output.
- For CPU speed the small config keeps full-resolution work to a minimum: the full-resolution
  branch has no blocks (so it receives no fusion: the decoder merges the coarse branches into
  it), the class streams run at 1/2 resolution, and 1x1 decoder convs run their coarse half
  before upsampling.

The pieces: rad_norm.py (the RAD modulation and its norms), rad_gbuffer.py (the G-buffer
encoder), rad_kernel.py (the kernel-predicting output); this file holds the config, the HRNet
blocks and the network that joins them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .. import schema
from ..errors import SizeMismatchError
from ..metadata import DEFAULT_TILE_OVERLAP
from .common import JSONConfig, upsample_to
from .rad_gbuffer import GBufferEncoder
from .rad_kernel import KernelHead, MultiScaleKernelHead
from .rad_norm import RAD, ResidualConv, RunningNorm, _Convs

__all__ = ["RADConfig", "RADNet", "RAD", "RunningNorm", "ResidualConv", "GBufferEncoder",
           "KernelHead", "MultiScaleKernelHead", "BasicBlock", "Branch", "Fusion", "Context"]

NORMS = ("batch", "none")

# Default grouping for the small config: classes whose surfaces render alike share a stream.
SMALL_CLASS_GROUPS = (
    ("road", "sidewalk", "terrain"),
    ("building", "wall", "fence", "pole", "traffic light", "traffic sign"),
    ("vegetation",),
    ("sky",),
    ("person", "rider"),
    ("car", "truck", "bus", "train", "motorcycle", "bicycle"),
    ("void",),
)


@dataclass
class RADConfig(JSONConfig):
    """Width and depth of a RAD network. JSON-serialisable with `dataclasses.asdict`."""

    label = "RAD"

    # Radiance passes the network reads (schema.IMAGE_PASSES), encoded and stacked; the output
    # corrects the first. ("image", "noisy"): Cycles' denoised Combined plus its Noisy Image.
    image_passes: tuple[str, ...] = ("image",)
    gbuffer_passes: tuple[str, ...] = schema.DEFAULT_GBUFFER_PASSES
    # Classes merged into one G-buffer stream; None = one stream per class (as in EPE).
    # Every schema class must appear in exactly one group.
    class_groups: tuple[tuple[str, ...], ...] | None = SMALL_CLASS_GROUPS
    num_branches: int = 3             # HRNet branches; branch j runs at 1/2^j resolution
    base_channels: int = 16           # branch j has base_channels * 2^j channels
    blocks_per_branch: tuple[int, ...] = (0, 1, 1)  # BasicBlocks per branch in each stage
    stem_layers: int = 1              # full-resolution 3x3 convolutions before the branches
    gbuffer_dim: int = 16             # width of the G-buffer embedding (EPE: 128)
    stream_dim: int = 8               # hidden width of each class stream (EPE: 64)
    stream_kernel: int = 1            # kernel of the per-class streams (EPE: 3)
    stream_level: int = 1             # streams run at 1/2^level; finer branches get no RAD blocks
    joint_layers: int = 0             # residual conv layers per joint-encoder level (EPE: 2)
    rad_layers: int = 1               # residual conv layers inside each RAD (EPE: 3)
    decoder_kernel: int = 1           # decoder convs after upsample + concat (EPE: 3)
    norm: str = "batch"               # param-free norm inside RAD: "batch" (running stats) or "none"
    padding_mode: str = "zeros"       # "zeros" (fused into the conv on export) or "replicate" (EPE)
    spectral_norm: bool = False       # on G-buffer encoder and RAD convs (EPE); folded for export
    # Output head. 0: the output is the input plus a predicted residual (EPE). k > 0 (odd): the
    # input is first filtered with a k x k kernel predicted per pixel (softmax weights, as in
    # kernel-predicting denoisers, Bako et al. 2017), then the residual is added. A convex
    # combination of input pixels cannot invent noise or shift colours, so the network learns
    # denoising from few scenes; the residual keeps it free to change the look.
    output_kernel: int = 5
    # With output_kernel: filter at this many scales (full, 1/2, 1/4 ...), each with kernels from
    # the decoder features of that level, and blend coarse into fine per pixel (Vogels et al.
    # 2018). Coarse scales reach low-frequency noise that a k x k kernel cannot.
    kernel_scales: int = 3
    # With output_kernel: the kernel logits of each scale also see that scale's G-buffers through
    # a 1x1 conv, as in kernel-predicting denoisers, so albedo, normal and depth edges steer the
    # filter at full resolution. Off by default: measured no gain (31.16 vs 31.18 dB, rad.md).
    kernel_guide: bool = False
    # A RAD on the full-resolution decoder features before the output head, fed by the
    # full-resolution G-buffer embedding (needs stream_level 0): edges of geometry and
    # materials then reach the output pixel by pixel.
    output_rad: bool = False
    # The residual's last conv starts at zero, so a fresh network returns its input exactly: a
    # model on top of Cycles' denoiser starts as "the denoised render" and only learns changes.
    zero_residual: bool = False
    # Context for light that comes from further away than the branches see (indirect light in
    # a room): k > 0 average-pools the coarsest branch by k, runs two 3x3 convs there and adds
    # the result back before decoding. Its last conv starts at zero, so it can be added to a
    # trained network without changing its output (`added_modules`). Cheap: 1/(4k)^2 of the pixels.
    context_pool: int = 0
    context_layers: int = 2           # 3x3 convs at the pooled resolution

    def __post_init__(self) -> None:
        # Values read back from JSON arrive as lists; keep the dataclass hashable-ish and tidy.
        self.gbuffer_passes = tuple(self.gbuffer_passes)
        self.image_passes = tuple(self.image_passes)
        if isinstance(self.blocks_per_branch, int):
            self.blocks_per_branch = (self.blocks_per_branch,) * self.num_branches
        self.blocks_per_branch = tuple(int(b) for b in self.blocks_per_branch)
        if self.class_groups is not None:
            self.class_groups = tuple(tuple(group) for group in self.class_groups)
        self.validate()

    # -- named configs --------------------------------------------------------------------------
    @classmethod
    def small(cls, **overrides) -> "RADConfig":
        """The default: a 1080p frame in a few seconds on a laptop CPU (~120 GFLOP of convs).

        Full-resolution work is kept to the stem, the fusion sums, the output convs and the
        kernel filtering; the
        G-buffer streams and all RAD blocks run at 1/2 and 1/4 resolution, where the convs are
        wide enough (32, 64 channels) for efficient GEMMs.
        """
        return cls(**overrides)

    @classmethod
    def denoised(cls, **overrides) -> "RADConfig":
        """The default model: a correction on top of Cycles' denoiser. It reads the denoised
        Combined and the Noisy Image, returns the denoised image plus a residual that starts at
        zero, and has no kernel filter (the denoiser already filtered; texture it kept stays)."""
        values = dict(image_passes=("image", "noisy"), output_kernel=0, kernel_scales=1,
                      zero_residual=True)
        values.update(overrides)
        return cls(**values)

    @classmethod
    def paper(cls, **overrides) -> "RADConfig":
        """Close to EPE's 'hr' generator: 4 branches 16/32/64/128, 4 BasicBlocks, 128-wide
        embedding, 3 RAD layers, one 3x3 stream per class, spectral norm, replicate padding."""
        values = dict(num_branches=4, base_channels=16, blocks_per_branch=(4, 4, 4, 4),
                      stem_layers=2, gbuffer_dim=128, stream_dim=64, stream_kernel=3, joint_layers=2,
                      decoder_kernel=3,
                      rad_layers=3, class_groups=None, stream_level=0, padding_mode="replicate",
                      spectral_norm=True, output_kernel=0, kernel_scales=1)
        values.update(overrides)
        return cls(**values)

    # -- derived ---------------------------------------------------------------------------------
    @property
    def num_gbuffer_channels(self) -> int:
        return schema.num_gbuffer_channels(self.gbuffer_passes)

    @property
    def groups(self) -> tuple[tuple[str, ...], ...]:
        if self.class_groups is None:
            return tuple((name,) for name in schema.CLASSES)
        return self.class_groups

    def branch_channels(self, j: int) -> int:
        return self.base_channels * 2 ** j

    @property
    def tile_overlap(self) -> int:
        """Px that tiles must overlap for tiled output to match the whole frame (< 1/255). The
        context module reads a pooled cell either way per conv and upsamples bilinearly: 4 cells
        with 2 convs, and half of an overlap is cross-fade. Context pooling 8 (cells of 32 px): 256 px
        gave 0.41/255 at most on a real frame in 512 px tiles, 128 px gave 9.9/255."""
        cell = self.alignment * self.context_pool
        return max(DEFAULT_TILE_OVERLAP, 2 * (self.context_layers + 2) * cell)

    @property
    def alignment(self) -> int:
        """Tile offsets that are multiples of this keep the stride-2 grids of the branches."""
        return 2 ** (self.num_branches - 1)

    def validate(self) -> None:
        problems = []
        for key in self.gbuffer_passes:
            if key not in schema.GBUFFER_PASS_ORDER:
                problems.append(f"unknown G-buffer pass {key!r} (known: {schema.GBUFFER_PASS_ORDER})")
        if not self.image_passes or self.image_passes[0] != "image" or \
                any(p not in schema.IMAGE_PASSES for p in self.image_passes):
            problems.append(f"image_passes must start with 'image' and name passes of "
                            f"{schema.IMAGE_PASSES}, not {self.image_passes}")
        if self.num_branches < 1:
            problems.append("num_branches must be >= 1")
        if len(self.blocks_per_branch) != self.num_branches:
            problems.append(f"blocks_per_branch has {len(self.blocks_per_branch)} entries for "
                            f"{self.num_branches} branches")
        if self.norm not in NORMS:
            problems.append(f"norm must be one of {NORMS}, not {self.norm!r}")
        if not 0 <= self.stream_level < max(self.num_branches, 1):
            problems.append("stream_level must name a branch (0 .. num_branches - 1)")
        elif any(self.blocks_per_branch[:self.stream_level]):
            problems.append(f"branches finer than stream_level {self.stream_level} have no G-buffer "
                            f"embedding, so they must have 0 blocks")
        if self.output_kernel < 0 or (self.output_kernel and self.output_kernel % 2 != 1):
            problems.append("output_kernel must be 0 (residual output) or an odd kernel size")
        if not 1 <= self.kernel_scales <= self.num_branches:
            problems.append("kernel_scales must be 1 .. num_branches (one decoder level per scale)")
        if self.output_rad and self.stream_level != 0:
            problems.append("output_rad needs the full-resolution G-buffer embedding (stream_level 0)")
        if self.context_layers < 1:
            problems.append("context_layers must be at least 1")
        if self.context_pool < 0 or (self.context_pool and self.alignment * self.context_pool > 32):
            problems.append("context_pool must be 0 (off) or keep the pooled grid within the 32 px "
                            "grid the exported graph pads to")
        if self.stream_kernel % 2 != 1 or self.decoder_kernel % 2 != 1:
            problems.append("stream_kernel and decoder_kernel must be odd")
        if self.class_groups is not None:
            listed = [name for group in self.class_groups for name in group]
            unknown = sorted(set(listed) - set(schema.CLASSES))
            missing = [name for name in schema.CLASSES if name not in listed]
            repeated = sorted({name for name in listed if listed.count(name) > 1})
            if unknown or missing or repeated:
                problems.append(f"class_groups must list every class once (unknown {unknown}, "
                                f"missing {missing}, repeated {repeated})")
        if problems:
            raise ValueError("invalid RAD config: " + "; ".join(problems))


# ---------------------------------------------------------------------------------------------
# HRNet blocks (the RAD modulation: rad_norm; G-buffer encoder: rad_gbuffer; kernel output: rad_kernel)
# ---------------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """x -> conv -> RAD -> relu -> conv -> RAD -> + x -> relu (EPE 'hr')."""

    def __init__(self, channels: int, cfg: RADConfig, convs: _Convs):
        super().__init__()
        self.conv1 = convs.plain(channels, channels, bias=False)
        self.rad1 = RAD(channels, cfg, convs)
        self.conv2 = convs.plain(channels, channels, bias=False)
        self.rad2 = RAD(channels, cfg, convs)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.rad1(self.conv1(x), g))
        y = self.rad2(self.conv2(y), g)
        return F.relu(x + y)


class Branch(nn.Module):
    def __init__(self, channels: int, num_blocks: int, cfg: RADConfig, convs: _Convs):
        super().__init__()
        self.blocks = nn.ModuleList(BasicBlock(channels, cfg, convs) for _ in range(num_blocks))

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, g)
        return x


def _decode(conv_layer: nn.Conv2d, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
    """conv(cat(upsample(coarse), skip)).

    For a 1x1 conv the coarse part of the conv runs before upsampling, at the low resolution
    (the same result: a 1x1 conv and bilinear upsampling commute), so no wide tensor is
    upsampled or concatenated at the fine resolution.
    """
    if conv_layer.kernel_size != (1, 1):
        return conv_layer(torch.cat([upsample_to(coarse, skip), skip], dim=1))
    c = coarse.shape[1]
    weight = conv_layer.weight
    return (upsample_to(F.conv2d(coarse, weight[:, :c]), skip)
            + F.conv2d(skip, weight[:, c:], conv_layer.bias))


class Fusion(nn.Module):
    """HRNet exchange unit: every branch receives the sum of all branches at its resolution.

    Higher to lower resolution: a chain of stride-2 3x3 convs. Lower to higher: a 1x1 conv at
    the low resolution, then bilinear upsampling (cheap: the conv runs on few pixels).
    A branch without blocks (the small config's full-resolution one) receives nothing: it would
    only pass the sum on, and the decoder merges the coarse branches into it anyway. That saves
    full-resolution resizes and sums, the costliest memory traffic of the network.
    """

    def __init__(self, num_branches: int, cfg: RADConfig, convs: _Convs):
        super().__init__()
        self.paths = nn.ModuleList()
        for i in range(num_branches):
            receives = cfg.blocks_per_branch[i] > 0
            self.paths.append(nn.ModuleList(
                self._path(j, i, cfg, convs) for j in range(num_branches) if receives))

    @staticmethod
    def _path(j: int, i: int, cfg: RADConfig, convs: _Convs) -> nn.Module:
        c_j, c_i = cfg.branch_channels(j), cfg.branch_channels(i)
        if j == i:
            return nn.Identity()
        if j > i:
            return convs.plain(c_j, c_i, kernel=1)
        steps = []
        for step in range(i - j):
            last = step == i - j - 1
            steps.append(convs.plain(c_j, c_i if last else c_j, stride=2))
            if not last:
                steps.append(nn.ReLU())
        return nn.Sequential(*steps)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        fused = []
        for i, row in enumerate(self.paths):
            total = xs[i]
            if len(row) == 0:
                fused.append(total)
                continue
            for j in range(i):
                total = total + row[j](xs[j])
            # Coarser inputs are summed from the coarsest up, one upsampling per level, so the
            # finest branch gets one full-resolution resize instead of one per coarser branch
            # (1x1 convs and bilinear upsampling commute).
            coarse = None
            for j in reversed(range(i + 1, len(xs))):
                y = row[j](xs[j])
                coarse = y if coarse is None else upsample_to(coarse, y) + y
            if coarse is not None:
                total = total + upsample_to(coarse, xs[i])
            fused.append(F.relu(total))
        return fused


class Context(nn.Module):
    """x + upsample(zero-started 1x1((relu(3x3))^layers(avgpool_k(x)))): what lies up to
    ~(layers + 1) k pixels of the coarsest branch away (indirect light) reaches each pixel."""

    def __init__(self, channels: int, pool: int, layers: int, convs: _Convs):
        super().__init__()
        self.pool = pool
        self.convs = nn.Sequential(*[module for _ in range(layers)
                                     for module in (convs.plain(channels, channels), nn.ReLU())])
        self.out = convs.plain(channels, channels, kernel=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.avg_pool2d(x, self.pool, ceil_mode=True)
        return x + upsample_to(self.out(self.convs(pooled)), x)


# ---------------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------------

class RADNet(nn.Module):
    """forward(image (B,3·len(image_passes),H,W) encoded, gbuffers (B,Cg,H,W), classes (B,NUM_CLASSES,H,W) one-hot)
    -> enhanced image (B,3,H,W) in the encoded (log1p) domain. Any H, W >= 1."""

    kind = "rad"

    @property
    def added_modules(self) -> tuple[str, ...]:
        """Modules that start as the identity, so a trained network without them can start
        them from scratch (training's --init-from)."""
        return ("context.",) if self.context is not None else ()

    def __init__(self, config: RADConfig | None = None):
        super().__init__()
        cfg = self.config = config or RADConfig.small()
        self.image_channels = 3 * len(cfg.image_passes)
        convs = _Convs(cfg)
        channels = [cfg.branch_channels(j) for j in range(cfg.num_branches)]
        stem: list[nn.Module] = []
        for layer in range(cfg.stem_layers):
            stem += [convs.plain(self.image_channels if layer == 0 else channels[0], channels[0]), nn.ReLU()]
        self.stem = nn.Sequential(*stem)
        self.gbuffer_encoder = GBufferEncoder(cfg, convs)
        # Stage s runs blocks on branches 0..s, fuses them, then opens branch s+1.
        self.stages = nn.ModuleList()
        self.fusions = nn.ModuleList()
        self.transitions = nn.ModuleList()
        for s in range(cfg.num_branches):
            self.stages.append(nn.ModuleList(
                Branch(channels[j], cfg.blocks_per_branch[j], cfg, convs) for j in range(s + 1)))
            self.fusions.append(Fusion(s + 1, cfg, convs) if s > 0 else nn.Identity())
            if s + 1 < cfg.num_branches:
                self.transitions.append(nn.Sequential(
                    convs.plain(channels[s], channels[s + 1], stride=2), nn.ReLU()))
        self.context = (Context(channels[-1], cfg.context_pool, cfg.context_layers, convs)
                        if cfg.context_pool else None)
        # Decoder: from the lowest-resolution branch up, upsample + concat + conv.
        self.decoder = nn.ModuleList(
            convs.plain(channels[j + 1] + channels[j], channels[j], kernel=cfg.decoder_kernel)
            for j in reversed(range(cfg.num_branches - 1)))
        self.to_rgb = convs.plain(channels[0], 3)
        if cfg.zero_residual:
            nn.init.zeros_(self.to_rgb.weight)
            nn.init.zeros_(self.to_rgb.bias)
        self.output_rad = RAD(channels[0], cfg, convs, explicit_norm=True) if cfg.output_rad else None
        guide = cfg.num_gbuffer_channels if cfg.kernel_guide else 0
        self.to_kernel = (MultiScaleKernelHead(channels, cfg.output_kernel, cfg.kernel_scales, convs, guide)
                          if cfg.output_kernel else None)

    def forward(self, image: torch.Tensor, gbuffers: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        self._check_inputs(image, gbuffers, classes)
        embeddings = self.gbuffer_encoder(gbuffers, classes)
        xs = [self.stem(image)]
        for s, stage in enumerate(self.stages):
            xs = [branch(x, embeddings[j]) for j, (branch, x) in enumerate(zip(stage, xs))]
            if s > 0:
                xs = self.fusions[s](xs)
            if s < len(self.transitions):
                xs.append(self.transitions[s](xs[-1]))
        y = xs[-1] if self.context is None else self.context(xs[-1])
        decoded = [y]                      # decoder features, coarsest level first
        for conv_layer, skip in zip(self.decoder, reversed(xs[:-1])):
            y = F.leaky_relu(_decode(conv_layer, y, skip), 0.2)
            decoded.insert(0, y)
        if self.output_rad is not None:
            y = decoded[0] = F.leaky_relu(self.output_rad(y, embeddings[0]), 0.2)
        corrected = image[:, :3]           # the first image pass; the others only inform
        base = corrected if self.to_kernel is None else self.to_kernel(decoded, corrected, gbuffers)
        return base + self.to_rgb(y)

    def _check_inputs(self, image, gbuffers, classes) -> None:
        expected = {"image": (image, self.image_channels), "gbuffers": (gbuffers, self.config.num_gbuffer_channels),
                    "classes": (classes, schema.NUM_CLASSES)}
        for name, (tensor, channels) in expected.items():
            if tensor.dim() != 4 or tensor.shape[1] != channels:
                raise SizeMismatchError(
                    f"RAD input {name!r} has shape {tuple(tensor.shape)}, expected (B, {channels}, H, W)"
                    + (f" for G-buffer passes {', '.join(self.config.gbuffer_passes)}"
                       if name == "gbuffers" else ""))
        if not (image.shape[-2:] == gbuffers.shape[-2:] == classes.shape[-2:]):
            raise SizeMismatchError(f"RAD inputs differ in size: image {tuple(image.shape[-2:])}, "
                                    f"gbuffers {tuple(gbuffers.shape[-2:])}, classes {tuple(classes.shape[-2:])}")

    def example_inputs(self, batch: int = 1, height: int = 64, width: int = 64,
                       seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Plausible random inputs: encoded image, standardised G-buffers, a blocky class map."""
        gen = torch.Generator().manual_seed(seed)
        image = torch.log1p(torch.rand(batch, self.image_channels, height, width, generator=gen) * 2.0)
        gbuffers = torch.randn(batch, self.config.num_gbuffer_channels, height, width, generator=gen)
        coarse = torch.randint(0, schema.NUM_CLASSES, (batch, 1, (height + 7) // 8, (width + 7) // 8),
                               generator=gen)
        ids = F.interpolate(coarse.float(), scale_factor=8, mode="nearest")[..., :height, :width].long()
        classes = F.one_hot(ids[:, 0], schema.NUM_CLASSES).permute(0, 3, 1, 2).float()
        return image, gbuffers, classes
