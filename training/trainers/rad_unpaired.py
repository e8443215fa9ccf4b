"""Unpaired (adversarial) RAD training, after EPE.

Generator: gan_weight * LSGAN(D(VGG(G(x)))) + lpips_weight * LPIPS-style(G(x), x).
Discriminator: perceptual projection heads on frozen VGG-16 features (replicate padding, as in
EPE) with label projection; LSGAN + r1_weight * gradient penalty on reals.
Batches: matched crop pairs sampled by weight (`--matches`, from `python -m training match`),
or independent random crops of both datasets. G and D are both updated on every batch
(EPE alternated batches between them).

Multi-GPU: the generator is wrapped in DDP; the discriminator's gradients are averaged by hand
because its gradient penalty needs double backward, which DDP does not support.
"""
from __future__ import annotations

import torch

from ..data.sources import ExportedScenes, PairedScenes
from ..losses import gan
from ..losses.perceptual import LPIPSLoss
from ..matching import MatchedCrops, collate_pairs
from ..models.discriminator import EPE_TAPS, DiscriminatorConfig, PerceptualDiscriminator
from .base import log
from .rad_paired import PairedRADTrainer


class UnpairedRADTrainer(PairedRADTrainer):
    kind, mode = "rad", "unpaired"

    def build(self) -> None:
        if not self.opts.real:
            raise ValueError("unpaired training needs --real: photos (folder, Cityscapes root or EPE list)")
        self.real_source = self.open_data(self.opts.real)
        if isinstance(self.source, PairedScenes):
            # A fast/reference root: adversarial training only uses the fast renders.
            self.source = ExportedScenes(self.source.root, self.opts.gbuffer_passes)
        self.build_generator()
        vgg = self.make_vgg("vgg16", padding="replicate")
        self.vgg = vgg
        self.lpips = LPIPSLoss(vgg, self.opts.vgg_taps)
        cfg = DiscriminatorConfig(taps=list(self.opts.disc_taps or EPE_TAPS), num_layers=self.opts.disc_layers,
                                  max_dim=self.opts.disc_dim, num_labels=self.opts.disc_labels)
        # Label projection only helps when both sides have labels in the same taxonomy; with
        # unlabelled photos it would let D tell real from fake by the labels alone.
        self.use_labels = self.real_source.has_labels
        if not self.use_labels:
            log.warning("%s has no label maps: the discriminator runs without label projection "
                        "(use Cityscapes or an EPE list with labels for class-aware realism)",
                        self.real_source.root)
        discriminator = PerceptualDiscriminator(cfg).to(self.device)
        self.models["discriminator"] = discriminator
        self.optimizers["discriminator"] = torch.optim.Adam(
            discriminator.parameters(), self.opts.disc_lr, betas=tuple(self.opts.betas),
            weight_decay=self.opts.weight_decay)

    def describe_data(self) -> str:
        return f"{self.source.describe()}; real: {self.real_source.describe()}"

    def batches(self):
        synthetic, real = self.dataset(self.source), self.dataset(self.real_source)
        if self.opts.matches:
            pairs = MatchedCrops(self.opts.matches, synthetic, real, self.opts.crop_weights or None)
            for batch in self.loader(pairs, weights=pairs.weights, collate_fn=collate_pairs):
                yield {k: self.to_device(v) for k, v in batch.items()}
            return
        for syn, rea in zip(self.loader(synthetic, stream=0), self.loader(real, stream=1)):
            yield {"synthetic": self.to_device(syn), "real": self.to_device(rea)}

    def labels(self, part: dict) -> torch.Tensor:
        return part["labels"] if self.use_labels else torch.zeros_like(part["labels"])

    def train_step(self, batch: dict) -> dict[str, float]:
        syn, real = batch["synthetic"], batch["real"]
        generator = self.models["generator"]
        disc = self.models["discriminator"]
        taps = disc.taps

        # Discriminator step.
        disc.requires_grad_(True)
        with torch.no_grad(), self.autocast():
            fake = self.enhance(syn)
        real_image = real["image"].detach().requires_grad_(self.opts.r1_weight > 0)
        with self.autocast():
            d_fake = [d.float() for d in disc(self.vgg(fake, taps), self.labels(syn))]
        # The real branch stays in fp32: the gradient penalty differentiates it twice.
        d_real = disc(self.vgg(real_image, taps), self.labels(real))
        d_loss = gan.ls_discriminator_loss(d_real, d_fake)
        penalty = (gan.real_gradient_penalty(gan.ls_real_term(d_real), real_image)
                   if self.opts.r1_weight > 0 else torch.zeros((), device=self.device))
        self.optimise("discriminator", d_loss + self.opts.r1_weight * penalty, average_manually=True)

        # Generator step: D is frozen, gradients flow through it and VGG into the image.
        disc.requires_grad_(False)
        with self.autocast():
            out = self.enhance(syn)
            realism = [d.float() for d in disc(self.vgg(out, taps), self.labels(syn))]
            g_gan = gan.ls_generator_loss(realism)
            g_lpips = self.lpips(out, syn["image"])
        g_loss = self.opts.gan_weight * g_gan + self.opts.lpips_weight * g_lpips
        self.optimise("generator", g_loss)
        disc.requires_grad_(True)
        return {"g_loss": float(g_loss.detach()), "g_gan": float(g_gan.detach()),
                "lpips": float(g_lpips.detach()), "d_loss": float(d_loss.detach()),
                "r1": float(penalty.detach()),
                "d_real": float(torch.stack([d.mean() for d in d_real]).mean().detach()),
                "d_fake": float(torch.stack([d.mean() for d in d_fake]).mean().detach())}
