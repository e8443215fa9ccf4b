"""How the temporal filter copes with per-frame flicker that the validation shots lack (issue 12).

    .venv/bin/python scripts/temporal_robustness.py [--data ROOT ...] [--gain 0.03] [--blotch 0.03]
                                                    [--set NAME=V1,V2 ...]

On our scenes the bundled network is as steady as its input (its per-frame warping error is
0.85-1.03x that of Cycles' denoised render, low frequencies included), but on scenes it has
never seen a network may change its mind from frame to frame: a brighter or darker frame, a
colour cast that wanders. This adds such flicker to the cached per-frame images of
scripts/sweep_temporal.py (same cache, same shots): each frame is multiplied by 1 + `gain` x N(0, 1)
and by a smooth random field of `blotch` RMS (a 16-pixel grid, interpolated), drawn anew every
frame with a fixed seed. Prints, per setting, the filtered warping error as a ratio to the
reference's and the PSNR change against the (flickering) per-frame images, as sweep_temporal.py.
The default roots are the 4-spp shots: held-out sets E-J (all looked at) and the 4-spp validation pair.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep_temporal import _scores, describe, display, evaluate, load_roots, settings_grid  # noqa: E402

FOUR_SPP = tuple(f"data/temporal_heldout_{s}" for s in "efghij") + ("data/temporal_val_4spp",)
GRID = 16        # pixels between the blotch field's random values


def smooth_field(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(H, W) unit-RMS-ish random field, bilinear between values GRID pixels apart."""
    values = rng.normal(0.0, 1.0, (height // GRID + 2, width // GRID + 2))
    rows = np.linspace(0, values.shape[0] - 1.001, height)
    cols = np.linspace(0, values.shape[1] - 1.001, width)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None], cols - c0
    top = values[r0][:, c0] * (1 - fc) + values[r0][:, c0 + 1] * fc
    bottom = values[r0 + 1][:, c0] * (1 - fc) + values[r0 + 1][:, c0 + 1] * fc
    return top * (1 - fr) + bottom * fr


def with_flicker(per_frame: list[np.ndarray], gain: float, blotch: float) -> list[np.ndarray]:
    out = []
    for t, image in enumerate(per_frame):
        rng = np.random.default_rng(1000 + t)
        factor = 1.0 + gain * rng.normal() + blotch * smooth_field(rng, *image.shape[:2])[..., None]
        out.append((image * factor).astype(np.float32))
    return out


def flickering(shots: list[dict], gain: float, blotch: float) -> list[dict]:
    """The shots with the flicker added to their per-frame images (and those images' PSNR), for
    sweep_temporal.evaluate."""
    out = []
    for shot in shots:
        per_frame = with_flicker(shot["per_frame"], gain, blotch)
        scores = _scores([display(p) for p in per_frame], shot["frames"], shot["references"])
        out.append(dict(shot, per_frame=per_frame, psnr=scores["psnr"]))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=list(FOUR_SPP))
    parser.add_argument("--model", default="rad")
    parser.add_argument("--gain", type=float, default=0.03, help="RMS of each frame's brightness change")
    parser.add_argument("--blotch", type=float, default=0.03, help="RMS of each frame's smooth blotches")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2")
    args = parser.parse_args(argv)
    if args.gain < 0 or args.blotch < 0:
        raise SystemExit("error: --gain and --blotch are RMS shares, 0 or more (e.g. 0.03)")
    shots = flickering(load_roots(args.data, args.model), args.gain, args.blotch)
    for label, settings in settings_grid(args.set):
        print(describe(f"{label} (gain {args.gain}, blotch {args.blotch})", evaluate(shots, settings)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
