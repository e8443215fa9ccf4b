"""Paired RAD training: fast render -> reference render of the same frame.

Loss = l1_weight * |G(x) - y| (encoded domain) + vgg_weight * VGG-16 feature L1 (display domain)
     + no_worse_weight * mean over crops of max(0, |G(x) - y| - |x - y|) (each crop's mean L1):
the bundled model sits on top of Cycles' denoiser, and a user compares it with that input, so a
crop it makes worse costs extra (the mean L1 alone trades a few bad crops for many good ones).
With paired data neither patch matching nor a discriminator is needed (EPE's maintainers say
the same for paired renders).
"""
from __future__ import annotations

import torch

from ..data.sources import PairedScenes, SeveralCorpora
from ..losses.perceptual import VGGLoss
from .base import Trainer
from .netconfig import build


class PairedRADTrainer(Trainer):
    kind, mode = "rad", "paired"
    reads_several_corpora = True

    def build(self) -> None:
        if not isinstance(self.source, (PairedScenes, SeveralCorpora)):
            raise ValueError(f"paired training needs a ROOT with fast/ and reference/ exported datasets "
                             f"(got {self.source.describe()}); give --real PHOTOS for unpaired training")
        self.build_generator()
        if self.opts.vgg_weight:  # a pure L1 run needs no VGG (and has no VGG-weights caveat)
            taps = self.opts.vgg_taps
            self.vgg_loss = VGGLoss(self.make_vgg("vgg16"), taps, [1.0] * len(taps) if taps else None)

    def build_generator(self) -> None:
        self.net_config = self.network_config()
        generator = build(self.kind, self.net_config).to(self.device)
        self.models["generator"] = self.wrap(generator)
        self.optimizers["generator"] = torch.optim.Adam(
            generator.parameters(), self.opts.lr, betas=tuple(self.opts.betas),
            weight_decay=self.opts.weight_decay)

    def batches(self):
        for batch in self.loader(self.dataset(self.source)):
            yield self.to_device(batch)

    def enhance(self, batch: dict) -> torch.Tensor:
        return self.models["generator"](self.generator_image(batch), batch["gbuffers"],
                                        batch["classes"]).float()

    def losses(self, batch: dict) -> dict[str, torch.Tensor]:
        with self.autocast():
            out = self.enhance(batch)
            l1 = (out - batch["target"]).abs().mean()
            terms = {"loss": self.opts.l1_weight * l1, "l1": l1}
            if self.opts.no_worse_weight:
                terms["worse"] = worse_than_input(out, batch["image"], batch["target"])
                terms["loss"] = terms["loss"] + self.opts.no_worse_weight * terms["worse"]
            # A pure L1 run (e.g. PSNR-targeted training) skips the VGG forward/backward, which
            # costs more than the generator itself on a CPU.
            if self.opts.vgg_weight:
                terms["vgg"] = self.vgg_loss(out, batch["target"])
                terms["loss"] = terms["loss"] + self.opts.vgg_weight * terms["vgg"]
        return terms

    def train_step(self, batch: dict) -> dict[str, float]:
        terms = self.losses(batch)
        self.optimise("generator", terms["loss"])
        return {k: float(v.detach()) for k, v in terms.items()}


def worse_than_input(out: torch.Tensor, image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of how much each crop's L1 error exceeds the input image's (0 where
    the output is at least as close to the target)."""
    def per_crop(x):
        return (x.float() - target).abs().flatten(1).mean(1)
    return torch.relu(per_crop(out) - per_crop(image)).mean()
