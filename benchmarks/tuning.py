"""The onnxruntime settings tried for the bundled models, side by side in one run.

    python -m benchmarks.tuning [--models rad crn] [--size 960x540] [--reps 3]

Variants, each against the add-on's own session (runtime.open_session):
  ORT default memory pattern  onnxruntime plans one block per input shape (the add-on turns it off)
  no NCHWc layout             graph optimisation level EXTENDED instead of ALL
  int8 convolutions           static QDQ quantisation of every Conv (per-channel int8 weights, uint8
                              activations calibrated on synthetic passes: enough for speed; quality
                              would need real frames, and is moot while it is slower)
Runs alternate between the variants so that other load hits them alike; the first two runs of
each (allocation) are reported apart from the median of the rest.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sessions(kind: str, tmp: Path) -> dict:
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from neural_core.export import example_passes
    from neural_core.metadata import read_onnx_metadata
    from neural_core.runtime import CPU_PROVIDER, open_session, resolve_model_path

    path = resolve_model_path(kind)
    metadata = read_onnx_metadata(path)

    class SyntheticPasses(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{name: t.numpy() for name, t in zip(
                metadata.input_names, example_passes(metadata, 1, 128, 256, seed=seed))} for seed in range(4)])

        def get_next(self):
            return next(self.items, None)

    int8 = tmp / f"{kind}.int8.onnx"
    quantize_static(str(path), str(int8), SyntheticPasses(), quant_format=QuantFormat.QDQ,
                    op_types_to_quantize=["Conv"], per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)

    def with_options(**settings):
        options = ort.SessionOptions()
        for name, value in settings.items():
            setattr(options, name, value)
        return ort.InferenceSession(str(path), options, providers=[CPU_PROVIDER])

    return {
        "add-on settings": open_session(path, [CPU_PROVIDER]),
        "ORT default memory pattern": with_options(),
        "no NCHWc layout": with_options(enable_mem_pattern=False,
                                        graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED),
        "int8 convolutions": open_session(int8, [CPU_PROVIDER]),
    }, metadata


def compare(kind: str, width: int, height: int, reps: int) -> list[str]:
    from neural_core.export import example_passes

    with tempfile.TemporaryDirectory(prefix="tuning_") as tmp:
        sessions, metadata = _sessions(kind, Path(tmp))
        feeds = {name: t.numpy() for name, t in zip(metadata.input_names,
                                                    example_passes(metadata, 1, height, width))}
        times: dict[str, list[float]] = {name: [] for name in sessions}
        for _ in range(2 + reps):
            for name, session in sessions.items():
                start = time.perf_counter()
                session.run(None, feeds)
                times[name].append((time.perf_counter() - start) * 1e3)
    base = statistics.median(times["add-on settings"][2:])
    lines = [f"{kind.upper()} {width}x{height}: median of {reps} after 2 first runs"]
    for name, ms in times.items():
        steady = statistics.median(ms[2:])
        lines.append(f"  {name:<28} {steady:8.0f} ms  x{steady / base:5.2f}   first runs "
                     f"{ms[0]:,.0f} + {ms[1]:,.0f} ms")
    return lines


def main(argv: list[str] | None = None) -> int:
    from .bench_core import machine_description
    from .denoise_node import _size

    parser = argparse.ArgumentParser(prog="python -m benchmarks.tuning", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["rad", "crn"], choices=("rad", "crn"))
    parser.add_argument("--size", type=_size, default=(960, 540))
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    for line in machine_description():
        print(line)
    for kind in args.models:
        for line in compare(kind, *args.size, args.reps):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
