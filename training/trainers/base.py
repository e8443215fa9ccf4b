"""What every trainer shares: run directory, logging, data, checkpoints, resume, NaN guard, AMP.

A subclass builds its models and optimisers (`build`) and does one optimisation step
(`train_step`, returning scalars to log). Batches are a pure function of (seed, step, rank), and
checkpoints hold weights, optimiser states, the RNG state and counters, so a killed run resumed
with the same command continues at the same step with the same weights.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from .. import checkpoint, distributed, options as options_mod
from ..data import stats as stats_mod
from ..data.loader import CropDataset, StepSampler, make_loader
from ..data.sources import Source, open_source
from ..losses.vgg import VGG

LR_SCHEDULES = ("constant", "cosine")
log = logging.getLogger("training")


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """Multiplier of the base learning rates at `step` of `steps` (--lr-schedule). A function of
    the step alone, so a resumed run continues the same curve."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(step / max(steps, 1), 1.0)))
    return 1.0


def setup_logging(run: Path, is_main: bool) -> None:
    """Console + RUN/log.txt on the main process; warnings only elsewhere."""
    root = logging.getLogger()
    root.setLevel(logging.INFO if is_main else logging.WARNING)
    for handler in list(root.handlers):
        # Ours from an earlier trainer in this process, or a basicConfig console handler.
        if getattr(handler, "_photoreal", False) or type(handler) is logging.StreamHandler:
            root.removeHandler(handler)
            handler.close()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.stderr)]
    if is_main:
        handlers.append(logging.FileHandler(run / "log.txt"))
    for handler in handlers:
        handler.setFormatter(fmt)
        handler._photoreal = True
        root.addHandler(handler)


class Trainer:
    kind = "rad"            # the network kind this trainer produces (neural_core.metadata.MODEL_KINDS)
    mode = ""
    size_multiple = 1
    reads_several_corpora = False   # --data A,B (paired RAD training)

    def __init__(self, opts, dist: distributed.Dist | None = None):
        if opts.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"--lr-schedule must be one of {', '.join(LR_SCHEDULES)}, not {opts.lr_schedule!r}")
        self.opts = opts
        self.dist = dist or distributed.setup(opts.device)
        self.device = self.dist.device
        self.run_dir = Path(opts.run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        setup_logging(self.run_dir, self.dist.is_main)
        self.writer = self._make_writer()
        self.state = {"nan_skips": 0, "skipped_files": 0}
        self.step = 0
        self.models: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        torch.manual_seed(opts.seed)
        self.source = self.open_data(opts.data)
        self.gbuffer_stats = self.load_stats(self.source)
        self.build()
        if not self.resume():
            self.start_from(opts.init_from)
        if self.dist.is_main:
            options_mod.save(opts, self.run_dir / "options.json")

    # -- set-up -----------------------------------------------------------------------------------
    def _make_writer(self):
        if not self.dist.is_main:
            return None
        from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter(str(self.run_dir / "tb"))

    def open_data(self, spec: str) -> Source:
        if not spec:
            raise ValueError("--data is required: a dataset directory, list file or Cityscapes root")
        source = open_source(spec, self.opts.gbuffer_passes, self.opts.split, self.opts.gt_labels,
                             several=self.reads_several_corpora)
        log.info("data: %s", source.describe())
        self.state_add_skipped(len(source.skipped), source.skipped)
        return source

    def state_add_skipped(self, count: int, names=()) -> None:
        if count:
            self.state["skipped_files"] = self.state.get("skipped_files", 0) + count
            log.warning("%d broken/missing item(s) skipped so far (latest: %s)",
                        self.state["skipped_files"], list(names)[-3:])

    def load_stats(self, source: Source) -> dict | None:
        """The run's own copy first (a resumed run keeps the normalisation it was trained
        with), else the dataset's file, else computed now."""
        if not source.gbuffer_channels:
            return None
        run_copy = self.run_dir / stats_mod.STATS_FILE
        if self.dist.is_main:
            data = json.loads(run_copy.read_text()) if run_copy.is_file() else None
            if data is None or data.get("channels") != source.gbuffer_channels or self.opts.recompute_stats:
                data = stats_mod.load_or_compute(source, self.run_dir, self.opts.recompute_stats)
            stats_mod.write_json(run_copy, data)
        distributed.barrier(self.dist)
        if not self.dist.is_main:
            data = json.loads(run_copy.read_text())
        return data

    def dataset(self, source: Source, crop: int | None = None) -> CropDataset:
        stats = stats_mod.as_gbuffer_stats(self.gbuffer_stats) if self.gbuffer_stats and source.gbuffer_channels else None
        # --crop 0: whole frames (every frame of the data one size, as make-scenes renders them).
        return CropDataset(source, crop or self.opts.crop or None, stats, multiple=self.size_multiple,
                           depth_scale=getattr(self.opts, "depth_scale", 1.0),
                           color_permute=getattr(self.opts, "color_permute", 0.0))

    def loader(self, dataset, stream: int = 0, weights=None, **kwargs):
        sampler = StepSampler(len(dataset), self.opts.batch_size, self.opts.seed, self.step,
                              self.dist.rank, weights, stream)
        return make_loader(dataset, sampler, self.opts.workers, **kwargs)

    def make_vgg(self, arch: str, **kwargs) -> VGG:
        vgg = VGG(arch, self.opts.vgg_weights or None, **kwargs).to(self.device)
        if vgg.pretrained:
            log.info(vgg.description)
        else:
            banner = "!" * 100
            log.warning("\n%s\n%s\n%s", banner, vgg.description, banner)
        if self.writer:
            self.writer.add_text(f"vgg/{arch}", vgg.description)
        self.state.setdefault("vgg", {})[arch] = vgg.description
        return vgg

    def network_config(self) -> dict:
        from .netconfig import network_config
        if self.source.gbuffer_passes is None:
            raise ValueError(f"{self.source.root} has G-buffers without schema channel names (EPE's own "
                             f"npz layout); a RAD for the add-on needs named schema passes. Export the "
                             f"data with the add-on's dataset export, whose npz files name their channels")
        passes = list(self.source.gbuffer_passes)
        return network_config(self.kind, self.opts.net, self.opts.net_config, gbuffer_passes=passes)

    def generator_image(self, batch: dict) -> torch.Tensor:
        """RAD's image input: its config's image passes, encoded and stacked. A source without
        a noisy image (a render made without the denoiser) serves its image instead."""
        passes = self.net_config.get("image_passes", ["image"])
        return torch.cat([batch.get(key, batch["image"]) for key in passes], dim=1)

    def wrap(self, model: nn.Module) -> nn.Module:
        """DistributedDataParallel under torchrun (SyncBatchNorm across GPUs)."""
        if not self.dist.enabled:
            return model
        if self.dist.world > 1 and self.device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def build(self) -> None:
        raise NotImplementedError

    # -- checkpoints ------------------------------------------------------------------------------
    @staticmethod
    def unwrap(model: nn.Module) -> nn.Module:
        return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model

    def export_info(self) -> dict:
        """What `training export` needs to rebuild and describe the generator."""
        return {"kind": self.kind, "mode": self.mode, "net_config": self.net_config,
                "gbuffer_passes": list(self.source.gbuffer_passes or []),
                "gbuffer_stats": self.gbuffer_stats,
                "class_source": getattr(self.source, "class_source", "object_index"),
                "data": self.describe_data(), "vgg": self.state.get("vgg", {})}

    def describe_data(self) -> str:
        return self.source.describe()

    def payload(self) -> dict:
        return {"step": self.step,
                "models": {k: self.unwrap(m).state_dict() for k, m in self.models.items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "rng": torch.get_rng_state(),
                "state": json.dumps(self.state),
                "info": json.dumps(self.export_info()),
                "options": json.dumps(asdict(self.opts))}

    def save_checkpoint(self) -> None:
        if self.dist.is_main:
            path = checkpoint.save(self.run_dir, self.step, self.payload(), self.opts.keep_checkpoints)
            log.info("checkpoint %s", path)
        distributed.barrier(self.dist)

    def start_from(self, path: str) -> None:
        """--init-from: a new run's weights from another run (optimiser state starts fresh)."""
        if not path:
            return
        found = checkpoint.weights_to_start_from(path, self.device)
        for name, model in self.models.items():
            if name in found["models"]:
                widened = checkpoint.load_widened(self.unwrap(model), found["models"][name], found.get("path", path))
                log.info("%s starts from %s%s", name, found.get("path", path),
                         f" (new input channels at zero in {widened})" if widened else "")

    def resume(self) -> bool:
        """The run's newest checkpoint, if any; True when one was loaded."""
        found = checkpoint.latest(self.run_dir, self.device)
        if found is None:
            return False
        for name, model in self.models.items():
            self.unwrap(model).load_state_dict(found["models"][name])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(found["optimizers"][name])
        torch.set_rng_state(found["rng"].cpu())
        self.state.update(json.loads(found["state"]))
        self.step = int(found["step"])
        self.on_resume(found)
        log.info("resumed from %s at step %d", found["path"], self.step)
        return True

    def on_resume(self, payload: dict) -> None:
        pass

    # -- one optimisation step with the NaN guard ---------------------------------------------------
    def autocast_dtype(self) -> torch.dtype | None:
        return torch.bfloat16 if self.opts.amp and self.device.type == "cuda" else None

    def autocast(self):
        dtype = self.autocast_dtype()
        return torch.autocast("cuda", dtype=dtype) if dtype else contextlib.nullcontext()

    def optimise(self, name: str, loss: torch.Tensor, average_manually: bool = False) -> bool:
        """Backward + clipped step for optimiser `name`; skipped (on every process) when the loss
        or the gradient is not finite. EPE's runs hit NaNs around step 5k and died; here the step
        is dropped, logged and counted."""
        opt = self.optimizers[name]
        params = [p for group in opt.param_groups for p in group["params"]]
        opt.zero_grad(set_to_none=True)
        finite = distributed.all_true(bool(torch.isfinite(loss).item()), self.dist)
        if finite:
            loss.backward()
            if average_manually:
                distributed.average_gradients(params, self.dist)
            norm = torch.nn.utils.clip_grad_norm_(params, self.opts.clip_grad)
            finite = distributed.all_true(bool(torch.isfinite(norm).item()), self.dist)
        if not finite:
            opt.zero_grad(set_to_none=True)
            self.state["nan_skips"] += 1
            log.warning("step %d: non-finite %s loss/gradient (loss=%s); step skipped "
                        "(%d skipped so far)", self.step, name, loss.item(), self.state["nan_skips"])
            if self.writer:
                self.writer.add_scalar("train/nan_skips", self.state["nan_skips"], self.step)
            return False
        for group in opt.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * lr_factor(self.opts.lr_schedule, self.step, self.opts.steps)
        opt.step()
        return True

    def train_step(self, batch: dict) -> dict[str, float]:
        raise NotImplementedError

    def batches(self):
        """An iterator of batches for steps self.step, self.step + 1, ..."""
        raise NotImplementedError

    def to_device(self, batch: dict) -> dict:
        return {k: (v.to(self.device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
                for k, v in batch.items()}

    # -- the loop ---------------------------------------------------------------------------------
    def fit(self) -> dict:
        opts = self.opts
        log.info("training %s (%s) from step %d to %d on %s x%d (backend %s), batch %d, crop %d%s",
                 self.kind, self.mode, self.step, opts.steps, self.device, self.dist.world,
                 self.dist.backend, opts.batch_size, opts.crop,
                 ", bf16 autocast" if self.autocast_dtype() else "")
        bar = tqdm(total=opts.steps, initial=self.step, desc=f"train {self.kind}",
                   disable=not (opts.progress and self.dist.is_main), dynamic_ncols=True)
        batches, last, started = self.batches(), {}, time.time()
        for model in self.models.values():
            model.train()
        while self.step < opts.steps:
            batch = next(batches)
            self.state_add_skipped(sum(len(b["skipped"]) for b in self._parts(batch)),
                                   [n for b in self._parts(batch) for n in b["skipped"]])
            scalars = self.train_step(batch)
            self.step += 1
            bar.update(1)
            last = scalars
            if self.step % opts.log_every == 0 or self.step == opts.steps:
                self.log_scalars(scalars, time.time() - started)
                bar.set_postfix({k: f"{v:.4g}" for k, v in list(scalars.items())[:3]})
            if self.step % opts.checkpoint_every == 0 or self.step == opts.steps:
                self.save_checkpoint()
        bar.close()
        if self.writer:
            self.writer.flush()
        log.info("done at step %d; %d non-finite steps skipped; %d broken items skipped",
                 self.step, self.state["nan_skips"], self.state["skipped_files"])
        return last

    @staticmethod
    def _parts(batch):
        return [batch[k] for k in ("synthetic", "real") if k in batch] or [batch]

    def log_scalars(self, scalars: dict[str, float], elapsed: float) -> None:
        if not self.dist.is_main:
            return
        scalars = dict(scalars, nan_skips=self.state["nan_skips"], skipped_files=self.state["skipped_files"])
        for key, value in scalars.items():
            self.writer.add_scalar(f"train/{key}", value, self.step)
        path = self.run_dir / "metrics.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            out = csv.writer(f)
            if new:
                out.writerow(["step", "name", "value"])
            out.writerows([self.step, k, f"{v:.6g}"] for k, v in scalars.items())
        log.info("step %d (%.1fs): %s", self.step, elapsed,
                 ", ".join(f"{k}={v:.4g}" for k, v in scalars.items()))

    def close(self) -> None:
        if self.writer:
            self.writer.close()

