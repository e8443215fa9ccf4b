"""Evaluate the bundled models against what Blender already gives, scene by scene.

RAD works on top of Cycles' denoiser. On every held-out scene and every fast setting
(`make-scenes --fast 4spp-1b,...`: folders fast-4spp-1b/ ...) it is compared with:

- denoiser off: the render as it is (Cycles' Noisy Image) and Blender's Denoise node applied to
  it in the compositor (OIDN, albedo + normal; `training.baselines.denoise_node --input noisy`).
  RAD then gets what the add-on's button makes of such a render: the Denoise node's output as
  the denoised image, the render as the noisy one (schema.on_denoised) - "RAD on the node".
- denoiser on (Blender's default): the denoised render (Combined); RAD on it - "RAD".

CRN (class labels -> reference) is compared with nearest-neighbour retrieval: the training
reference whose label map agrees with the held-out one on the most pixels.
PSNR and SSIM are on display images (sRGB 8-bit), as `training evaluate` does. Every scene is
printed, with its kind; the tables give the mean, the mean per kind and the worst scene.

    .venv/bin/python scripts/evaluate_default_models.py --eval data/corpus2/eval \
        --train data/corpus2/train --denoise-node runs/eval/denoise \
        --rad neural_core/models/rad.onnx --crn neural_core/models/crn.onnx --out runs/eval
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from neural_core import exr, schema  # noqa: E402
from neural_core.dataset_format import DatasetReader  # noqa: E402
from neural_core.runtime import Enhancer  # noqa: E402
from training.evaluate import display, write_grid  # noqa: E402
from training.metrics.image import psnr, ssim  # noqa: E402

# comparison: (RAD's output, the baseline it is measured against), per scene.
COMPARISONS = {"denoiser off": ("RAD on the node", "Denoise node"), "denoiser on": ("RAD", "denoised render")}
CROP = 96   # side of the 100 % texture crops


def read_rgb(path: Path) -> np.ndarray:
    channels = exr.read_channels(path)
    return np.stack([channels[c] for c in "RGB"], axis=-1)


def without_denoiser(frame: dict, node_output: np.ndarray) -> dict:
    """A held-out frame as the add-on's button reads a render made with Cycles' denoiser off:
    Combined is the noisy image, and the Denoise node's output is the denoised one."""
    return schema.on_denoised({**frame, "image": frame["noisy"]}, node_output)


def nearest_by_labels(labels: np.ndarray, candidates: list[np.ndarray]) -> int:
    """Index of the candidate label map that agrees with `labels` on the most pixels."""
    return int(np.argmax([np.mean(c == labels) for c in candidates]))


def score(output: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    out, ref = display(output), display(reference)
    return {"psnr": psnr(out, ref), "ssim": ssim(out, ref)}


def scene_kinds(root: Path) -> dict[int, str]:
    record = json.loads((root / "scenes.json").read_text())
    return {int(n): entry["kind"] for n, entry in record["scenes"].items()}


def fast_folders(root: Path) -> list[Path]:
    folders = sorted(p for p in root.glob("fast-*") if (p / "manifest.json").is_file())
    if not folders:
        raise SystemExit(f"{root} has no fast-*/ renders; make them with make-scenes --fast 4spp-1b,...")
    return folders


def setting_of(folder: Path) -> str:
    """The fast setting a fast-*/ folder holds: fast-4spp-1b -> 4spp-1b."""
    return folder.name[len("fast-"):]


def evaluate_rad(args, rad: Enhancer | None, kinds: dict[int, str]) -> dict:
    reference = DatasetReader(args.eval / "reference")
    rows: dict = {}
    best_texture: dict = {}
    for folder in fast_folders(args.eval):
        setting = setting_of(folder)
        fast = DatasetReader(folder)
        for n in [n for n in fast.frames if n in reference.frames]:   # a set still rendering
            frame, target = fast.read_frame(n), reference.read_frame(n)["image"]
            outputs = {"render (denoiser off)": frame["noisy"], "denoised render": frame["image"]}
            if args.denoise_node:
                outputs["Denoise node"] = read_rgb(args.denoise_node / setting / "frames" / f"{n:06d}.exr")
            if rad is not None:
                if "Denoise node" in outputs:
                    outputs["RAD on the node"] = rad.enhance(without_denoiser(frame, outputs["Denoise node"]))
                outputs["RAD"] = rad.enhance(frame)
            scores = {name: score(out, target) for name, out in outputs.items()}
            rows.setdefault(setting, []).append({"frame": n, "kind": kinds.get(n, "?"), **scores})
            panels = [display(x) for x in [*outputs.values(), target]]
            write_grid(panels, args.out / f"rad_{setting}_{n:06d}.png")
            crop = finest_texture_window(panels[-1])
            if crop[0] > best_texture.get(setting, (-1.0,))[0]:
                best_texture[setting] = (crop[0], n, [p[crop[1]] for p in panels])
    for setting, (_, n, crops) in best_texture.items():   # 100 % crops, no resampling
        write_grid(crops, args.out / f"texture_crop_{setting}.png")
        print(f"{setting}: finest texture in scene {n}: texture_crop_{setting}.png "
              f"({' | '.join([*outputs, 'reference'])})")
    return rows


def finest_texture_window(image: np.ndarray, size: int = CROP) -> tuple[float, tuple[slice, slice]]:
    """(energy, window) of the size x size window with the most fine detail (mean |Laplacian|)."""
    grey = image.mean(axis=-1)
    lap = np.abs(4 * grey[1:-1, 1:-1] - grey[:-2, 1:-1] - grey[2:, 1:-1] - grey[1:-1, :-2] - grey[1:-1, 2:])
    best = (-1.0, (slice(0, size), slice(0, size)))
    for top in range(0, lap.shape[0] - size + 1, 8):
        for left in range(0, lap.shape[1] - size + 1, 8):
            energy = float(lap[top:top + size, left:left + size].mean())
            if energy > best[0]:
                best = (energy, (slice(top + 1, top + 1 + size), slice(left + 1, left + 1 + size)))
    return best


def summarise(rows: list[dict]) -> dict:
    """Mean per method, per kind, and RAD's margin over each baseline (mean and worst scene)."""
    methods = [k for k in rows[0] if k not in ("frame", "kind")]
    kinds = sorted({r["kind"] for r in rows})
    table = {m: {metric: float(np.mean([r[m][metric] for r in rows])) for metric in ("psnr", "ssim")}
             for m in methods}
    per_kind = {k: {m: float(np.mean([r[m]["psnr"] for r in rows if r["kind"] == k])) for m in methods}
                for k in kinds}
    margins = {}
    for comparison, (rad, baseline) in COMPARISONS.items():
        if rad in methods and baseline in methods:
            gains = [r[rad]["psnr"] - r[baseline]["psnr"] for r in rows]
            worst = int(np.argmin(gains))
            margins[comparison] = {"rad": rad, "baseline": baseline, "mean_db": float(np.mean(gains)),
                                   "worst_db": float(gains[worst]),
                                   "worst_scene": f"{rows[worst]['frame']} ({rows[worst]['kind']})",
                                   "ssim_gain": table[rad]["ssim"] - table[baseline]["ssim"]}
    return {"mean": table, "per_kind_psnr": per_kind, "rad_margin": margins}


def evaluate_crn(args, crn: Enhancer | None) -> dict:
    if crn is None:
        return {}
    folder = fast_folders(args.eval)[0]
    fast, reference = DatasetReader(folder), DatasetReader(args.eval / "reference")
    train_ref = DatasetReader(args.train / "reference")
    train_labels = [train_ref.read_labels(n) for n in train_ref.frames]
    rows: dict[str, list[dict]] = {}
    for n in fast.frames:
        target = reference.read_frame(n)["image"]
        nearest = train_ref.frames[nearest_by_labels(fast.read_labels(n), train_labels)]
        outputs = {"nearest-neighbour retrieval": train_ref.read_frame(nearest)["image"],
                   "CRN": crn.enhance(fast.read_frame(n))}
        for name, output in outputs.items():
            rows.setdefault(name, []).append(score(output, target))
        write_grid([display(x) for x in [*outputs.values(), target]], args.out / f"crn_{n:06d}.png")
    return {name: {m: float(np.mean([r[m] for r in frames])) for m in ("psnr", "ssim")}
            for name, frames in rows.items()}


def markdown(results: dict) -> str:
    lines = []
    for setting, block in results["rad"].items():
        lines += [f"### {setting} ({len(results['per_scene'][setting])} scenes; PSNR dB / SSIM on sRGB)", "",
                  "| method | PSNR | SSIM | " + " | ".join(block["per_kind_psnr"]) + " |",
                  "|---|---|---|" + "---|" * len(block["per_kind_psnr"])]
        for method, m in block["mean"].items():
            kinds = " | ".join(f"{block['per_kind_psnr'][k][method]:.2f}" for k in block["per_kind_psnr"])
            lines.append(f"| {method} | {m['psnr']:.2f} | {m['ssim']:.4f} | {kinds} |")
        for comparison, margin in block["rad_margin"].items():
            lines.append(f"\n{comparison}: {margin['rad']} − {margin['baseline']} = {margin['mean_db']:+.2f} dB on the "
                         f"mean, worst scene {margin['worst_db']:+.2f} dB (scene {margin['worst_scene']}), "
                         f"SSIM {margin['ssim_gain']:+.4f}")
        lines.append("")
    if results["crn"]:
        lines += ["### labels → image", "", "| method | PSNR | SSIM |", "|---|---|---|"]
        lines += [f"| {name} | {m['psnr']:.2f} | {m['ssim']:.4f} |" for name, m in results["crn"].items()]
    return "\n".join(lines) + "\n"


def per_scene_lines(per_scene: dict) -> str:
    lines = []
    for setting, rows in per_scene.items():
        methods = [k for k in rows[0] if k not in ("frame", "kind")]
        lines.append(f"{setting}: scene kind | " + " | ".join(methods) + " (PSNR dB)")
        for r in rows:
            lines.append(f"  {r['frame']:>3} {r['kind']:<9} " + " ".join(f"{r[m]['psnr']:7.2f}" for m in methods))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--eval", type=Path, required=True, help="make-scenes root of the held-out scenes")
    p.add_argument("--train", type=Path, help="make-scenes root of the training scenes (CRN retrieval)")
    p.add_argument("--denoise-node", type=Path,
                   help="folder with SETTING/frames/*.exr from `training.baselines.denoise_node --input noisy`")
    p.add_argument("--rad", type=Path, help="RAD model (.onnx)")
    p.add_argument("--crn", type=Path, help="CRN model (.onnx)")
    p.add_argument("--out", type=Path, required=True, help="folder for metrics.json, table.md and grids")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    rad = Enhancer.from_pretrained(args.rad, device="cpu") if args.rad else None
    crn = Enhancer.from_pretrained(args.crn, device="cpu") if args.crn and args.train else None
    per_scene = evaluate_rad(args, rad, scene_kinds(args.eval))
    results = {"models": {"rad": str(args.rad or ""), "crn": str(args.crn or "")},
               "rad": {s: summarise(rows) for s, rows in per_scene.items()},
               "crn": evaluate_crn(args, crn), "per_scene": per_scene}
    (args.out / "metrics.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (args.out / "table.md").write_text(table)
    print(per_scene_lines(per_scene))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
