"""The G-buffer encoder of the RAD network: class-specific streams merged by the class masks,
then one embedding per branch level, which the network's RAD modules read."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from .. import schema
from .rad_norm import ResidualConv, _Convs

if TYPE_CHECKING:
    from .rad import RADConfig


class GBufferEncoder(nn.Module):
    """Class-specific streams merged by the class masks, then one embedding per branch level.

    Stream g is relu(W1_g * gbuffers) (S hidden channels) followed by W2_g (S -> E); the merge
    is sum_g mask_g * stream_g. All first layers run as one convolution Cg -> G*S; the hidden
    units of each pixel are multiplied by its class-group mask (expanded to G*S channels by a
    fixed 0/1 1x1 conv), and one dense convolution G*S -> E then applies every W2_g and sums
    over the groups. Two GEMMs for all streams, any batch size. The G*S hidden channels are the
    encoder's cost (memory traffic), hence the small config's few groups and narrow streams.

    The streams run at level `stream_level` (G-buffers and class masks area-averaged to
    1/2^level, i.e. soft masks); level 0 is full resolution as in EPE. The joint encoder then
    makes one embedding per branch from that level down, stride 2 per level.
    """

    def __init__(self, cfg: RADConfig, convs: _Convs):
        super().__init__()
        groups, dim, k = cfg.groups, cfg.gbuffer_dim, cfg.stream_kernel
        hidden = len(groups) * cfg.stream_dim
        membership = torch.zeros(len(groups), schema.NUM_CLASSES)
        for g, names in enumerate(groups):
            for name in names:
                membership[g, schema.class_id(name)] = 1.0
        self.register_buffer("membership", membership[:, :, None, None], persistent=False)
        self.num_groups = len(groups)
        self.stream_level = cfg.stream_level
        # Without G-buffers (the ablation baseline) the streams see a constant plane, so the
        # modulation depends on the class masks alone (SPADE-like semantic conditioning).
        self.uses_gbuffers = cfg.num_gbuffer_channels > 0
        self.stream_in = convs.gbuffer(max(cfg.num_gbuffer_channels, 1), hidden, kernel=k)
        self.stream_out = convs.gbuffer(hidden, dim, kernel=k)
        self.levels = nn.ModuleList()
        for level in range(cfg.stream_level, cfg.num_branches):
            layers: list[nn.Module] = []
            if level > cfg.stream_level:
                layers += [convs.gbuffer(dim, dim, stride=2), nn.ReLU()]
            layers += [ResidualConv(dim, convs) for _ in range(cfg.joint_layers)]
            self.levels.append(nn.Sequential(*layers))

    def forward(self, gbuffers: torch.Tensor, classes: torch.Tensor) -> list[torch.Tensor | None]:
        """-> embeddings per branch level; None for levels finer than `stream_level`."""
        if not self.uses_gbuffers:
            gbuffers = torch.ones_like(classes[:, :1])
        for _ in range(self.stream_level):
            # ceil_mode keeps the size of a stride-2 conv's output: ceil(size / 2).
            gbuffers = F.avg_pool2d(gbuffers, 2, ceil_mode=True)
            classes = F.avg_pool2d(classes, 2, ceil_mode=True)
        masks = F.conv2d(classes, self.membership)                 # (B, G, H, W)
        # Each group's S hidden channels times that group's mask, broadcast in 5-D: the G*S
        # channel mask is never materialised (at full resolution it was the encoder's main cost).
        hidden = F.relu(self.stream_in(gbuffers))
        hidden = (hidden.unflatten(1, (self.num_groups, -1)) * masks.unsqueeze(2)).flatten(1, 2)
        g = F.relu(self.stream_out(hidden))
        embeddings: list[torch.Tensor | None] = [None] * self.stream_level
        for level in self.levels:
            g = level(g)
            embeddings.append(g)
        return embeddings
