"""The picture of docs/temporal.md's lamp trail (session 21, `drop_uncovered`): frames 2-4 of a
shot, per-frame enhancement, the filter without and with the rule, and the reference, cropped.

    .venv/bin/python scripts/temporal_lamp_trail_picture.py [--data data/temporal_heldout_k]
        [--shot 201-208] [--rows 22:38] [--columns 0:16]

Writes docs/temporal_lamp_trail_100.png (100 %) and docs/temporal_lamp_trail.png (8x, nearest
neighbour, labelled). Uses scripts/sweep_temporal.py's cache of the shots.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sweep_temporal import display, load_roots  # noqa: E402
from neural_core.temporal import TemporalFilter, TemporalSettings  # noqa: E402

LABELS = ("per-frame", "drop_uncovered off", "session 21", "512-spp reference")
SCALE = 8


def crop(text: str) -> slice:
    start, _, stop = text.partition(":")
    return slice(int(start), int(stop))


def tiles(shot: dict, rows: slice, columns: slice) -> np.ndarray:
    """(frames 2-4 of the shot) x (LABELS) crops, one white pixel apart, as one display image."""
    without, with_rule = TemporalFilter(TemporalSettings(drop_uncovered=False)), TemporalFilter()
    lines = []
    first_four = zip(shot["frames"][:4], shot["per_frame"][:4], shot["numbers"][:4])
    for t, (frame, enhanced, number) in enumerate(first_four):
        images = (display(enhanced), display(without.apply(frame, enhanced, number)),
                  display(with_rule.apply(frame, enhanced, number)), shot["references"][t])
        if t:
            lines.append(np.concatenate([np.pad(image[rows, columns], ((1, 1), (1, 1), (0, 0)), constant_values=1.0)
                                         for image in images], 1))
    return (np.clip(np.concatenate(lines, 0), 0, 1) * 255).astype(np.uint8)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="data/temporal_heldout_k")
    parser.add_argument("--shot", default="201-208")
    parser.add_argument("--rows", type=crop, default=crop("22:38"))
    parser.add_argument("--columns", type=crop, default=crop("0:16"))
    args = parser.parse_args(argv)
    found = [s for s in load_roots([args.data], "rad") if s["name"].endswith(args.shot)]
    if not found:
        raise SystemExit(f"error: no shot {args.shot!r} in {args.data}")
    picture = tiles(found[0], args.rows, args.columns)
    Image.fromarray(picture).save(ROOT / "docs" / "temporal_lamp_trail_100.png", optimize=True)
    big = Image.fromarray(picture).resize((picture.shape[1] * SCALE, picture.shape[0] * SCALE), Image.NEAREST)
    labelled = Image.new("RGB", (big.width, big.height + 16), "white")
    labelled.paste(big, (0, 16))
    for k, label in enumerate(LABELS):
        ImageDraw.Draw(labelled).text((k * big.width // len(LABELS) + 4, 2), label, fill="black")
    labelled.save(ROOT / "docs" / "temporal_lamp_trail.png", optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
