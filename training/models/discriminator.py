"""EPE's perceptual projection discriminator: one head per frozen VGG-16 ReLU layer.

Each head turns one VGG feature map into a realism map; label projection adds
sum_c(embed(label) * features) per pixel, so the discriminator judges "is this a realistic
*road*" rather than "is this realistic". Unlike EPE, batches of any size work: labels are
embedded per sample and resized to each head's resolution with nearest-neighbour lookup.

The VGG is not part of this module (it is frozen and shared with the perceptual loss); the
trainer passes its features in.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

# relu1_1 .. relu4_3 of VGG-16, as in EPE.
EPE_TAPS = ["relu1_1", "relu1_2", "relu2_1", "relu2_2", "relu3_1", "relu3_2", "relu3_3",
            "relu4_1", "relu4_2", "relu4_3"]
TAP_CHANNELS = {1: 64, 2: 128, 3: 256, 4: 512, 5: 512}
# Stride-2 layers per head so that every head ends at about 1/16 of the image size.
TAP_STRIDES = {1: 4, 2: 3, 3: 2, 4: 1, 5: 0}


@dataclass
class DiscriminatorConfig:
    taps: list[str] = field(default_factory=lambda: list(EPE_TAPS))
    num_layers: int = 4
    max_dim: int = 256
    num_labels: int = 194   # label ids < num_labels; 194 covers MSeg's taxonomy and ours (20)
    groups: int = 8

    def to_dict(self) -> dict:
        return asdict(self)


def _block(tap: str) -> int:
    return int(tap[len("relu")])


class Head(nn.Module):
    def __init__(self, dim_in: int, num_strides: int, cfg: DiscriminatorConfig):
        super().__init__()
        layers, dim = [], dim_in
        for i in range(cfg.num_layers):
            out = min(cfg.max_dim, dim_in * 2 ** i)
            stride = 2 if i < num_strides else 1
            layers += [nn.Conv2d(dim, out, 3, stride, 1, bias=False, padding_mode="replicate"),
                       nn.GroupNorm(min(cfg.groups, out), out), nn.LeakyReLU(0.2)]
            dim = out
        self.body = nn.Sequential(*layers)
        self.out = nn.Sequential(nn.Conv2d(dim, dim, 3, 1, 1), nn.LeakyReLU(0.2), nn.Conv2d(dim, 1, 1))
        self.embed = nn.Embedding(cfg.num_labels, dim)
        nn.init.normal_(self.embed.weight, std=0.01)

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        feat = self.body(features)
        small = F.interpolate(labels[:, None].float(), size=feat.shape[-2:], mode="nearest")
        emb = self.embed(small[:, 0].long()).permute(0, 3, 1, 2)           # (B, dim, h, w)
        return self.out(feat) + (emb * feat).sum(dim=1, keepdim=True)


class PerceptualDiscriminator(nn.Module):
    def __init__(self, cfg: DiscriminatorConfig | None = None):
        super().__init__()
        self.cfg = cfg or DiscriminatorConfig()
        self.heads = nn.ModuleDict({
            tap: Head(TAP_CHANNELS[_block(tap)], TAP_STRIDES[_block(tap)], self.cfg)
            for tap in self.cfg.taps})

    @property
    def taps(self) -> list[str]:
        return list(self.cfg.taps)

    def forward(self, features: dict[str, torch.Tensor], labels: torch.Tensor) -> list[torch.Tensor]:
        if int(labels.max()) >= self.cfg.num_labels:
            raise ValueError(f"label id {int(labels.max())} >= the discriminator's {self.cfg.num_labels} "
                             f"label embeddings; raise --disc-labels")
        return [head(features[tap], labels) for tap, head in self.heads.items()]
