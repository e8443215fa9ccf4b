"""Training options: one dataclass per command, filled from argparse and saved in the run.

Every field has a command-line flag of the same name (underscores become dashes) and a help
text. The chosen options are written to RUN/options.json; a resumed run reads them back, so
resuming needs only `--run-dir` (flags given again override, e.g. more --steps).
"""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


def option(default, help: str):
    """A dataclass field with its --help text; the default stays the field's own."""
    return field(default=default, metadata={"help": help})


@dataclass
class TrainOptions:
    run_dir: str = option("runs/default", "run directory: checkpoints, logs, tensorboard, options.json; "
                          "an existing run is resumed from its latest checkpoint")
    data: str = option("", "[kind:]path of the training data; kind is scenes, paired, epe, cityscapes "
                       "or photos, detected from the path when left out (required); paired RAD training takes "
                       "several paired roots, comma-separated")
    steps: int = option(10000, "total optimisation steps; a resumed run continues up to this step")
    batch_size: int = option(4, "batch size per process (per GPU under torchrun)")
    crop: int = option(256, "side of the square random training crops, in pixels; 0 trains on whole "
                                "frames (all of one size)")
    lr: float = option(1e-4, "Adam learning rate of the generator")
    lr_schedule: str = option("constant", "constant, or cosine: decay every learning rate to 0 at "
                              "--steps (more steps given on resume stretch the curve)")
    betas: tuple[float, float] = option((0.9, 0.999), "Adam betas (two numbers)")
    weight_decay: float = option(0.0, "Adam weight decay")
    clip_grad: float = option(1000.0, "maximum gradient norm per step; the default is EPE's")
    seed: int = option(1, "random seed: weights, batch order and crop positions follow from it")
    workers: int = option(2, "DataLoader worker processes per GPU/process")
    device: str = option("auto", "auto (CUDA when present), cpu or cuda")
    amp: bool = option(True, "bf16 autocast on CUDA (ignored on CPU); --no-amp turns it off")
    checkpoint_every: int = option(1000, "save a checkpoint every N steps (and at the last step)")
    keep_checkpoints: int = option(3, "how many of the newest checkpoints to keep (0 keeps all)")
    log_every: int = option(50, "log losses to the console, RUN/log.txt, tensorboard and "
                            "RUN/metrics.csv every N steps")
    progress: bool = option(True, "show a tqdm progress bar (--no-progress hides it)")
    vgg_weights: str = option("", "torchvision-format state dict (.pth) of VGG-16 (RAD) or VGG-19 (CRN) "
                              "for the perceptual losses and the discriminator (default: the torch hub cache, else a "
                              "loudly logged random-feature fallback)")
    vgg_taps: list[str] | None = option(None, "VGG layers of the perceptual/LPIPS/CRN loss, e.g. "
                                        "relu1_2 relu2_2 (default: relu1_2..relu5_3 of VGG-16 for "
                                        "RAD, CRN's relu1_2..relu5_2 of VGG-19)")
    gbuffer_passes: list[str] | None = option(None, "G-buffer passes the RAD is conditioned on, e.g. "
                                              "depth normal albedo; 'none' trains without G-buffers "
                                              "(ablation) (default: schema.DEFAULT_GBUFFER_PASSES "
                                              "that the data has; CRN ignores it)")
    net: str = option("small", "network preset: small (fast on a CPU), paper (close to the "
                      "published model) or tiny (tests and smoke runs)")
    net_config: str = option("", "JSON dict of network config fields overriding the preset, e.g. "
                             "'{\"num_branches\": 4}'")
    init_from: str = option("", "a new run starts from this checkpoint's weights (a .pt file, or a run "
                            "directory's newest): input channels only this network has (an added "
                            "G-buffer pass) start at zero, so it begins as the old model")
    recompute_stats: bool = option(False, "recompute the data's G-buffer mean/std instead of using "
                                   "the saved gbuffer_stats.json")
    split: str = option("train", "Cityscapes split to read (cityscapes data only)")
    gt_labels: str = option("classes", "what an EPE list's gt_label files hold: classes (schema class "
                            "ids, what the add-on writes) or cityscapes (Cityscapes labelIds)")


@dataclass
class RADOptions(TrainOptions):
    mode: str = option("auto", "paired (fast -> reference renders, L1 + VGG loss), unpaired "
                       "(adversarial towards --real photos, as in EPE) or auto (unpaired when "
                       "--real is given)")
    real: str = option("", "[kind:]path of the real photos for unpaired mode (photo folder, "
                       "Cityscapes root or EPE list)")
    l1_weight: float = option(1.0, "paired: weight of the L1 loss in the encoded (log1p) domain")
    vgg_weight: float = option(1.0, "paired: weight of the VGG-16 feature L1 loss (0 skips VGG)")
    no_worse_weight: float = option(0.0, "paired: weight of a hinge on every crop whose L1 error is "
                                    "above the input image's (the denoised render's): the output must "
                                    "not be worse than what the user already has")
    lpips_weight: float = option(5.0, "unpaired: weight of the LPIPS-style distance to the input "
                                 "(default as in EPE)")
    gan_weight: float = option(1.0, "unpaired: weight of the generator's LSGAN loss")
    r1_weight: float = option(0.03, "unpaired: weight of the gradient penalty on real images; "
                              "0 disables it (default as in EPE)")
    disc_lr: float = option(1e-4, "unpaired: Adam learning rate of the discriminator")
    disc_layers: int = option(4, "unpaired: conv layers per discriminator head (as in EPE)")
    disc_dim: int = option(256, "unpaired: maximum width of a discriminator head (as in EPE)")
    disc_taps: list[str] | None = option(None, "unpaired: VGG-16 layers that get a discriminator "
                                         "head (default: EPE's relu1_1..relu4_3)")
    disc_labels: int = option(194, "unpaired: size of the discriminator's label embedding; label ids "
                              "must be below it (MSeg's 194 covers our 20 classes)")
    matches: str = option("", "unpaired: matched-crops CSV from `python -m training match`; --crop "
                          "must not exceed its crop size (default: independent random crops)")
    crop_weights: str = option("", "unpaired: sampling-weights .npz of --matches (default: the "
                               "CSV's *_weights.npz next to it)")
    depth_scale: float = option(1.0, "depth augmentation: each sample's depth is multiplied by a "
                                "log-uniform factor in [1/F, F], as if its scene were that much "
                                "larger (1 turns it off)")
    color_permute: float = option(0.0, "colour augmentation: with this probability a sample's R, G "
                                  "and B are swapped alike in the image, noisy image, target and "
                                  "colour G-buffers (albedo, glossy, emission)")


@dataclass
class CRNOptions(TrainOptions):
    lambda_warmup: int = option(20, "batches that measure CRN's per-layer loss weights "
                                "(1 / mean layer loss) before the first step")
    size: list[int] | None = option(None, "resize whole frames to H W before cropping; 0 0 keeps "
                                    "the original size (default: the network's training size, "
                                    "e.g. 128 256)")
    crop: int = option(0, "side of square random crops, in pixels; 0 trains on whole (resized) frames")
    batch_size: int = option(1, "batch size per process (per GPU under torchrun)")
    diversity_min_weight: float = option(0.999, "diversity loss: weight of the best of the k images "
                                         "per class (the rest goes to their mean)")


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One flag per dataclass field; defaults are None so that only given flags override (a
    resumed run keeps its saved options), so the help shows the field's default instead."""
    for f in fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        kind = str(f.type)
        text = help_text(f)
        if kind == "bool":
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif "list" in kind or "tuple" in kind:
            item = float if "float" in kind else int if "int" in kind else str
            parser.add_argument(flag, nargs="+", type=item, default=None, help=text)
        else:
            parser.add_argument(flag, type={"int": int, "float": float}.get(kind, str), default=None,
                                help=text)


def help_text(f) -> str:
    """The field's help with its default appended ('%' escaped: argparse formats help strings)."""
    text = f.metadata.get("help", "")
    if f.default is not None and f.default != "":
        shown = " ".join(map(str, f.default)) if isinstance(f.default, tuple) else f.default
        text += f" (default: {shown})"
    return text.replace("%", "%%")


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
