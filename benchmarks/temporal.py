"""Cost of the temporal step (neural_core.temporal) against the network's inference.

    python -m benchmarks.temporal [1920x1080 ...] [--reps 5] [--model rad]

Per size: the bundled model's Enhancer.enhance and TemporalFilter.apply on a synthetic shot of
plausible passes (a camera pan, a block of another object id moving faster, fresh noise in
every frame, a small lamp in every band of rows; the Vector pass says how everything moves), alternating so that load from other
jobs hits both alike; medians after a warm-up. Target (issue 12): temporal step <= 10 % of
inference at 1080p.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from neural_core import schema
from neural_core.runtime import Enhancer
from neural_core.temporal import TemporalFilter, TemporalSettings, settings_for

TARGET = 0.10
# What each step costs: the filter without it, timed in the same runs.
WITHOUT = {"pre-sharpened record": TemporalSettings(presharpen=0.0),
           "noise bound": TemporalSettings(noise_bound=0.0),
           "emitter range": TemporalSettings(emitter_radius=0),
           "lighting test": settings_for(False),
           "uncovered test": TemporalSettings(drop_uncovered=False),
           "clean render cap": TemporalSettings(full_history_noise=0.0),
           "noise headroom": TemporalSettings(noise_headroom=0.0)}


def synthetic_frame(height: int, width: int, t: int, required) -> schema.Frame:
    """Frame t of the shot: the background pans 3.3 px right and 1.2 px down per frame, a block
    (object id 14, nearer) moves 8 px right; each carries its own pattern, and the Vector pass
    says exactly that (docs/temporal.md's convention)."""
    rng = np.random.default_rng(t)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    block = slice(height // 3, height // 2), slice(width // 4 + 8 * t, width // 2 + 8 * t)
    pattern = 0.5 + 0.4 * np.sin((xx - 3.3 * t) / 40.0)
    pattern[block] = 0.5 + 0.4 * np.sin((xx[block] - 8.0 * t) / 10.0)
    frame = {}
    for key in required:
        n = schema.pass_spec(key).num_channels
        frame[key] = np.repeat(pattern[..., None], n, -1)
    frame["image"] = frame["image"] * rng.uniform(0.8, 1.2, (height, width, 1)).astype(np.float32)
    if "emission" in frame:      # small lamps, one in every band of rows (the emitter range's worst case)
        frame["emission"] = np.zeros_like(frame["emission"])
        for row in range(8, height, 64):
            frame["emission"][row:row + 3, width // 3:width // 3 + 3] = 6.0
    depth = 5.0 + (yy - 1.2 * t) / height * 20.0
    depth[block] = 3.0
    frame["depth"] = depth[..., None].astype(np.float32)
    normal = np.zeros((height, width, 3), np.float32)
    normal[..., 2] = 1.0
    frame["normal"] = normal
    ids = np.full((height, width, 1), 1.0, np.float32)
    ids[block] = 14.0
    frame["object_index"] = ids
    motion = np.empty((height, width, 4), np.float32)
    motion[..., 0:2] = (-3.3, 1.2)     # XY: 3.3 px to the left and 1.2 px higher at t - 1
    motion[..., 2:4] = (-3.3, 1.2)     # ZW: 3.3 px to the right and 1.2 px lower at t + 1
    motion[block] = (-8.0, 0.0, -8.0, 0.0)
    frame["motion"] = motion
    # Channel-first in memory, as the frames that Blender and the EXR reader give.
    return {key: np.ascontiguousarray(value.transpose(2, 0, 1)).transpose(1, 2, 0) for key, value in frame.items()}


def time_temporal(width: int, height: int, reps: int = 5, model: str = "rad",
                  threads: int | None = None) -> dict:
    enhancer = Enhancer.from_pretrained(model, device="cpu", threads=threads)
    required = [k for k in enhancer.metadata.required_passes if k not in ("motion",)]
    # The default filter and the same without one of its steps each. The default runs right
    # after the inference, as in a render: whatever runs there would pay for ONNX Runtime's
    # threads if they still spun (runtime.open_session stops them; docs/temporal.md).
    filters = {"default": TemporalFilter(), **{name: TemporalFilter(settings) for name, settings in WITHOUT.items()}}
    inference, step = [], {name: [] for name in filters}
    for rep in range(reps + 1):        # the first round is a warm-up
        frame = synthetic_frame(height, width, rep, required)
        start = time.perf_counter()
        rgb = enhancer.enhance(frame)
        inference.append(time.perf_counter() - start)
        for name, filt in filters.items():
            filt.apply(frame, rgb, rep + 1)
            step[name].append(filt.last_ms / 1e3)
            if rep and filt.last_reset:
                raise RuntimeError(f"the benchmark's history was reset: {filt.last_reset}")
    inference_ms = np.median(inference[1:]) * 1e3
    steps_ms = {name: float(np.median(times[1:]) * 1e3) for name, times in step.items()}
    return {"size": f"{width}x{height}", "inference_ms": float(inference_ms),
            "temporal_ms": steps_ms.pop("default"), "without_ms": steps_ms,
            "history_fraction": filters["default"].last_history_fraction}


def describe(row: dict) -> str:
    ratio = row["temporal_ms"] / row["inference_ms"]
    verdict = "PASS" if ratio <= TARGET else "MISS"
    without = "; ".join(f"without the {name} {ms:.0f} ms = {ms / row['inference_ms']:.1%}"
                        for name, ms in row["without_ms"].items())
    return (f"temporal step {row['size']}: {row['temporal_ms']:.0f} ms vs inference "
            f"{row['inference_ms']:.0f} ms = {ratio:.1%} (target <= {TARGET:.0%}: {verdict}; "
            f"{row['history_fraction']:.0%} of the pixels with history; {without})")


def _size(text: str) -> tuple[int, int]:
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.temporal", description=__doc__.split("\n\n")[0])
    parser.add_argument("sizes", nargs="*", type=_size, default=[(1920, 1080)])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--model", default="rad")
    args = parser.parse_args(argv)
    for width, height in args.sizes:
        print(describe(time_temporal(width, height, args.reps, args.model)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
