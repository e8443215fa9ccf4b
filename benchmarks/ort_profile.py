"""Where onnxruntime spends a bundled model's time: milliseconds per operator type in one
steady-state run (onnxruntime's own profiler), to see what keeps it from the GEMM peak.

    python -m benchmarks.ort_profile [rad|crn] [960x540] [--runs 5]

The session is opened with the add-on's settings (runtime.open_session); the first runs pay for
allocations and are left out: only the last run is reported.
"""
from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def profile(kind: str, width: int, height: int, runs: int) -> tuple[float, dict[str, float]]:
    """(ms of the last run, {operator type: kernel ms in that run})."""
    from neural_core.export import example_passes
    from neural_core.metadata import read_onnx_metadata
    from neural_core.runtime import CPU_PROVIDER, open_session, resolve_model_path

    path = resolve_model_path(kind)
    metadata = read_onnx_metadata(path)
    feeds = {name: t.numpy() for name, t in zip(metadata.input_names,
                                                example_passes(metadata, 1, height, width))}
    with tempfile.TemporaryDirectory(prefix="ort_profile_") as tmp:
        session = open_session(path, [CPU_PROVIDER], profile_prefix=str(Path(tmp) / kind))
        for _ in range(runs):
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    last_run = [e for e in events if e.get("name") == "model_run"][-1]
    by_op: dict[str, float] = collections.defaultdict(float)
    for event in events:
        if (event.get("cat") == "Node" and event["name"].endswith("_kernel_time")
                and event["ts"] >= last_run["ts"]):
            by_op[event["args"]["op_name"]] += event["dur"] / 1e3
    return last_run["dur"] / 1e3, dict(sorted(by_op.items(), key=lambda item: -item[1]))


def main(argv: list[str] | None = None) -> int:
    from .denoise_node import _size

    parser = argparse.ArgumentParser(prog="python -m benchmarks.ort_profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default="rad", choices=("rad", "crn"))
    parser.add_argument("size", nargs="?", type=_size, default=(960, 540))
    parser.add_argument("--runs", type=int, default=5, help="runs; only the last is reported")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from .bench_core import machine_description
    for line in machine_description():
        print(line)
    total, by_op = profile(args.model, *args.size, max(2, args.runs))
    kernels = sum(by_op.values())
    print(f"{args.model.upper()} {args.size[0]}x{args.size[1]}: run {total:.0f} ms, kernels {kernels:.0f} ms")
    for op, ms in by_op.items():
        print(f"  {op:<20} {ms:8.1f} ms  {100 * ms / kernels:5.1f} %")
    return 0


if __name__ == "__main__":
    sys.exit(main())
