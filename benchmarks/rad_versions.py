"""RAD on top of Cycles' denoiser (the bundled model's config, read from its metadata) vs the
bundled config before it (the kernel-predicting `small` RAD on the raw render), ONNX Runtime on
the CPU, same run.

    python -m benchmarks.rad_versions [--reps 5] [--threads N] [--size 1920x1080]
    python -m benchmarks.rad_versions --files PREVIOUS.onnx NEW.onnx   # two trained models

Both graphs are exported from freshly initialised networks (speed does not depend on the
weights) with the bundled model's G-buffer passes, and run alternately so that other load on a
shared machine slows both alike. Prints the median ms per frame and the ratio. With --files,
two exported models instead (e.g. the bundled rad.onnx before and after a retraining).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from . import bench_core

CONFIGS = {
    "previous bundled RAD (small, kernel-predicting, raw render in)": "small",
    "bundled RAD (on Cycles' denoiser: denoised + noisy in, residual out)": "bundled",
}


def export(preset: str, out_dir: Path) -> Path:
    from neural_core.export import export_onnx, metadata_for
    from neural_core.metadata import read_onnx_metadata
    from neural_core.networks import RADConfig, RADNet
    from neural_core.runtime import resolve_model_path

    config = (RADConfig.from_dict(read_onnx_metadata(resolve_model_path("rad")).config)
              if preset == "bundled" else getattr(RADConfig, preset)())
    model = RADNet(config).eval()
    return export_onnx(model, metadata_for("rad", model.config, trained_on="untrained: benchmark"),
                       out_dir / f"rad_{preset}.onnx")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--files", nargs=2, metavar=("PREVIOUS", "NEW"), help="two exported .onnx models")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    from neural_core.runtime import Enhancer

    frame = bench_core.synthetic_frame(height, width)
    with tempfile.TemporaryDirectory() as tmp:
        if args.files:
            models = {f"previous: {args.files[0]}": args.files[0], f"new: {args.files[1]}": args.files[1]}
        else:
            models = {label: export(preset, Path(tmp)) for label, preset in CONFIGS.items()}
        enhancers = {label: Enhancer.from_pretrained(path, device="cpu", threads=args.threads)
                     for label, path in models.items()}
        runs = bench_core.interleaved({label: (lambda e=e: e.enhance(frame)) for label, e in enhancers.items()},
                                      args.reps)
    medians = {label: float(np.median(r["wall"])) for label, r in runs.items()}
    print(f"RAD, Enhancer.enhance at {width}x{height}, ONNX Runtime CPU, median of {args.reps}:")
    for label, ms in medians.items():
        print(f"  {label:<72} {ms:8.0f} ms   runs {bench_core._fmt(runs[label]['wall'])}")
    previous, bundled = medians.values()
    newer = "new" if args.files else "bundled"
    print(f"  ratio {newer} / previous: {bundled / previous:.2f}x  (<= 1: no slower)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
