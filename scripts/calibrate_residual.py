"""Choose RAD's residual scale on validation scenes (never the held-out ones).

RAD on top of Cycles' denoiser returns the denoised image plus a residual (encoded domain). Where
the network is unsure whether light is missing, a full-size residual wins on most scenes and
loses on a few; a smaller one trades a little mean for the worst scene. This runs the model once
per validation frame, scales its residual by each candidate (what `training export
--residual-scale S` bakes into the weights, up to the clamp at zero), and prints, per scale and
fast setting, the PSNR gain over the denoised render on display images: mean and worst scene.

    .venv/bin/python scripts/calibrate_residual.py runs/RUN/rad.onnx \
        --val data/corpus2/val data/corpus2_closeup/val data/corpus2_val2 data/corpus2_studio/val

It recommends the largest mean gain (averaged over the settings) whose worst scene in every
setting is at most --worst-limit dB below the denoised render; if no scale keeps to that, the
scale with the best worst scene. With --by-bounces it recommends one scale for the renders
with every bounce (nothing missing to add) and one for the others (`training export
--residual-scale LOW --full-bounce-scale FULL`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from evaluate_default_models import fast_folders, setting_of  # noqa: E402
from neural_core import schema  # noqa: E402
from neural_core.dataset_format import DatasetReader  # noqa: E402
from neural_core.runtime import Enhancer  # noqa: E402
from training.evaluate import display  # noqa: E402
from training.metrics.image import psnr  # noqa: E402

DEFAULT_VAL = ("data/corpus2/val", "data/corpus2_closeup/val", "data/corpus2_val2", "data/corpus2_studio/val")
DEFAULT_SCALES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def gains(model: Enhancer, roots, scales, full_bounce: dict | None = None) -> dict[str, np.ndarray]:
    """{setting: (scenes, scales) PSNR of the scaled output minus the denoised render's}.
    `full_bounce`, if given, receives {setting: whether its renders have every bounce}."""
    rows: dict[str, list] = {}
    for root in map(Path, roots):
        reference = DatasetReader(root / "reference")
        for folder in fast_folders(root):
            fast, setting = DatasetReader(folder), setting_of(folder)
            for n in [n for n in fast.frames if n in reference.frames]:
                frame = fast.read_frame(n)
                target = display(reference.read_frame(n)["image"])
                denoised = schema.encode_radiance(np.array(frame["image"][..., :3], np.float32))
                residual = schema.encode_radiance(model.enhance(frame)) - denoised
                base = psnr(display(frame["image"][..., :3]), target)
                if full_bounce is not None and "bounces" in frame:
                    full_bounce[setting] = bool(frame["bounces"].min() >= 1.0)
                rows.setdefault(setting, []).append(
                    [psnr(display(schema.decode_radiance(denoised + s * residual)), target) - base
                     for s in scales])
    return {setting: np.array(values) for setting, values in rows.items()}


def recommend(table: dict[str, np.ndarray], scales, worst_limit: float) -> float:
    mean = np.mean([g.mean(0) for g in table.values()], axis=0)
    worst = np.min([g.min(0) for g in table.values()], axis=0)
    allowed = worst >= -worst_limit
    return float(scales[int(np.argmax(np.where(allowed, mean, -np.inf)))] if allowed.any()
                 else scales[int(np.argmax(worst))])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="RAD model (.onnx) exported with residual scale 1")
    parser.add_argument("--val", nargs="+", default=list(DEFAULT_VAL), help="make-scenes roots")
    parser.add_argument("--scales", nargs="+", type=float, default=list(DEFAULT_SCALES))
    parser.add_argument("--worst-limit", type=float, default=0.3,
                        help="dB the worst scene may lose against the denoised render")
    parser.add_argument("--by-bounces", action="store_true",
                        help="one scale for renders with every bounce, one for the others")
    args = parser.parse_args(argv)
    missing = [root for root in args.val if not (Path(root) / "reference").is_dir()]
    if missing:
        parser.error(f"no validation scenes in {', '.join(missing)}: render them with "
                     f"scripts/make_default_corpus.sh, or name other roots with --val")
    full_bounce: dict[str, bool] = {}
    table = gains(Enhancer.from_pretrained(args.model, device="cpu"), args.val, args.scales, full_bounce)
    print("PSNR gain over the denoised render, dB: mean / worst scene")
    print("scale  " + "  ".join(f"{setting:>17}" for setting in table))
    for i, scale in enumerate(args.scales):
        cells = (f"{g[:, i].mean():+8.2f} / {g[:, i].min():+5.2f}" for g in table.values())
        print(f"{scale:5.2f}  " + "  ".join(cells))
    limit = f"(worst scene at most {args.worst_limit} dB below the denoised render)"
    if not args.by_bounces:
        print(f"recommended --residual-scale {recommend(table, args.scales, args.worst_limit):g} {limit}")
        return 0
    groups = {full: {k: v for k, v in table.items() if full_bounce.get(k) == full} for full in (False, True)}
    if not all(groups.values()):
        parser.error("--by-bounces needs validation renders both with every bounce and with fewer")
    low, full = (recommend(groups[f], args.scales, args.worst_limit) for f in (False, True))
    print(f"recommended --residual-scale {low:g} --full-bounce-scale {full:g} {limit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
