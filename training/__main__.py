"""python -m training {make-scenes,train-rad,train-crn,match,evaluate,export,stats} ...

Multi-GPU: torchrun --nproc_per_node=N -m training train-rad ...  (same flags).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import options as opts_mod

RESUME_NOTE = ("Defaults shown are those of a new run: an existing --run-dir resumes with its saved "
               "options.json, and only the flags given override them.")
VGG_HELP = ("torchvision-format VGG-16 state dict (.pth) (default: the torch hub cache, else a "
            "loudly logged random-feature fallback)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    from .make_scenes import add_cli
    add_cli(sub)

    rad = sub.add_parser("train-rad", help="train the RAD enhancer (paired or unpaired/adversarial)",
                         description="Train the RAD enhancer (render + G-buffers -> enhanced image): "
                         "paired on fast/reference renders, or unpaired (adversarial, as in EPE) "
                         "towards --real photos. " + RESUME_NOTE)
    opts_mod.add_arguments(rad, opts_mod.RADOptions)
    crn = sub.add_parser("train-crn", help="train the CRN label-to-image baseline",
                         description="Train the CRN baseline (class map -> k images) with VGG-19 "
                         "feature matching and a per-class diversity loss. " + RESUME_NOTE)
    opts_mod.add_arguments(crn, opts_mod.CRNOptions)

    m = sub.add_parser("match", help="EPE patch matching: synthetic crops -> nearest real crops",
                       description="EPE-style patch matching: random crops of both datasets, described "
                       "by VGG-16 relu5_3 features, are paired with their nearest real crops; writes a "
                       "CSV of pairs and its sampling weights (for train-rad --matches).")
    m.add_argument("--synthetic", required=True, help="[kind:]path of the synthetic data")
    m.add_argument("--real", required=True, help="[kind:]path of the real photos")
    m.add_argument("--out", required=True, help="CSV of matched pairs (weights go next to it)")
    m.add_argument("--crop", type=int, default=196,
                   help="side of the square crops in pixels; train-rad --crop must not exceed it "
                   "(default: %(default)s, as in EPE)")
    m.add_argument("--per-image", type=int, default=15,
                   help="random crops per image (default: %(default)s)")
    m.add_argument("--k", type=int, default=10,
                   help="nearest real crops considered per synthetic crop (default: %(default)s)")
    m.add_argument("--threshold", type=float, default=0.5,
                   help="minimum cosine similarity of a kept pair (default: %(default)s)")
    m.add_argument("--seed", type=int, default=0, help="random seed of the crop positions "
                   "(default: %(default)s)")
    m.add_argument("--vgg-weights", default="", help=VGG_HELP)
    m.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")

    e = sub.add_parser("evaluate", help="metrics, comparison grids and curves for an exported model",
                       description="Run an exported model through the add-on's runtime on a dataset: "
                       "PSNR/SSIM against the reference renders, KID/FID/sKVD on VGG features, temporal "
                       "warping error, each also for the unenhanced input; writes metrics.json, "
                       "comparison grids and (with --run-dir) training curves.")
    e.add_argument("--model", required=True, help="exported .onnx")
    e.add_argument("--data", required=True, help="exported dataset, or ROOT with fast/ and reference/")
    e.add_argument("--out", default="", help="output folder (default: next to the model)")
    e.add_argument("--real", default="", help="[kind:]path of real photos for KID/FID/sKVD")
    e.add_argument("--run-dir", default="", help="run directory, to plot its training curves")
    e.add_argument("--max-frames", type=int, default=None, help="evaluate only the first N frames "
                   "(default: all)")
    e.add_argument("--features", default="vgg16:relu5_3", help="feature net for KID/FID/sKVD: arch:layer "
                   "(default: %(default)s)")
    e.add_argument("--vgg-weights", default="", help=VGG_HELP.replace("VGG-16", "--features VGG"))
    e.add_argument("--grids", type=int, default=8, help="how many comparison PNGs to write "
                   "(default: %(default)s)")
    e.add_argument("--device", default="cpu", help="onnxruntime device: auto, cpu or cuda "
                   "(default: %(default)s)")
    e.add_argument("--no-temporal", action="store_true",
                   help="the frames are not a sequence: skip the temporal warping error")
    e.add_argument("--temporal-filter", action="store_true",
                   help="measure the output after the add-on's temporal filter (as in animation "
                        "renders); the per-frame output is reported as per_frame_*")

    x = sub.add_parser("export", help="export a run's generator to ONNX for the add-on",
                       description="Export a run's generator (latest checkpoint unless --checkpoint) "
                       "to ONNX with the metadata the add-on checks (passes, G-buffer statistics, "
                       "size multiple).")
    x.add_argument("run", help="run directory")
    x.add_argument("--out", required=True, help="MODEL.onnx")
    x.add_argument("--checkpoint", default="", help="a specific checkpoint (default: the latest)")
    x.add_argument("--fp16", action="store_true", help="also write MODEL.fp16.onnx for CUDA")
    x.add_argument("--residual-scale", type=float, default=1.0,
                   help="RAD on top of the denoiser: scale its residual by this (0-1], chosen on "
                        "validation scenes with scripts/calibrate_residual.py (default 1)")
    x.add_argument("--full-bounce-scale", type=float, default=None,
                   help="the same for renders with every bounce (no light missing), if it differs "
                        "(needs the bounces input; calibrate_residual.py --by-bounces)")

    s = sub.add_parser("stats", help="compute and save a dataset's G-buffer statistics",
                       description="Compute a dataset's G-buffer mean/std and save them next to the "
                       "data (training does this once by itself; this recomputes them).")
    s.add_argument("data", help="[kind:]path of the dataset")
    s.add_argument("--gbuffer-passes", nargs="+", default=None,
                   help="passes to cover (default: schema.DEFAULT_GBUFFER_PASSES that the data has)")
    return p


def train(cls_options, trainer_for, args) -> int:
    from .trainers.base import log
    saved = opts_mod.load_saved(Path(args.run_dir)) if args.run_dir else None
    options = opts_mod.from_args(cls_options, args, saved)
    trainer = trainer_for(options)(options)
    try:
        trainer.fit()
    finally:
        trainer.close()
        from . import distributed
        distributed.cleanup()
    log.info("run directory: %s", options.run_dir)
    return 0


def rad_trainer(options):
    from .trainers.rad_paired import PairedRADTrainer
    from .trainers.rad_unpaired import UnpairedRADTrainer
    mode = options.mode if options.mode != "auto" else ("unpaired" if options.real else "paired")
    if mode not in ("paired", "unpaired"):
        raise SystemExit(f"--mode must be paired, unpaired or auto, not {options.mode!r}")
    return UnpairedRADTrainer if mode == "unpaired" else PairedRADTrainer


def crn_trainer(options):
    from .trainers.crn import CRNTrainer
    return CRNTrainer


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    if args.command == "make-scenes":
        return args.func(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "train-rad":
        return train(opts_mod.RADOptions, rad_trainer, args)
    if args.command == "train-crn":
        return train(opts_mod.CRNOptions, crn_trainer, args)
    if args.command == "export":
        from .export import export_run
        path = export_run(args.run, args.out, args.checkpoint or None, args.fp16, args.residual_scale,
                           args.full_bounce_scale)
        print(f"exported {path}")
        return 0
    if args.command == "evaluate":
        from .evaluate import evaluate
        out = args.out or str(Path(args.model).with_suffix("")) + "_eval"
        metrics = evaluate(args.model, args.data, out, args.real, args.run_dir, args.max_frames,
                           args.features, args.vgg_weights, args.grids, args.device,
                           temporal_metric=not args.no_temporal, temporal_filter=args.temporal_filter)
        print(json.dumps({k: v for k, v in metrics.items() if not isinstance(v, (list, dict))}, indent=1))
        return 0
    if args.command == "stats":
        from .data import stats
        from .data.sources import open_source
        source = open_source(args.data, args.gbuffer_passes)
        data = stats.load_or_compute(source, recompute=True)
        print(f"{len(data['channels'])} channels over {data['items']} items -> {stats.stats_path(source)}")
        if source.skipped:
            print(f"{len(source.skipped)} broken/missing items skipped (named in the warnings above)")
        return 0
    if args.command == "match":
        from .data.sources import open_source
        from .losses.vgg import VGG
        from .matching import match
        vgg = VGG("vgg16", args.vgg_weights or None, last_layer="relu5_3").to(args.device)
        logging.getLogger("training").warning(vgg.description) if not vgg.pretrained else None
        summary = match(open_source(args.synthetic, []), open_source(args.real, []), vgg, args.out,
                        args.crop, args.per_image, args.k, args.threshold, args.seed, args.device)
        print(json.dumps(summary, indent=1))
        return 0
    return 1


if __name__ == "__main__":
    from neural_core.errors import PhotorealError
    try:
        sys.exit(main())
    except (PhotorealError, ValueError, FileNotFoundError) as exc:
        # User errors (bad paths, wrong layouts) get one clear line, not a traceback.
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
