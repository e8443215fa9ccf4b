"""CRN's loss: VGG-19 feature matching per class, with k output images and a per-class minimum.

    l_l[u, c] = mean_{h,w}( mask_c(h,w) * mean_channels |phi_l(real) - phi_l(fake_u)| )
    (phi_pixels = the encoded image itself, phi_l = VGG-19 activations of its display version)
    content[u, c] = sum_l lambda_l * l_l[u, c]                    (l = pixels, conv1_2 .. conv5_2)
    loss = 0.999 * sum_c min_u content[u, c] + 0.001 * sum_c mean_u content[u, c]

Masks are the one-hot class maps area-resized to each layer (soft at coarse layers), normalised
by the whole image area as in the original code. The paper's lambda_l were measured for
MatConvNet's VGG on 0..255 images and do not transfer: `measure_layer_means` measures
mean(l_l) over warm-up batches, and lambda_l = 1 / mean(l_l) (the paper's rule, recomputed for
this VGG). The run stores them, so a resumed run uses the same weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .vgg import VGG

# CRN's layers (post-ReLU conv1_2 ... conv5_2); the loss also compares the pixels themselves.
CRN_TAPS = ["relu1_2", "relu2_2", "relu3_2", "relu4_2", "relu5_2"]


class CRNLoss(nn.Module):
    def __init__(self, vgg: VGG, taps: list[str] | None = None, min_weight: float = 0.999):
        super().__init__()
        self.vgg = vgg
        self.taps = list(taps or CRN_TAPS)
        self.layers = ["pixels", *self.taps]
        self.min_weight = min_weight
        self.register_buffer("layer_weights", torch.ones(len(self.layers)))

    def set_layer_weights(self, means: list[float]) -> None:
        self.layer_weights.copy_(1.0 / torch.tensor(means, dtype=torch.float32).clamp_min(1e-12))

    def per_layer(self, fake: torch.Tensor, real: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """(B, k, 3, H, W) outputs, (B, 3, H, W) target, (B, C, H, W) one-hot -> (L, B, k, C)."""
        b, k = fake.shape[:2]
        images = torch.cat([real, fake.flatten(0, 1)])
        # The pixel term compares encoded (log1p HDR) values: unlike the display image it keeps
        # highlights above 1 and has no clamped, gradient-free range.
        features = {"pixels": images}
        features.update(self.vgg(images, self.taps))
        terms = []
        for layer in self.layers:
            feat = features[layer]
            real_f, fake_f = feat[:b], feat[b:].unflatten(0, (b, k))
            diff = (fake_f - real_f.detach().unsqueeze(1)).abs().mean(dim=2)          # (B, k, h, w)
            mask = F.adaptive_avg_pool2d(classes, diff.shape[-2:])                    # area resize
            terms.append(torch.einsum("bkhw,bchw->bkc", diff, mask) / diff[0, 0].numel())
        return torch.stack(terms)

    def forward(self, fake: torch.Tensor, real: torch.Tensor, classes: torch.Tensor):
        """Returns (loss, per-layer unweighted means for logging)."""
        layers = self.per_layer(fake, real, classes)                     # (L, B, k, C)
        content = (self.layer_weights.view(-1, 1, 1, 1) * layers).sum(0)  # (B, k, C)
        per_class = self.min_weight * content.min(dim=1).values + (1 - self.min_weight) * content.mean(dim=1)
        loss = per_class.sum(dim=1).mean()
        return loss, layers.sum(-1).mean(dim=(1, 2)).detach()


@torch.no_grad()
def measure_layer_means(loss: CRNLoss, generator: nn.Module, batches) -> list[float]:
    """mean over warm-up batches of each layer's class-summed loss (k images averaged)."""
    total, count = None, 0
    for batch in batches:
        fake = generator(batch["classes"])
        per = loss.per_layer(fake, batch["target"], batch["classes"]).sum(-1).mean(dim=(1, 2))
        total = per if total is None else total + per
        count += 1
    if not count:
        raise ValueError("no warm-up batches to measure CRN's layer weights on")
    return (total / count).tolist()
