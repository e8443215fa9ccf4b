"""Training options: one dataclass per command, filled from argparse and saved in the run.

Every field has a command-line flag of the same name (underscores become dashes). The chosen
options are written to RUN/options.json; a resumed run reads them back, so `--resume` needs
only the run directory (flags given again override, e.g. more --steps).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass
class TrainOptions:
    run_dir: str = "runs/default"      # run directory: checkpoints, logs, stats, options
    data: str = ""                     # [kind:]path of the (synthetic) training data
    steps: int = 10000                 # total optimisation steps (a resumed run continues to it)
    batch_size: int = 4                # per process
    crop: int = 256                    # square random crops (pixels)
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    clip_grad: float = 1000.0          # max gradient norm (EPE: 1000)
    seed: int = 1
    workers: int = 2                   # DataLoader worker processes per GPU
    device: str = "auto"               # auto | cpu | cuda
    amp: bool = True                   # bf16 autocast on CUDA (ignored on CPU)
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3
    log_every: int = 50
    progress: bool = True
    vgg_weights: str = ""              # torchvision vgg16/vgg19 state dict (else the hub cache)
    vgg_taps: list[str] | None = None  # VGG layers of the perceptual/LPIPS/CRN loss (default:
                                       # relu1_2..relu5_3 for VGG-16, CRN's relu1_2..relu5_2)
    gbuffer_passes: list[str] | None = None  # default: schema.DEFAULT_GBUFFER_PASSES present in the data
    net: str = "small"                 # network preset: small | paper | tiny
    net_config: str = ""               # JSON overriding preset fields, e.g. '{"num_branches": 2}'
    recompute_stats: bool = False
    split: str = "train"               # Cityscapes split
    gt_labels: str = "classes"         # EPE lists: gt_label holds schema classes or Cityscapes ids


@dataclass
class RADOptions(TrainOptions):
    mode: str = "auto"                 # paired | unpaired | auto (unpaired when --real is given)
    real: str = ""                     # [kind:]path of real photos (unpaired mode)
    l1_weight: float = 1.0             # paired: L1 in the encoded domain
    vgg_weight: float = 1.0            # paired: VGG-16 feature L1
    lpips_weight: float = 5.0          # unpaired: LPIPS-style distance to the input (EPE: 5)
    gan_weight: float = 1.0
    r1_weight: float = 0.03            # gradient penalty on reals (EPE: 0.03)
    disc_lr: float = 1e-4
    disc_layers: int = 4               # conv layers per discriminator head (EPE: 4)
    disc_dim: int = 256                # max head width (EPE: 256)
    disc_taps: list[str] | None = None  # VGG-16 layers with a head (default relu1_1..relu4_3)
    disc_labels: int = 194             # label embeddings (MSeg's 194 covers our 20 classes)
    matches: str = ""                  # matched-crops CSV from `python -m training match`
    crop_weights: str = ""             # its weights npz (default: next to the CSV)


@dataclass
class CRNOptions(TrainOptions):
    lambda_warmup: int = 20            # batches measuring CRN's per-layer weights (1/mean loss)
    size: list[int] | None = None      # resize whole frames to H W first (default: the network's
                                       # training size, e.g. 128 256); 0 0 keeps the original size
    crop: int = 0                      # 0: no crop (whole resized frame); else square crops
    batch_size: int = 1
    diversity_min_weight: float = 0.999


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One flag per dataclass field; defaults are None so that only given flags override."""
    for f in fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        elif "list" in kind or "tuple" in kind:
            item = float if "float" in kind else int if "int" in kind else str
            parser.add_argument(flag, nargs="+", type=item, default=None)
        else:
            parser.add_argument(flag, type={"int": int, "float": float}.get(kind, str), default=None)


def from_args(cls: type, args: argparse.Namespace, saved: dict | None = None):
    values = dict(saved or {})
    for f in fields(cls):
        given = getattr(args, f.name, None)
        if given == ["none"]:
            given = []  # `--gbuffer-passes none`: an explicitly empty list (the no-G-buffer ablation)
        if given is not None:
            values[f.name] = given
    known = {f.name for f in fields(cls)}
    opts = cls(**{k: v for k, v in values.items() if k in known})
    if isinstance(opts.betas, list):
        opts.betas = tuple(opts.betas)
    return opts


def save(opts, path: Path) -> None:
    from .data.stats import write_json
    write_json(path, asdict(opts))


def load_saved(run: Path) -> dict | None:
    path = Path(run) / "options.json"
    return json.loads(path.read_text()) if path.is_file() else None
