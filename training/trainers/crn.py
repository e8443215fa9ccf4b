"""CRN training: class map -> k images, VGG-19 feature matching with a per-class minimum.

Before the first step the per-layer weights lambda_l = 1 / mean(l_l) are measured over
`lambda_warmup` batches with the freshly initialised network (CRN's normalisation rule,
recomputed for this VGG), written to RUN/crn_layer_weights.json and kept in every checkpoint.
The target is the dataset's image: the photo (Cityscapes, photo folders, EPE lists) or the
reference render (exported scenes; for a fast/reference root, the reference renders).
"""
from __future__ import annotations

import json

import torch

from .. import distributed
from ..data import stats as stats_mod
from ..data.loader import CropDataset
from ..data.sources import ExportedScenes, PairedScenes, open_source
from ..losses.crn import CRN_TAPS, CRNLoss, measure_layer_means
from .base import Trainer, log
from .netconfig import build

WARMUP_STREAM = 7   # warm-up batches come from their own sampler stream, not the training one


class CRNTrainer(Trainer):
    kind, mode = "crn", "label-to-image"

    def open_data(self, spec: str):
        # CRN sees class maps only: no G-buffers; of a fast/reference root, the reference renders.
        source = open_source(spec, [], self.opts.split, self.opts.gt_labels)
        if isinstance(source, PairedScenes):
            source = ExportedScenes(source.reference.root, gbuffer_passes=[])
        source.gbuffer_channels, source.gbuffer_passes = [], []
        log.info("data: %s", source.describe())
        self.state_add_skipped(len(source.skipped), source.skipped)
        return source

    def build(self) -> None:
        self.net_config = self.network_config()
        generator = build("crn", self.net_config).to(self.device)
        self.size_multiple = generator.size_multiple
        self.train_size = self._train_size(generator)
        self.models["generator"] = self.wrap(generator)
        self.optimizers["generator"] = torch.optim.Adam(
            generator.parameters(), self.opts.lr, betas=tuple(self.opts.betas),
            weight_decay=self.opts.weight_decay)
        taps = self.opts.vgg_taps or CRN_TAPS
        self.crn_loss = CRNLoss(self.make_vgg("vgg19", pooling="avg", last_layer=taps[-1]), taps,
                                min_weight=self.opts.diversity_min_weight).to(self.device)

    def _train_size(self, generator) -> tuple[int, int] | None:
        size = self.opts.size or list(generator.config.training_size)
        if not any(size):
            return None
        if len(size) != 2 or size[0] % self.size_multiple or size[1] % self.size_multiple:
            raise ValueError(f"--size {size} must be two numbers, multiples of {self.size_multiple}")
        if self.opts.crop and self.opts.crop % self.size_multiple:
            raise ValueError(f"--crop {self.opts.crop} must be a multiple of {self.size_multiple}")
        return tuple(size)

    def crn_dataset(self) -> CropDataset:
        return CropDataset(self.source, self.opts.crop or None, None, multiple=self.size_multiple,
                           resize=self.train_size)

    def batches(self):
        if "layer_means" not in self.state:
            self.measure_lambdas()
        for batch in self.loader(self.crn_dataset()):
            yield self.to_device(batch)

    def measure_lambdas(self) -> None:
        warmup = self.loader(self.crn_dataset(), stream=WARMUP_STREAM)
        batches = (self.to_device(b) for _, b in zip(range(self.opts.lambda_warmup), warmup))
        generator = self.models["generator"]
        with self.autocast():
            means = torch.tensor(measure_layer_means(self.crn_loss, generator, self._targets(batches)),
                                 device=self.device)
        if self.dist.enabled:
            torch.distributed.all_reduce(means)
            means /= self.dist.world
        self.state["layer_means"] = means.tolist()
        self.crn_loss.set_layer_weights(self.state["layer_means"])
        info = {"layers": self.crn_loss.layers, "mean_loss": self.state["layer_means"],
                "weights": self.crn_loss.layer_weights.tolist(), "warmup_batches": self.opts.lambda_warmup}
        log.info("CRN layer weights (1/mean layer loss over %d warm-up batches): %s",
                 self.opts.lambda_warmup, dict(zip(info["layers"], [f"{w:.4g}" for w in info["weights"]])))
        if self.dist.is_main:
            stats_mod.write_json(self.run_dir / "crn_layer_weights.json", info)
            if self.writer:
                self.writer.add_text("crn/layer_weights", json.dumps(info))
        distributed.barrier(self.dist)

    @staticmethod
    def _targets(batches):
        for batch in batches:
            yield dict(batch, target=batch.get("target", batch["image"]))

    def on_resume(self, payload: dict) -> None:
        if "layer_means" in self.state:
            self.crn_loss.set_layer_weights(self.state["layer_means"])

    def train_step(self, batch: dict) -> dict[str, float]:
        target = batch.get("target", batch["image"])
        with self.autocast():
            fake = self.models["generator"](batch["classes"]).float()
            loss, per_layer = self.crn_loss(fake, target, batch["classes"])
        self.optimise("generator", loss)
        scalars = {"loss": float(loss.detach())}
        scalars.update({f"layer/{name}": float(v) for name, v in zip(self.crn_loss.layers, per_layer)})
        return scalars
