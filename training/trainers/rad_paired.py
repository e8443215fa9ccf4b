"""Paired RAD training: fast render -> reference render of the same frame.

Loss = l1_weight * |G(x) - y| (encoded domain) + vgg_weight * VGG-16 feature L1 (display domain).
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
            if self.opts.vgg_weight == 0:
                # A pure L1 run (e.g. PSNR-targeted training) skips the VGG forward/backward,
                # which costs more than the generator itself on a CPU.
                return {"loss": self.opts.l1_weight * l1, "l1": l1}
            vgg = self.vgg_loss(out, batch["target"])
        return {"loss": self.opts.l1_weight * l1 + self.opts.vgg_weight * vgg, "l1": l1, "vgg": vgg}

    def train_step(self, batch: dict) -> dict[str, float]:
        terms = self.losses(batch)
        self.optimise("generator", terms["loss"])
        return {k: float(v.detach()) for k, v in terms.items()}
