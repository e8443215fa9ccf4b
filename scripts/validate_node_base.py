"""Which denoised image should RAD start from on a render made with Cycles' denoiser off?
Measured on the validation scenes (never the held-out ones).

The button has two choices for such a render: render it again with the denoiser on (RAD then
starts from Cycles' denoised render), or denoise it with Blender's Denoise node (RAD starts from
the node's output, the render is its noisy image: schema.on_denoised). Per validation scene
and fast setting this prints the PSNR (display images, dB) of Cycles' denoised render, the
Denoise node, RAD on each, and the margins: RAD on the node against the node is the issue's
"denoiser off" comparison.

    for root in corpus2/val corpus2_closeup/val corpus2_val2 corpus2_studio/val; do
      for s in 4spp-1b 16spp-12b; do
        .venv/bin/python -m training.baselines.denoise_node --data data/$root/fast-$s \
            --out runs/val_node/${root//\\//_}/$s --input noisy
      done
    done
    .venv/bin/python scripts/validate_node_base.py [--rad MODEL] [--node runs/val_node]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from calibrate_residual import DEFAULT_VAL  # noqa: E402
from evaluate_default_models import fast_folders, read_rgb, setting_of, without_denoiser  # noqa: E402
from neural_core.dataset_format import DatasetReader  # noqa: E402
from neural_core.runtime import Enhancer  # noqa: E402
from training.evaluate import display  # noqa: E402
from training.metrics.image import psnr  # noqa: E402

COLUMNS = ("denoised render", "Denoise node", "RAD on the denoised render", "RAD on the node")
MARGINS = (("RAD on the node", "Denoise node"), ("RAD on the denoised render", "Denoise node"),
           ("RAD on the node", "RAD on the denoised render"))


def scores(model: Enhancer, root: Path, node_root: Path) -> dict[str, list]:
    """{setting: [(scene, {column: PSNR})]} for one validation root."""
    reference, rows = DatasetReader(root / "reference"), {}
    node_dir = node_root / str(root.relative_to("data")).replace("/", "_")
    for folder in fast_folders(root):
        setting, fast = setting_of(folder), DatasetReader(folder)
        for n in [n for n in fast.frames if n in reference.frames]:
            frame, target = fast.read_frame(n), display(reference.read_frame(n)["image"])
            node = read_rgb(node_dir / setting / "frames" / f"{n:06d}.exr")
            outputs = (frame["image"], node, model.enhance(frame),
                       model.enhance(without_denoiser(frame, node)))
            rows.setdefault(setting, []).append(
                (f"{root} {n}", {c: psnr(display(o), target) for c, o in zip(COLUMNS, outputs)}))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rad", default="rad", help="RAD model (default: the bundled one)")
    p.add_argument("--val", nargs="+", default=list(DEFAULT_VAL))
    p.add_argument("--node", type=Path, default=Path("runs/val_node"),
                   help="Denoise node outputs: NODE/<root with / as _>/<setting>/frames/")
    args = p.parse_args(argv)
    model = Enhancer.from_pretrained(args.rad, device="cpu")
    rows: dict[str, list] = {}
    for root in map(Path, args.val):
        for setting, found in scores(model, root, args.node).items():
            rows.setdefault(setting, []).extend(found)
    for setting, found in rows.items():
        print(f"== {setting}: {len(found)} scenes; PSNR dB: " + " | ".join(COLUMNS))
        for scene, s in found:
            print(f"  {scene:28s} " + " ".join(f"{s[c]:7.2f}" for c in COLUMNS))
        print("  mean" + " " * 25 + " ".join(f"{np.mean([s[c] for _, s in found]):7.2f}" for c in COLUMNS))
        for a, b in MARGINS:
            gains = np.array([s[a] - s[b] for _, s in found])
            print(f"  {a} − {b}: mean {gains.mean():+.2f}, worst {gains.min():+.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
