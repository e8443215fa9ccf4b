"""`python -m benchmarks`: the speed and memory table (model, frame size, peak memory, add-on overhead) in one run.

For each bundled model (neural_core/models/rad.onnx, crn.onnx) and frame size: ms per frame
with ONNX Runtime and with PyTorch eager on the same weights (rebuilt from the model's
metadata, see same_weights), Blender's Denoise node on a frame of the same size with albedo
and normal, peak RSS of one Enhancer.enhance in a child process, achieved GFLOP/s against the
peak GEMM GFLOP/s measured in this run; then the add-on's overhead split, and the targets
P1-P5 with PASS/MISS. Runs alternate so that load from other jobs hits both sides alike.

    python -m benchmarks                     # full: 960x540, 1920x1080, 3840x2160 (long)
    python -m benchmarks --quick             # no 4K, one repeat
    python -m benchmarks --quick --sizes 960x540 --overhead-size 960x540   # smoke run
    python -m benchmarks --device cuda       # CUDA, fp16 (needs onnxruntime-gpu and torch CUDA)

Whole-frame runs (ORT and eager) at every size (one repeat at 3840x2160); peak RSS is that of
the add-on's own Enhancer.enhance (tiled RAD, reduced-size CRN) in a child process, whose time is
noted beside the 4K rows.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import bench_core
from .addon_overhead import time_addon_overhead
from .denoise_node import _size, time_denoise_node

MODELS = ("rad", "crn")
SIZES = ((960, 540), (1920, 1080), (3840, 2160))
UHD_PIXELS = 3840 * 2160
TARGETS = {"P1": 1.0, "P2": 1.5, "P3": 0.10, "P4": 3e9 / 2 ** 20, "P5": 0.40, "GPU": 30.0}


# ---------------------------------------------------------------------------------------------
# Machine limit
# ---------------------------------------------------------------------------------------------

def peak_gemm_gflops(device: str, sizes=(512, 1024, 2048), reps: int = 5) -> tuple[float, str]:
    """Best float32 (fp16 on CUDA) matmul GFLOP/s over numpy and torch at a few sizes."""
    import torch

    best, where = 0.0, ""
    for n in sizes:
        if device == "cpu":
            a, b = np.random.rand(n, n).astype(np.float32), np.random.rand(n, n).astype(np.float32)
            candidates = {"numpy": lambda: a @ b}
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            candidates["torch"] = lambda: torch.mm(ta, tb)
        else:
            ta = torch.rand(n * 4, n * 4, device="cuda", dtype=torch.float16)
            candidates = {"torch fp16": lambda: (torch.mm(ta, ta), torch.cuda.synchronize())}
        for name, fn in candidates.items():
            fn()
            m = n if device == "cpu" else n * 4
            for _ in range(reps):
                start = time.perf_counter()
                fn()
                gflops = 2 * m ** 3 / (time.perf_counter() - start) / 1e9
                if gflops > best:
                    best, where = gflops, f"{name} {m}x{m}"
    return best, where


# ---------------------------------------------------------------------------------------------
# One model at one size
# ---------------------------------------------------------------------------------------------

class Model:
    """A bundled model as ORT session, eager module (same weights) and FLOPs per pixel."""

    def __init__(self, kind: str, device: str, threads: int | None, tmp: Path):
        import torch

        from neural_core.export import export_onnx, exportable
        from neural_core.metadata import read_onnx_metadata
        from neural_core.networks import count_flops
        from neural_core.runtime import CPU_PROVIDER, CUDA_PROVIDER, open_session, resolve_model_path

        from .same_weights import torch_from_onnx

        self.kind, self.device = kind, device
        self.path = resolve_model_path(kind)
        self.module = torch_from_onnx(self.path)     # FromPasses: passes in, linear radiance out
        self.metadata = read_onnx_metadata(self.path)
        h, w = 256, 256
        self.flops_per_pixel = count_flops(self.module, h, w, *self.inputs(h, w)) / (h * w)
        session_path, providers = self.path, [CPU_PROVIDER]
        if device == "cuda":
            session_path = tmp / f"{kind}.fp16.onnx"
            export_onnx(self.module.network, self.metadata, session_path, fp16=True)
            providers = [CUDA_PROVIDER]
            # As the fp16 graph runs: the network in half, the passes' transforms in float.
            self.module = exportable(self.module.network, self.metadata, fp16=True).cuda()
        self.session_path = session_path
        self.session = open_session(session_path, providers, threads)   # as the add-on opens it
        torch.set_grad_enabled(False)

    def inputs(self, height: int, width: int):
        from neural_core.export import example_passes
        return example_passes(self.metadata, 1, height, width)

    def runners(self, height: int, width: int) -> dict:
        import torch

        inputs = self.inputs(height, width)
        feeds = {i.name: t.numpy() for i, t in zip(self.session.get_inputs(), inputs)}
        if self.device == "cuda":
            inputs = [t.cuda() for t in inputs]

        def eager():
            with torch.inference_mode():
                out = self.module(*inputs)
            if self.device == "cuda":
                torch.cuda.synchronize()
            return out

        return {"ort": lambda: self.session.run(None, feeds), "eager": eager}


def bench_case(model: Model, size: tuple[int, int], reps: int, threads: int | None) -> dict:
    width, height = size
    row = {"model": model.kind, "size": f"{width}x{height}",
           "gflop": model.flops_per_pixel * width * height / 1e9}
    memory = bench_core.peak_memory(model.session_path if model.device == "cuda" else model.path,
                                    (height, width), None, threads, model.device)
    row.update(peak_mib=memory["peak"], tiles=memory["tiles"], enhance_ms=memory["seconds"] * 1e3)
    if width * height >= UHD_PIXELS:
        # Whole-frame ORT and eager once each (minutes of CPU, several GB); the add-on's own run
        # (tiled RAD, reduced-size CRN) is the memory child's, reported beside them.
        how = (f"{memory['tiles']} tiles" if model.kind == "rad"
               else "CRN run at reduced size and upscaled")
        row["note"] = f"add-on Enhancer.enhance ({how}): {memory['seconds'] * 1e3:,.0f} ms"
        reps = 1
    runs = bench_core.interleaved(model.runners(height, width), reps)
    row.update(ort_ms=float(np.median(runs["ort"]["wall"])), eager_ms=float(np.median(runs["eager"]["wall"])))
    eager_out = runs["eager"]["out"]
    row["max_diff"] = float(np.abs(eager_out.float().cpu().numpy() - runs["ort"]["out"][0]).max())
    return row


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def verdict(value: float | None, target: float, lower_is_better: bool = True) -> str:
    if value is None:
        return "n/a"
    ok = value <= target if lower_is_better else value >= target
    return "PASS" if ok else "MISS"


def _ms(value: float | None) -> str:
    return "skipped" if value is None else f"{value:,.0f}"


def print_table(rows: list[dict], denoise: dict, peak: float, report) -> None:
    report(f"{'model':<5} {'size':>9} {'ORT ms':>9} {'eager ms':>9} {'P2 e/O':>7} {'Denoise ms':>10} "
           f"{'P1 R/D':>7} {'RSS MiB':>8} {'tiles':>5} {'GFLOP':>7} {'GFLOP/s':>8} {'P5 %pk':>7}")
    for r in rows:
        d = denoise.get(r["size"])
        achieved = r["gflop"] / (r["ort_ms"] / 1e3)
        p1 = f"{r['ort_ms'] / d['denoise_ms']:.2f}" if d and r["model"] == "rad" else "-"
        p2 = f"{r['eager_ms'] / r['ort_ms']:.2f}" if r["eager_ms"] else "-"
        report(f"{r['model']:<5} {r['size']:>9} {_ms(r['ort_ms']):>9} {_ms(r['eager_ms']):>9} {p2:>7} "
               f"{_ms(d['denoise_ms']) if d else 'n/a':>10} {p1:>7} {r['peak_mib']:8.0f} {r['tiles']:>5} "
               f"{r['gflop']:7.1f} {achieved:8.1f} {100 * achieved / peak:6.1f}%"
               + (f"   ({r['note']})" if r.get("note") else "")
               + (f"   max|eager-ORT| {r['max_diff']:.1e}" if "max_diff" in r else ""))


def _overhead(steps: dict) -> float:
    return steps["readback"] + steps["preprocess"] + steps["postprocess"] + steps["compositing"]


_PATHS = {
    "render_pass": ("Enhance on Render (Cycles render pass: F12, animations, blender -b)", {
        "readback": "RenderResult passes -> numpy (foreach_get into kept buffers) + the frame's pass arrays",
        "compositing": "RGBA into the Photoreal pass of the engine's own result (foreach_set)"}),
    "button": ("the Photoreal Enhance button, after a render", {
        "readback": "save_render multilayer EXR to /dev/shm {save_render:.0f} ms + exr.read_frame {read:.0f} ms",
        "compositing": "store_image: foreach_set into bpy.data.images (packed when the .blend is saved)"}),
}
_ENHANCER_STEPS = {
    "preprocess": "Enhancer: checks; the passes as graph inputs (views when the frame runs whole, crops when tiled)",
    "inference": "Enhancer: onnxruntime (the graph: pass transforms, network, decode)",
    "postprocess": "Enhancer: tile blending (none when the frame runs whole)",
}


def _overhead(steps: dict) -> float:
    return steps["readback"] + steps["preprocess"] + steps["postprocess"] + steps["compositing"]


def print_overhead(o: dict, report) -> dict[str, float | None]:
    """Both paths' steps -> {path: overhead / inference, None where it failed}."""
    report(f"add-on steps, RAD {o['width']}x{o['height']} rendered by Cycles (1 spp; Blender {o['blender']}), "
           f"median of {o['repeats']} frame(s) after the first 2:")
    ratios = {}
    for path, (title, own) in _PATHS.items():
        steps = o[path]
        if "error" in steps:
            report(f" {title}: FAILED, {steps['error']}")
            ratios[path] = None
            continue
        report(f" {title}, {steps['tiles']} tile(s):")
        facts = {"save_render": steps.get("save_render", 0.0),
                 "read": steps["readback"] - steps.get("save_render", 0.0)}
        for step in ("readback", "preprocess", "inference", "postprocess", "compositing"):
            what = own.get(step) or _ENHANCER_STEPS[step]
            report(f"  {step:<12} {steps[step]:9.1f} ms   {what.format(**facts)}")
        overhead = _overhead(steps)
        ratios[path] = overhead / steps["inference"]
        report(f"  overhead (all but inference) {overhead:.1f} ms = {100 * ratios[path]:.1f} % of inference")
        first = steps["first_frame"]
        report(f"  first frame of the process: overhead {_overhead(first):.0f} ms = "
               f"{100 * _overhead(first) / first['inference']:.1f} % of inference {first['inference']:.0f} ms")
        if steps.get("unenhanced_renders"):
            report(f"  renders that came back un-enhanced (no error) and were rendered again: "
                   f"{steps['unenhanced_renders']} (a known, unexplained fault; see README)")
        if "render_s" in steps:
            extra = steps["render_s"] - steps["plain_render_s"]
            report(f"  whole render: {steps['render_s']:.2f} s enhanced vs {steps['plain_render_s']:.2f} s "
                   f"without (+{extra:.2f} s, of which inference + overhead {(steps['inference'] + overhead) / 1e3:.2f} s; "
                   f"the rest is Cycles' own render taking longer)")
    return ratios


def summary(rows, denoise, peak, overhead_ratio, overhead_size, device, report) -> None:
    def find(model, size):
        return next((r for r in rows if r["model"] == model and r["size"] == size), None)

    hd, uhd = find("rad", "1920x1080"), find("rad", "3840x2160")
    # P1 is set at 1080p; without it (--sizes) the last size measured with both stands in.
    p1, p1_size = None, None
    for r in rows:
        if r["model"] == "rad" and r["size"] in denoise and (p1_size != "1920x1080"):
            p1, p1_size = r["ort_ms"] / denoise[r["size"]]["denoise_ms"], r["size"]
    p2 = {f"{r['model'].upper()} {r['size']}": r["eager_ms"] / r["ort_ms"] for r in rows if r["eager_ms"]}
    p5s = [r["gflop"] / (r["ort_ms"] / 1e3) / peak for r in rows if r["model"] == "rad"]
    lines = [
        ("P1", "RAD ORT / Denoise node time at 1920x1080", p1, TARGETS["P1"], True, "x"),
        ("P2", "PyTorch eager / ORT time (worst model, size)", min(p2.values()) if p2 else None,
         TARGETS["P2"], False, "x"),
        ("P3", f"overhead / inference, render pass, {overhead_size}", overhead_ratio["render_pass"],
         TARGETS["P3"], True, ""),
        ("P3", f"overhead / inference, button, {overhead_size}", overhead_ratio["button"],
         TARGETS["P3"], True, ""),
        ("P4", "peak RSS of RAD at 3840x2160 (MiB; 3 GB)", uhd["peak_mib"] if uhd else None, TARGETS["P4"], True, ""),
        ("P5", "RAD achieved / peak GEMM GFLOP/s (best size)", max(p5s) if p5s else None, TARGETS["P5"], False, ""),
    ]
    if device == "cuda":
        lines.append(("GPU", "RAD ms at 1920x1080, CUDA fp16", hd["ort_ms"] if hd else None,
                      TARGETS["GPU"], True, ""))
    report("targets (ratios taken from the runs above, side by side):")
    for name, what, value, target, lower, unit in lines:
        shown = ("not measured" if value is None
                 else f"{value:,.0f}{unit}" if value >= 100 else f"{value:.3g}{unit}")
        result = verdict(value, target, lower)
        proxy_size = {"P1": p1_size, "P3": overhead_size}.get(name)
        if value is not None and proxy_size not in (None, "1920x1080"):
            result += f" (measured at {proxy_size}, not 1080p: indicative only)"
        if name == "P2" and p2:
            result += "   " + ", ".join(f"{k} {v:.2f}x" for k, v in p2.items())
        report(f"  {name:<3} {what:<48} {shown:>12}  target {'<=' if lower else '>='} "
               f"{target:.4g}{unit}  {result}")


# ---------------------------------------------------------------------------------------------

def machine_slug() -> str:
    cpu = platform.processor() or "cpu"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1]
            break
    cpu = re.sub(r"\(r\)|\(tm\)|processor|cpu|@.*", "", cpu, flags=re.I)
    return re.sub(r"[^a-z0-9]+", "-", cpu.lower()).strip("-") + f"-{os.cpu_count()}cpu"


def check_device(device: str) -> str | None:
    """Why `device` cannot run here, or None."""
    if device != "cuda":
        return None
    import onnxruntime as ort
    import torch

    from neural_core.runtime import CUDA_PROVIDER, GPU_HELP
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU (this torch is a CPU build, or there is no GPU/driver)"
    if CUDA_PROVIDER not in ort.get_available_providers():
        return f"this onnxruntime has no CUDA provider: {GPU_HELP}"
    return None


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="skip 3840x2160, one repeat everywhere")
    parser.add_argument("--sizes", nargs="+", type=_size, help="frame sizes WxH (default: all three)")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--reps", type=int, help="timed runs per measurement (default 3; --quick 1)")
    parser.add_argument("--threads", type=int, help="CPU threads for onnxruntime (default: all)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--overhead-size", type=_size, default=(1920, 1080),
                        help="frame size of the add-on overhead run (default 1920x1080)")
    parser.add_argument("--no-denoise", action="store_true", help="skip Blender's Denoise node")
    parser.add_argument("--no-save", action="store_true", help="print only, do not write benchmarks/results/")
    args = parser.parse_args(argv)
    sizes = args.sizes or [s for s in SIZES if not (args.quick and s[0] * s[1] >= UHD_PIXELS)]
    args.sizes = sizes
    args.reps = args.reps or (1 if args.quick else 3)
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    problem = check_device(args.device)
    if problem:
        print(f"python -m benchmarks --device {args.device}: cannot run here: {problem}", file=sys.stderr)
        return 2
    import torch
    if args.threads:
        torch.set_num_threads(args.threads)

    report = bench_core.Report()
    report(f"# Photoreal Enhance benchmark: python -m benchmarks {' '.join(argv)}")
    for line in bench_core.machine_description():
        report(line)
    peak, where = peak_gemm_gflops(args.device)
    report(f"peak GEMM: {peak:.1f} GFLOP/s ({where}, best of numpy/torch at 512-2048)")
    report()
    # The add-on's overhead runs first, in a fresh Blender process on a quiet machine, as a user's
    # would: after the 4K eager runs this process holds gigabytes that glibc keeps.
    try:
        overhead = time_addon_overhead(*args.overhead_size, "rad", args.reps)
    except RuntimeError as exc:   # the table below is still worth having
        overhead = exc
    print("  ... add-on overhead done", file=sys.stderr, flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_") as tmp:
        for kind in args.models:
            model = Model(kind, args.device, args.threads, Path(tmp))
            for size in args.sizes:
                rows.append(bench_case(model, size, args.reps, args.threads))
                print(f"  ... {kind} {size[0]}x{size[1]} done", file=sys.stderr, flush=True)
            del model
    denoise = {}
    if not args.no_denoise:
        for width, height in args.sizes:
            denoise[f"{width}x{height}"] = time_denoise_node(width, height, args.reps)
    print_table(rows, denoise, peak, report)
    report("  ORT/eager: whole frame (padded to the model's multiple), median of "
           f"{args.reps} after a warm-up, alternating; RSS: one Enhancer.enhance (default tiling) "
           "in a fresh child; GFLOP: convolutions (count_flops) of that frame; GFLOP/s = GFLOP / ORT time")
    if denoise:
        d = next(iter(denoise.values()))
        report(f"  Denoise: the node alone (prefilter ACCURATE, albedo+normal; Blender {d['blender']}), "
               f"median of {args.reps}; end-to-end incl. EXR I/O: "
               + ", ".join(f"{k} {v['ms']:,.0f} ms" for k, v in denoise.items()))
    report()
    if isinstance(overhead, Exception):
        report(f"add-on overhead: FAILED: {overhead}")
        overhead_ratio = {"render_pass": None, "button": None}
    else:
        overhead_ratio = print_overhead(overhead, report)
    report()
    summary(rows, denoise, peak, overhead_ratio, f"{args.overhead_size[0]}x{args.overhead_size[1]}",
            args.device, report)
    if "rad" in args.models:   # issue 12: temporal step <= 10 % of inference at 1080p
        from .temporal import describe, time_temporal
        report("  T1  " + describe(time_temporal(*args.overhead_size, args.reps, "rad", args.threads)))
    report(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if not args.no_save:
        suffix = ("-cuda" if args.device == "cuda" else "") + ("-quick" if args.quick else "")
        path = bench_core.RESULTS / f"{dt.date.today().isoformat()}-{machine_slug()}{suffix}.txt"
        report.save(path)
        print(f"saved {path.relative_to(bench_core.ROOT)}")
    return 0
