"""Core benchmark: PyTorch eager vs ONNX Runtime (CPU) per 1920x1080 frame for RAD and CRN
(default configs, same weights), the runtime's overhead split, and the peak resident memory
of a tiled 3840x2160 RAD run measured in a child process.

    python -m benchmarks.bench_core [--reps 3] [--threads N] [--tile N] [--no-save]

PyTorch and ONNX Runtime runs alternate, so that other jobs on a shared machine slow both
alike; CPU time is printed beside wall time (with --threads 1 it is the least noisy measure).

Prints everything in one run and saves the same text, with a description of the machine, to
benchmarks/results/core-<date>.txt. Weights are freshly initialised: speed and memory do not
depend on them. torch is imported only in this process, never in the memory child.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from neural_core.files import write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
HD = (1080, 1920)
UHD = (2160, 3840)


class Report:
    """Prints lines as they come and keeps them for the results file."""

    def __init__(self):
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self, path: Path) -> None:
        write_text_atomic(path, "\n".join(self.lines) + "\n")


# ---------------------------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------------------------

def machine_description() -> list[str]:
    import onnxruntime as ort
    import torch

    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True).stdout.strip()
    except OSError:
        commit = "?"
    return [
        f"date: {dt.datetime.now().isoformat(timespec='seconds')}   commit: {commit}",
        f"machine: {platform.platform()}; {cpu}; {os.cpu_count()} logical CPUs; {mem_gib:.1f} GiB RAM",
        f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), onnxruntime {ort.__version__} "
        f"(providers {ort.get_available_providers()})",
        f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
        f"(other jobs share this machine; compare ratios, not absolute times)",
    ]


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def build_and_export(kind: str, out_dir: Path):
    """Default-config network (eval), its metadata and its ONNX export."""
    from neural_core.export import export_onnx, metadata_for
    from neural_core.networks import build_network

    model = build_network(kind, None).eval()
    metadata = metadata_for(kind, model.config, trained_on="untrained: benchmark")
    path = out_dir / f"{kind}.onnx"
    export_onnx(model, metadata, path)
    return model, metadata, path


def interleaved(runners: dict, reps: int) -> dict:
    """Time each runner `reps` times, alternating between them so that load from other jobs
    hits all alike. One warm-up run each first (allocations, ORT's first-run kernel choice).
    -> {name: {"wall": [ms], "cpu": [ms of this process's CPU time], "out": last result}}"""
    results = {name: {"wall": [], "cpu": [], "out": fn()} for name, fn in runners.items()}
    for _ in range(reps):
        for name, fn in runners.items():
            wall, cpu = time.perf_counter(), time.process_time()
            results[name]["out"] = fn()
            results[name]["cpu"].append((time.process_time() - cpu) * 1e3)
            results[name]["wall"].append((time.perf_counter() - wall) * 1e3)
    return results


def bench_network(kind: str, reps: int, threads: int | None, out_dir: Path, report: Report) -> None:
    import torch

    from neural_core.export import example_passes, exportable
    from neural_core.runtime import open_session

    model, metadata, path = build_and_export(kind, out_dir)
    h, w = HD
    inputs = example_passes(metadata, 1, h, w)
    module = exportable(model, metadata)   # what was exported: passes in, linear radiance out
    session = open_session(path, ["CPUExecutionProvider"], threads)   # as the add-on opens it
    feeds = {i.name: t.numpy() for i, t in zip(session.get_inputs(), inputs)}

    def run_torch():
        with torch.inference_mode():
            return module(*inputs)

    runs = interleaved({"torch": run_torch, "ort": lambda: session.run(None, feeds)}, reps)
    torch_out, ort_out = runs["torch"]["out"], runs["ort"]["out"][0]
    diff = float(np.abs(torch_out.numpy() - ort_out).max())
    wall = {name: float(np.median(r["wall"])) for name, r in runs.items()}
    cpu = {name: float(np.median(r["cpu"])) for name, r in runs.items()}
    params = sum(p.numel() for p in model.parameters())
    report(f"{kind.upper()} (default config, {params / 1e6:.2f} M parameters) at {w}x{h}")
    for name, label in (("torch", "PyTorch eager (inference_mode)"), ("ort", "ONNX Runtime CPU")):
        report(f"  {label:<31} {wall[name]:8.0f} ms/frame (CPU time {cpu[name]:6.0f} ms)   "
               f"runs {_fmt(runs[name]['wall'])}")
    report(f"  ratio PyTorch / ONNX Runtime:   {wall['torch'] / wall['ort']:8.2f}x wall, "
           f"{cpu['torch'] / cpu['ort']:.2f}x CPU time   (max |difference| of outputs {diff:.1e})")


def bench_runtime_overhead(path: Path, reps: int, threads: int | None, report: Report) -> None:
    """The Enhancer end to end on a 1080p frame: schema tensors, inference, decoding."""
    from neural_core.runtime import Enhancer

    frame = synthetic_frame(*HD)
    for tile_size, label in ((0, "whole frame"), (None, "default tiling")):
        enhancer = Enhancer.from_pretrained(path, device="cpu", tile_size=tile_size, threads=threads)
        enhancer.enhance(frame)
        totals = []
        for _ in range(reps):
            enhancer.enhance(frame)
            totals.append(dict(enhancer.last_timings))
        t = {k: float(np.median([run[k] for run in totals])) for k in totals[0]}
        report(f"  Enhancer.enhance 1920x1080, {label} ({enhancer.last_num_tiles} tile(s)): "
               f"{sum(t.values()):.0f} ms = preprocess {t['preprocess']:.0f} + inference "
               f"{t['inference']:.0f} + postprocess {t['postprocess']:.0f}")


def _fmt(times: list[float]) -> str:
    return "[" + ", ".join(f"{t:.0f}" for t in times) + "]"


# ---------------------------------------------------------------------------------------------
# Peak memory of a 4K run, in a child process (numpy + onnxruntime only)
# ---------------------------------------------------------------------------------------------

def synthetic_frame(height: int, width: int, seed: int = 0) -> dict:
    """Every pass RAD's configs need (the noisy image too), with plausible values (no torch)."""
    from neural_core import schema

    rng = np.random.default_rng(seed)
    frame = {}
    for key in ("image", "noisy", *schema.DEFAULT_GBUFFER_PASSES):
        n = schema.pass_spec(key).num_channels
        frame[key] = rng.random((height, width, n), dtype=np.float32)
    frame["image"] *= 4.0
    blocks = rng.integers(1, schema.NUM_CLASSES, (height // 64 + 1, width // 64 + 1)).astype(np.float32)
    frame["object_index"] = np.kron(blocks, np.ones((64, 64), np.float32))[:height, :width, None]
    return frame


def vm_hwm_mib() -> float:
    """Peak resident set of this process so far (Linux VmHWM), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def memory_child(model_path: str, tile_size: int | None, threads: int | None,
                 size: tuple[int, int] = UHD, device: str = "cpu") -> None:
    """Run in a fresh interpreter: load, build a frame, enhance; print peaks as JSON."""
    from neural_core.runtime import Enhancer

    enhancer = Enhancer.from_pretrained(model_path, device=device, tile_size=tile_size, threads=threads)
    after_load = vm_hwm_mib()
    frame = synthetic_frame(*size)
    after_frame = vm_hwm_mib()
    start = time.perf_counter()
    out = enhancer.enhance(frame)
    seconds = time.perf_counter() - start
    assert out.shape == (*size, 3) and np.isfinite(out).all()
    print(json.dumps({"after_load": after_load, "after_frame": after_frame, "peak": vm_hwm_mib(),
                      "tiles": enhancer.last_num_tiles, "tile_size": enhancer.tile_size,
                      "overlap": enhancer.overlap, "seconds": seconds,
                      "torch_loaded": "torch" in sys.modules}))


def peak_memory(path: Path, size: tuple[int, int], tile_size: int | None = None,
                threads: int | None = None, device: str = "cpu") -> dict:
    """One Enhancer.enhance of a (height, width) frame in a fresh child process -> dict(peak,
    after_load, after_frame (MiB), seconds, tiles, ...). Peak RSS (VmHWM) is measured inside the
    child because a forked child's ru_maxrss also counts the parent's pages from before exec."""
    cmd = [sys.executable, "-m", "benchmarks.bench_core", "--memory-child", str(path),
           "--child-size", str(size[0]), str(size[1]), "--device", device]
    if tile_size is not None:
        cmd += ["--tile", str(tile_size)]
    if threads:
        cmd += ["--threads", str(threads)]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"memory child failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def bench_peak_memory(path: Path, size: tuple[int, int], tile_size: int | None, threads: int | None,
                      report: Report) -> None:
    try:
        r = peak_memory(path, size, tile_size, threads)
    except RuntimeError as exc:
        report(f"  {str(exc).splitlines()[-1]}")
        return
    label = "untiled" if r["tile_size"] == 0 else f"tile {r['tile_size']} px, overlap {r['overlap']} px"
    report(f"RAD {size[1]}x{size[0]}, {label}: {r['tiles']} tile(s), {r['seconds']:.1f} s")
    report(f"  peak resident memory (VmHWM) {r['peak']:.0f} MiB = runtime+model {r['after_load']:.0f} "
           f"+ input frame {r['after_frame'] - r['after_load']:.0f} + inference/blending "
           f"{r['peak'] - r['after_frame']:.0f}   (torch imported: {r['torch_loaded']})")


# ---------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_core", description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=3, help="timed runs per measurement (after one warm-up)")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for onnxruntime (default: all)")
    parser.add_argument("--tile", type=int, default=None, help="tile size for the 4K run (default: the runtime's)")
    parser.add_argument("--no-save", action="store_true", help="print only, do not write benchmarks/results/")
    parser.add_argument("--memory-child", metavar="MODEL", help=argparse.SUPPRESS)
    parser.add_argument("--child-size", type=int, nargs=2, default=UHD, help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.tile, args.threads, tuple(args.child_size), args.device)
        return 0

    import torch
    if args.threads:
        torch.set_num_threads(args.threads)
    report = Report()
    report("# neural_core benchmark: PyTorch eager vs ONNX Runtime (CPU), 4K tiled memory")
    report(f"command: python -m benchmarks.bench_core {' '.join(argv if argv is not None else sys.argv[1:])}"
           f"   (ONNX Runtime threads: {args.threads or 'all cores'})")
    for line in machine_description():
        report(line)
    report()
    with tempfile.TemporaryDirectory(prefix="bench_core_") as tmp:
        for kind in ("rad", "crn"):
            bench_network(kind, args.reps, args.threads, Path(tmp), report)
            if kind == "rad":
                bench_runtime_overhead(Path(tmp) / "rad.onnx", args.reps, args.threads, report)
            report()
        bench_peak_memory(Path(tmp) / "rad.onnx", UHD, args.tile, args.threads, report)
        # For contrast: without tiles, memory grows with the frame (4K untiled needs ~4x this).
        bench_peak_memory(Path(tmp) / "rad.onnx", HD, 0, args.threads, report)
    if not args.no_save:
        path = RESULTS / f"core-{dt.date.today().isoformat()}.txt"
        report.save(path)
        print(f"saved {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
