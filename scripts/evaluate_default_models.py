"""Evaluate the bundled models against their baselines on held-out generated scenes.

RAD (fast render + G-buffers -> reference) is compared with the fast render as it is, Blender's
Denoise node on the same fast render with its albedo and normal passes, and the same RAD trained
without G-buffers. CRN (class labels -> reference) is compared with nearest-neighbour retrieval:
the training reference image whose label map agrees with the held-out one on the most pixels.
PSNR and SSIM are measured on display images (sRGB 8-bit), as `training evaluate` does.

    .venv/bin/python scripts/evaluate_default_models.py --eval data/corpus/eval \
        --train data/corpus/train --denoised runs/eval/denoise \
        --rad neural_core/models/rad.onnx --rad-no-gbuffers runs/rad_nog.onnx \
        --crn neural_core/models/crn.onnx --out runs/eval
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neural_core import exr  # noqa: E402
from neural_core.dataset_format import DatasetReader  # noqa: E402
from neural_core.runtime import Enhancer  # noqa: E402
from training.evaluate import display, write_grid  # noqa: E402
from training.metrics.image import psnr, ssim  # noqa: E402


def read_rgb(path: Path) -> np.ndarray:
    channels = exr.read_channels(path)
    return np.stack([channels[c] for c in "RGB"], axis=-1)


def nearest_by_labels(labels: np.ndarray, candidates: list[np.ndarray]) -> int:
    """Index of the candidate label map that agrees with `labels` on the most pixels."""
    return int(np.argmax([np.mean(c == labels) for c in candidates]))


def score(output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    out, ref = display(output), display(reference)
    return {"psnr": psnr(out, ref), "ssim": ssim(out, ref)}


def mean_table(per_frame: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    return {method: {metric: float(np.mean([f[metric] for f in frames])) for metric in ("psnr", "ssim")}
            for method, frames in per_frame.items()}


def evaluate(args) -> dict:
    fast, reference = DatasetReader(args.eval / "fast"), DatasetReader(args.eval / "reference")
    train_ref = DatasetReader(args.train / "reference")
    train_ids = train_ref.frames
    train_labels = [train_ref.read_labels(n) for n in train_ids]
    models = {"RAD": args.rad, "RAD without G-buffers": args.rad_no_gbuffers, "CRN": args.crn}
    enhancers = {name: Enhancer.from_pretrained(path, device="cpu") for name, path in models.items() if path}
    rad_rows: dict[str, list[dict]] = {}
    crn_rows: dict[str, list[dict]] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    for n in fast.frames:
        frame, target = fast.read_frame(n), reference.read_frame(n)["image"]
        rad_outputs = {"fast render": frame["image"]}
        if args.denoised:
            rad_outputs["Denoise node"] = read_rgb(args.denoised / "frames" / f"{n:06d}.exr")
        for name in ("RAD without G-buffers", "RAD"):
            if name in enhancers:
                rad_outputs[name] = enhancers[name].enhance(frame)
        for name, output in rad_outputs.items():
            rad_rows.setdefault(name, []).append(score(output, target))
        write_grid([display(x) for x in [*rad_outputs.values(), target]], args.out / f"rad_{n:06d}.png")

        labels = fast.read_labels(n)
        nearest = train_ids[nearest_by_labels(labels, train_labels)]
        crn_outputs = {"nearest-neighbour retrieval": train_ref.read_frame(nearest)["image"]}
        if "CRN" in enhancers:
            crn_outputs["CRN"] = enhancers["CRN"].enhance(frame)
        for name, output in crn_outputs.items():
            crn_rows.setdefault(name, []).append(score(output, target))
        write_grid([display(x) for x in [*crn_outputs.values(), target]], args.out / f"crn_{n:06d}.png")
    return {"frames": len(fast.frames), "models": {k: str(v) for k, v in models.items() if v},
            "rad": mean_table(rad_rows), "crn": mean_table(crn_rows),
            "per_frame": {"rad": rad_rows, "crn": crn_rows}}


def markdown(results: dict) -> str:
    lines = [f"Held-out scenes: {results['frames']} (PSNR dB / SSIM on sRGB display images)", "",
             "| task | method | PSNR | SSIM |", "|---|---|---|---|"]
    for task in ("rad", "crn"):
        for method, m in results[task].items():
            lines.append(f"| {task.upper()} | {method} | {m['psnr']:.2f} | {m['ssim']:.4f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eval", type=Path, required=True, help="make-scenes root of the held-out scenes")
    p.add_argument("--train", type=Path, required=True, help="make-scenes root of the training scenes (retrieval)")
    p.add_argument("--denoised", type=Path, help="output of `python -m training.baselines.denoise_node`")
    p.add_argument("--rad", type=Path, help="RAD model (.onnx)")
    p.add_argument("--rad-no-gbuffers", type=Path, help="the same RAD trained without G-buffers")
    p.add_argument("--crn", type=Path, help="CRN model (.onnx)")
    p.add_argument("--out", type=Path, required=True, help="folder for metrics.json, table.md and grids")
    args = p.parse_args(argv)
    results = evaluate(args)
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (args.out / "table.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
