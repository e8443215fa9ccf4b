"""Where a shot's flicker is: its warping error split by what the temporal filter did at each
pixel (issue 12; docs/temporal.md, "Session 12").

    .venv/bin/python scripts/temporal_flicker_by_class.py --data ROOT [ROOT ...] [--shot TEXT]
        [--set NAME=VALUE ...]

For every shot (or those whose name holds --shot), the error of each frame pair over the
pixels the metric counts, split into: history restarted (no tap kept), next to a motion edge,
footprint partly kept (object edges), clamped (history moved by more than 0.002), and the rest;
each as its share of the pixels and its part of the shot's ratio to the reference's warping
error (the parts add up to the ratio). Uses scripts/sweep_temporal.py's cache of the shots.
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

CLASSES = ("restarted", "motion edge", "partly kept", "clamped", "rest")


class RecordingFilter(temporal.TemporalFilter):
    """The filter, keeping per pixel of the last frame what it did (one band at a time: run
    it with one thread)."""

    def apply(self, frame, enhanced, number, key=None):
        pixels = enhanced.shape[0] * enhanced.shape[1]
        self.seen = {name: np.zeros(pixels, np.float32) for name in ("kept", "share", "clamp_move")}
        return super().apply(frame, enhanced, number, key)

    def _reproject(self, frame, rows, below):
        result = super()._reproject(frame, rows, below)
        band = slice(rows.start * self.size[1], rows.stop * self.size[1])
        self.seen["kept"][band], self.seen["share"][band] = result[1], np.minimum(result[2], 1.0)
        return result

    def _clamp(self, history, current, rows, out):
        super()._clamp(history, current, rows, out)
        band = slice(rows.start * current.shape[2], rows.stop * current.shape[2])
        self.seen["clamp_move"][band] = np.abs(out - history).max(axis=0)


def pixel_classes(seen: dict, motion: np.ndarray) -> dict[str, np.ndarray]:
    shape = motion.shape[:2]
    kept, share, moved = (seen[name].reshape(shape) for name in ("kept", "share", "clamp_move"))
    edge = temporal.motion_edge(motion, slice(0, shape[0])) & (kept > 0)
    partly = (share < 0.999) & ~edge & (kept > 0)
    rest = (kept > 0) & ~edge & ~partly
    return {"restarted": kept == 0, "motion edge": edge, "partly kept": partly,
            "clamped": rest & (moved > 0.002), "rest": rest & (moved <= 0.002)}


def split_shot(shot: dict, settings: temporal.TemporalSettings) -> dict[str, tuple[float, float]]:
    """class -> (share of the counted pixels, part of the ratio to the reference's error)."""
    filt, outputs, seen = RecordingFilter(settings), [], []
    for frame, enhanced, number in zip(shot["frames"], shot["per_frame"], shot["numbers"]):
        outputs.append(display(filt.apply(frame, enhanced, number)))
        seen.append(filt.seen)
    # The warping error is the mean over pairs of each pair's mean over the counted pixels; the
    # ratio divides it by the reference's. Each class gets its pixels' part of the numerator.
    parts = {name: [0.0, 0.0] for name in CLASSES}
    frames, reference_sum = shot["frames"], 0.0
    for t in range(1, len(outputs)):
        motions = frames[t]["motion"], frames[t - 1]["motion"]
        error, mask = pixel_errors(outputs[t - 1], outputs[t], *motions)
        reference, _ = pixel_errors(shot["references"][t - 1], shot["references"][t], *motions)
        reference_sum += reference[mask].mean()
        for name, where in pixel_classes(seen[t], frames[t]["motion"]).items():
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
    temporal.shutdown()
    temporal._POOL.append(temporal.ThreadPoolExecutor(max_workers=1))   # one band at a time
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
