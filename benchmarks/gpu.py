"""Every CUDA path of the project, run and timed on one GPU in one go (see scripts/gpu_check.sh).

    python -m benchmarks.gpu --out DIR [--quick] [--device cuda]

1. Inference: the bundled RAD and CRN, rebuilt in PyTorch from their ONNX files (same weights),
   at 960x540, 1920x1080 and 3840x2160 in fp32, bf16 autocast and the fp16 network of the
   `.fp16.onnx` sibling (passes and output stay fp32), plus torch.compile at 1080p. Median ms
   after warm-up timed with CUDA events, peak GPU memory, output difference against fp32.
2. The paper-size RAD (close to EPE's generator) at 960x540: time and memory.
3. Training steps in-process (ms per step, fp32 vs bf16) for the bundled RAD config.
4. The CLI on a made dataset: train-rad paired (then resumed), unpaired, train-crn, and
   torchrun --nproc_per_node=1 (NCCL), a few steps each with bf16.

ONNX Runtime's CUDA provider is not measured here (the GPU machine has the CPU build only).
Each section catches its own failure, so one broken path does not hide the others; the results
go to DIR/gpu-<date>.txt. --quick (small sizes, few steps) and --device cpu check the script
itself on a machine without a GPU.
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from .bench_core import Report

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "neural_core" / "models"
SIZES = {"960x540": (540, 960), "1920x1080": (1080, 1920), "3840x2160": (2160, 3840)}
QUICK_SIZES = {"96x64": (64, 96), "128x96": (96, 128)}


class Timer:
    """Median wall ms of a callable: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device, warmup: int, reps: int):
        self.device, self.warmup, self.reps = device, warmup, reps

    def __call__(self, fn) -> tuple[float, object]:
        for _ in range(self.warmup):
            out = fn()
        times = []
        for _ in range(self.reps):
            if self.device.type == "cuda":
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                out = fn()
                end.record()
                torch.cuda.synchronize()
                times.append(start.elapsed_time(end))
            else:
                t = time.perf_counter()
                out = fn()
                times.append((time.perf_counter() - t) * 1e3)
        return float(np.median(times)), out


def peak_mib(device: torch.device) -> str:
    if device.type != "cuda":
        return "n/a"
    return f"{torch.cuda.max_memory_allocated(device) / 2**20:,.0f} MiB"


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def machine(device: torch.device, report: Report) -> None:
    report(f"date: {dt.datetime.now().isoformat(timespec='seconds')}")
    report(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        report(f"device: {props.name}, {props.total_memory / 2**30:.0f} GiB, "
               f"{props.multi_processor_count} SMs, compute capability {props.major}.{props.minor}")
    else:
        report(f"device: CPU ({os.cpu_count()} cores) -- a dry run of the script, not a GPU figure")


# ---------------------------------------------------------------------------------------------
# 1 + 2. Inference
# ---------------------------------------------------------------------------------------------

def variants(module, metadata, device, compile_too: bool) -> dict:
    """name -> callable(inputs) for each precision of the same module."""
    from neural_core.export import exportable

    fp32 = module.to(device).eval()
    fp16 = exportable(copy.deepcopy(module.network), metadata, fp16=True).to(device).eval()

    def bf16(*x):
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return fp32(*x).float()

    runs = {"fp32": fp32, "bf16 autocast": bf16, "fp16 network (.fp16.onnx)": fp16}
    if compile_too:
        compiled = torch.compile(fp32)

        def compiled_bf16(*x):
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return compiled(*x).float()

        runs["torch.compile fp32"] = compiled
        runs["torch.compile bf16"] = compiled_bf16
    return runs


def bench_model(label: str, module, metadata, sizes: dict, compile_at: str, device, timer,
                report: Report) -> dict:
    from neural_core.export import example_passes

    report(f"{label}: {sum(p.numel() for p in module.parameters()) / 1e6:.2f} M parameters")
    report(f"  {'size':<10} {'mode':<26} {'ms/frame':>9} {'peak GPU memory':>16} "
           f"{'max |out - fp32|':>17} {'mean rel.':>9}")
    medians = {}
    for size_name, (h, w) in sizes.items():
        inputs = tuple(t.to(device) for t in example_passes(metadata, 1, h, w))
        reference = None
        for mode, fn in variants(module, metadata, device, size_name == compile_at).items():
            reset_peak(device)
            started = time.perf_counter()
            try:
                with torch.inference_mode():
                    ms, out = timer(lambda: fn(*inputs))
            except Exception as error:   # noqa: BLE001 - an unsupported mode is a result too
                report(f"  {size_name:<10} {mode:<26} failed: {type(error).__name__}: "
                       f"{str(error).splitlines()[0][:120]}")
                continue
            out = out.float()
            if reference is None:
                reference = out
            diff = (out - reference).abs()
            rel = float((diff / reference.abs().clamp_min(1e-3)).mean())
            extra = f"  (incl. compile: {time.perf_counter() - started:.0f} s)" if "compile" in mode else ""
            report(f"  {size_name:<10} {mode:<26} {ms:9.2f} {peak_mib(device):>16} "
                   f"{float(diff.max()):17.2e} {rel:9.1e}{extra}")
            medians[(size_name, mode)] = ms
        del inputs, reference
    return medians


def bench_bundled(sizes, compile_at, device, timer, report) -> dict:
    from benchmarks.same_weights import torch_from_onnx
    from neural_core.metadata import read_onnx_metadata

    results = {}
    for kind in ("rad", "crn"):
        path = MODELS / f"{kind}.onnx"
        metadata = read_onnx_metadata(str(path))
        module = torch_from_onnx(path)
        # torch.compile only for RAD: each compile costs a minute of the GPU's budget.
        results[kind] = bench_model(f"bundled {kind.upper()} ({path.name}, {metadata.trained_on[:60]})",
                                    module, metadata, sizes, compile_at if kind == "rad" else "",
                                    device, timer, report)
        report()
    return results


def bench_paper_rad(size: tuple[int, int], device, timer, report) -> None:
    from neural_core.export import exportable, metadata_for
    from neural_core.networks import RADConfig, RADNet

    network = RADNet(RADConfig.paper(gbuffer_passes=RADConfig.denoised().gbuffer_passes,
                                     image_passes=RADConfig.denoised().image_passes)).eval()
    metadata = metadata_for("rad", network.config, trained_on="untrained: benchmark")
    module = exportable(network, metadata)
    h, w = size
    bench_model("paper-size RAD (RADConfig.paper, freshly initialised)", module, metadata,
                {f"{w}x{h}": size}, "", device, timer, report)


# ---------------------------------------------------------------------------------------------
# 3. Training steps in-process
# ---------------------------------------------------------------------------------------------

def bench_train_steps(data: Path, device, steps: int, crop: int, report: Report) -> None:
    from training.options import RADOptions
    from training.trainers.rad_paired import PairedRADTrainer

    report(f"paired RAD training step (--net denoised, batch 4, crop {crop}, VGG loss on):")
    for amp in (False, True):
        with tempfile.TemporaryDirectory() as run:
            opts = RADOptions(run_dir=run, data=str(data), net="denoised", batch_size=4, crop=crop,
                              workers=0, progress=False, device=device.type, amp=amp,
                              checkpoint_every=10**6, steps=10**6)
            trainer = PairedRADTrainer(opts)
            batch = trainer.to_device(next(trainer.batches()))
            reset_peak(device)
            ms, terms = Timer(device, 3, steps)(lambda: trainer.train_step(batch))
            report(f"  {'bf16 autocast' if amp else 'fp32':<14} {ms:8.1f} ms/step   peak "
                   f"{peak_mib(device)}   loss {terms['loss']:.4f}")
            trainer.close()


# ---------------------------------------------------------------------------------------------
# 4. The CLI, as a user runs it
# ---------------------------------------------------------------------------------------------

def make_datasets(root: Path, size: tuple[int, int], frames: int) -> tuple[Path, Path]:
    """paired/{fast,reference} (fast frames carry the noisy pass) and photos/, from the tests'
    own scene and photo makers."""
    sys.path.insert(0, str(ROOT / "tests" / "training"))
    from conftest import photo, scene_frame, write_scenes
    from PIL import Image

    paired = root / "paired"
    fast = {}
    for n in range(frames):
        frame = scene_frame(n, noise=0.5, size=size)
        frame["noisy"] = scene_frame(n, noise=1.0, size=size)["image"]
        fast[n] = frame
    write_scenes(paired / "fast", fast, samples=4)
    write_scenes(paired / "reference", {n: scene_frame(n, size=size) for n in range(frames)}, samples=1024)
    photos = root / "photos"
    photos.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        Image.fromarray(photo(i, size=size)).save(photos / f"photo_{i}.png")
    return paired, photos


def cli(report: Report, label: str, args: list[str], expect: str | None = None,
        torchrun: bool = False) -> bool:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1"]
                if torchrun else [sys.executable])
    started = time.perf_counter()
    proc = subprocess.run([*launcher, "-m", "training", *args], cwd=ROOT, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                              filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))))
    seconds = time.perf_counter() - started
    log = proc.stdout + proc.stderr
    ok = proc.returncode == 0 and (expect is None or expect in log)
    report(f"  {label:<44} {'ok' if ok else 'FAILED'}  ({seconds:.0f} s, exit {proc.returncode})")
    for line in log.splitlines():
        if any(key in line for key in ("training ", "resumed", "backend", "Error", "error:", "saved")):
            report(f"      | {line.strip()[:150]}")
    if not ok:
        report("      | last lines: " + " / ".join(log.strip().splitlines()[-6:])[:900])
    return ok


def bench_cli(work: Path, device, size, frames: int, steps: int, report: Report) -> None:
    paired, photos = make_datasets(work / "data", size, frames)
    crop = str(min(size) // 2)
    common = ["--device", device.type, "--no-progress", "--batch-size", "4", "--crop", crop,
              "--workers", "2", "--log-every", "5"]
    run = str(work / "rad_paired")
    report(f"CLI on a made dataset ({frames} frames of {size[1]}x{size[0]}), bf16 autocast:")
    cli(report, f"train-rad paired --net denoised, {steps} steps",
        ["train-rad", "--data", str(paired), "--run-dir", run, "--net", "denoised",
         "--steps", str(steps), "--checkpoint-every", str(steps), *common])
    cli(report, f"  same run resumed to {2 * steps} steps",
        ["train-rad", "--run-dir", run, "--steps", str(2 * steps), "--device", device.type,
         "--no-progress"], expect=f"at step {steps}")
    cli(report, f"train-rad unpaired (--real photos), {steps} steps",
        ["train-rad", "--data", str(paired), "--real", str(photos), "--run-dir",
         str(work / "rad_unpaired"), "--net", "small", "--steps", str(steps), *common])
    cli(report, f"train-crn, {steps} steps",
        ["train-crn", "--data", str(paired / "reference"), "--run-dir", str(work / "crn"),
         "--steps", str(steps), *common])
    backend = "nccl" if device.type == "cuda" else "gloo"
    cli(report, f"torchrun --nproc_per_node=1 train-rad ({backend})",
        ["train-rad", "--data", str(paired), "--run-dir", str(work / "rad_ddp"), "--net", "denoised",
         "--steps", str(steps), *common], expect=f"backend {backend}", torchrun=True)
    cli(report, "export of the paired run (ONNX + .fp16.onnx)",
        ["export", run, "--out", str(work / "exported" / "rad.onnx"), "--fp16"])


# ---------------------------------------------------------------------------------------------

def section(report: Report, title: str, fn, *args) -> None:
    report(f"## {title}")
    started = time.perf_counter()
    try:
        fn(*args)
    except Exception:   # noqa: BLE001 - reported, and the next section still runs
        report("FAILED:\n" + traceback.format_exc())
    report(f"({title}: {time.perf_counter() - started:.0f} s)")
    report()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu-<date>.txt")
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a dry run")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few steps")
    parser.add_argument("--sections", default="all",
                        help="comma-separated subset of: inference, paper, cli, steps (default: all)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible; use --device cpu --quick to check the script itself")
    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    report = Report()
    sizes = QUICK_SIZES if args.quick else SIZES
    compile_at = "" if args.quick else "1920x1080"
    timer = Timer(device, warmup=1 if args.quick else 5, reps=2 if args.quick else 20)
    out = Path(args.out) / f"gpu-{dt.date.today().isoformat()}-{args.sections.replace(',', '-')}.txt"
    train_size = (64, 96) if args.quick else (128, 256)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        sections = {   # --sections name: (title, function, arguments)
            "machine": ("Machine", machine, device, report),
            "inference": ("Bundled models, inference", bench_bundled, sizes, compile_at, device,
                          timer, report),
            "paper": ("Paper-size RAD, inference", bench_paper_rad,
                      (64, 96) if args.quick else (540, 960), device, timer, report),
            "cli": ("CLI training on the device", bench_cli, work, device, train_size,
                    4 if args.quick else 8, 4 if args.quick else 20, report),
            "steps": ("Training step, in-process", bench_train_steps, work / "data" / "paired",
                      device, 2 if args.quick else 20, 32 if args.quick else 128, report),
        }
        wanted = set(sections) if args.sections == "all" else {"machine", *args.sections.split(",")}
        for name, (title, fn, *fn_args) in sections.items():
            if name not in wanted:
                continue
            section(report, title, fn, *fn_args)
            report.save(out)   # after each section: a run cut short keeps what it measured
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
