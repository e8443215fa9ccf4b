"""Where a shot's flicker is: its warping error split by what the temporal filter did at each
pixel (issue 12; docs/temporal.md, "Session 12").

    .venv/bin/python scripts/temporal_flicker_by_class.py --data ROOT [ROOT ...] [--shot TEXT]
        [--set NAME=VALUE ...]

For every shot (or those whose name holds --shot), the error of each frame pair over the
pixels the metric counts, split into: history restarted (no tap kept, or the lighting test
restarted it: age 0), next to a motion edge, and the rest; each as its share of the pixels and
its part of the shot's ratio to the reference's warping error (the parts add up to the ratio).
Uses scripts/sweep_temporal.py's cache of the shots.

Session 12's version also split out object edges whose footprint was partly kept and clamped
pixels; it read them from the numpy filter's steps, which the compiled filter (session 14) runs
inside one kernel, and from then on printed every pixel as restarted (found in session 16). The
classes left are those the filter's record (its per-pixel age) and the Vector pass still give.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_temporal import display  # noqa: E402
from sweep_temporal import VALIDATION, _grid, load_shots  # noqa: E402
from neural_core import temporal  # noqa: E402
from training.metrics.temporal import pixel_errors  # noqa: E402

CLASSES = ("restarted", "motion edge", "rest")


def pixel_classes(age: np.ndarray, motion: np.ndarray) -> dict[str, np.ndarray]:
    """What the filter did at each pixel of a frame, from the age it recorded (0: no history)."""
    kept = age > 0
    edge = temporal.motion_edge(motion, slice(0, motion.shape[0])).reshape(age.shape) & kept
    return {"restarted": ~kept, "motion edge": edge, "rest": kept & ~edge}


def split_shot(shot: dict, settings: temporal.TemporalSettings) -> dict[str, tuple[float, float]]:
    """class -> (share of the counted pixels, part of the ratio to the reference's error)."""
    filt, outputs, ages = temporal.TemporalFilter(settings), [], []
    for frame, enhanced, number in zip(shot["frames"], shot["per_frame"], shot["numbers"]):
        outputs.append(display(filt.apply(frame, enhanced, number)))
        ages.append(filt.age.copy())
    # The warping error is the mean over pairs of each pair's mean over the counted pixels; the
    # ratio divides it by the reference's. Each class gets its pixels' part of the numerator.
    parts = {name: [0.0, 0.0] for name in CLASSES}
    frames, reference_sum = shot["frames"], 0.0
    for t in range(1, len(outputs)):
        motions = frames[t]["motion"], frames[t - 1]["motion"]
        error, mask = pixel_errors(outputs[t - 1], outputs[t], *motions)
        reference, _ = pixel_errors(shot["references"][t - 1], shot["references"][t], *motions)
        reference_sum += reference[mask].mean()
        for name, where in pixel_classes(ages[t], frames[t]["motion"]).items():
            parts[name][0] += (where & mask).sum() / mask.sum() / (len(outputs) - 1)
            parts[name][1] += error[where & mask].sum() / mask.sum()
    return {name: (share, part / reference_sum) for name, (share, part) in parts.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=list(VALIDATION))
    parser.add_argument("--model", default="rad")
    parser.add_argument("--shot", default="", help="only shots whose name holds this text")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a TemporalSettings field other than its default")
    args = parser.parse_args(argv)
    settings = dataclasses.replace(temporal.TemporalSettings(), **_grid(args.set)[0])
    for shot in load_shots(args.data, args.model):
        if args.shot not in shot["name"]:
            continue
        parts = split_shot(shot, settings)
        total = sum(part for _, part in parts.values())
        print(f"{shot['name']}: {total:.2f}x the reference's warping error; "
              + ", ".join(f"{name} {share:.0%} of the pixels, {part:.2f}x" for name, (share, part) in parts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
