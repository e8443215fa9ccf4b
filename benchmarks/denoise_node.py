"""Blender's Denoise compositor node (OpenImageDenoise) per frame, the speed baseline for RAD.

    python -m benchmarks.denoise_node 960x540 1920x1080 [--repeats 3]
    .venv313/bin/python -m benchmarks.denoise_node 960x540       # the same under Blender 5.x

Each size runs in a fresh interpreter (training.baselines.denoise_node.DenoiseNode on a
synthetic frame with albedo and normal), so its peak resident memory is its own. The tree is
built and run once on a tiny frame before timing. Reported, as medians of the repeats:

    ms            one frame end to end: write the 3 input EXRs, composite, read the output
    denoise_ms    the Denoise node itself: composite minus the same composite with the node muted
    overhead_ms   everything else (EXR write and read-back, compositor pipeline): ms - denoise_ms
    cpu_ms        CPU time of that frame summed over threads (wall time on an idle machine is
                  about cpu_ms / cores used)
    peak_rss_mb   the child's peak resident memory (VmHWM), bpy included; base_rss_mb before
                  the first frame
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from .bench_core import ROOT, synthetic_frame, vm_hwm_mib


def _median_ms(seconds: list[float]) -> float:
    return round(1000 * statistics.median(seconds), 1)


def _cpu_seconds() -> float:
    """CPU time of this process, all threads: less sensitive to other jobs than wall time."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(width: int, height: int, repeats: int = 3, prefilter: str = "ACCURATE") -> dict:
    """Time the Denoise node in this process (imports bpy)."""
    from addon import blender_api

    from training.baselines.denoise_node import DenoiseNode

    frame = synthetic_frame(height, width)
    base_rss = vm_hwm_mib()
    total, cpu, write, composite, read, muted = [], [], [], [], [], []
    with DenoiseNode(prefilter=prefilter) as node:
        node(synthetic_frame(48, 64))                 # warm-up (tree, images, OIDN start-up), cheaply
        for _ in range(repeats):
            c0, t0 = _cpu_seconds(), time.perf_counter()
            node.write_inputs(frame)
            t1 = time.perf_counter()
            node.composite()
            t2 = time.perf_counter()
            node.read_output()
            t3 = time.perf_counter()
            total.append(t3 - t0), write.append(t1 - t0), composite.append(t2 - t1), read.append(t3 - t2)
            cpu.append(_cpu_seconds() - c0)
        node.denoise.mute = True                      # the same tree, Denoise passes the image through
        for _ in range(repeats):
            node.write_inputs(frame)                  # so the images are re-read, as above
            t0 = time.perf_counter()
            node.composite()
            muted.append(time.perf_counter() - t0)
    ms = _median_ms(total)
    denoise_ms = round(_median_ms(composite) - _median_ms(muted), 1)
    return {"width": width, "height": height, "repeats": repeats, "prefilter": prefilter, "ms": ms,
            "denoise_ms": denoise_ms, "overhead_ms": round(ms - denoise_ms, 1),
            "cpu_ms": _median_ms(cpu),
            "write_ms": _median_ms(write), "composite_ms": _median_ms(composite),
            "muted_composite_ms": _median_ms(muted), "read_ms": _median_ms(read),
            "peak_rss_mb": round(vm_hwm_mib(), 1), "base_rss_mb": round(base_rss, 1),
            "blender": blender_api.VERSION_STRING, "load_avg": [round(v, 2) for v in os.getloadavg()]}


def time_denoise_node(width: int, height: int, repeats: int = 3, prefilter: str = "ACCURATE",
                      python: str = sys.executable) -> dict:
    """Measure the Denoise node at width x height in a fresh `python` (a venv with bpy).

    `prefilter` ACCURATE (Blender's default) also denoises the albedo and normal passes, i.e.
    runs the network three times; NONE runs it once, for clean guide passes.

    Returns dict(ms, denoise_ms, overhead_ms, peak_rss_mb, ...), see the module docstring.
    """
    cmd = [python, "-m", "benchmarks.denoise_node", "--child", f"{width}x{height}",
           "--repeats", str(repeats), "--prefilter", prefilter]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the Denoise node benchmark failed at {width}x{height}:\n"
                           f"{result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are WIDTHxHEIGHT, e.g. 1920x1080, not {text!r}") from None
    return width, height


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.denoise_node", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", type=_size, default=[(960, 540), (1920, 1080)])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prefilter", choices=("NONE", "FAST", "ACCURATE"), default="ACCURATE")
    parser.add_argument("--child", type=_size, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*args.child, repeats=args.repeats, prefilter=args.prefilter)))
        return 0
    print(f"Blender Denoise node (OIDN, HDR, prefilter {args.prefilter}), median of {args.repeats}; "
          f"{os.cpu_count()} CPUs, load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'size':>10} {'ms/frame':>9} {'denoise':>9} {'overhead':>9} {'(write':>7} {'pipeline':>8} "
          f"{'read)':>6} {'CPU ms':>8} {'peak RSS':>9}")
    for width, height in args.sizes:
        r = time_denoise_node(width, height, args.repeats, args.prefilter)
        print(f"{width}x{height:<5} {r['ms']:9.0f} {r['denoise_ms']:9.0f} {r['overhead_ms']:9.0f} "
              f"{r['write_ms']:7.0f} {r['muted_composite_ms']:8.0f} {r['read_ms']:6.0f} {r['cpu_ms']:8.0f} "
              f"{r['peak_rss_mb']:6.0f} MB   (Blender {r['blender']}, load {r['load_avg'][0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
