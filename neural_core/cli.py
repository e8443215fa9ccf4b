"""`python -m neural_core`: enhance a frame, describe a model, run the demo.

    python -m neural_core enhance FRAME.exr --model rad --out OUT.exr|OUT.png [--device auto|cpu|cuda] [--tile N]
    python -m neural_core enhance 'shot/frame_####.exr' --model rad --out 'out/frame_####.exr'
        [--frames 10-20] [--no-temporal] [--no-follow-lighting]     (a sequence: see neural_core.sequence)
    python -m neural_core info MODEL.onnx|rad|crn
    python -m neural_core demo [--out out/demo_side_by_side.png] [--model rad]

EXR output keeps linear HDR values (plus the input's alpha, if it has one); PNG output goes
through the view transform documented in `neural_core.display`. User errors print one line,
`error: ...`, and exit with status 2.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from . import display, exr, limits, schema, sequence
from .errors import PhotorealError
from .metadata import UNTRAINED_WARNING
from .runtime import DEVICES, Enhancer, resolve_model_path

DEMO_FRAME = Path(__file__).resolve().parent / "assets" / "demo_frame.exr"
# Max and Diffuse Bounces the demo frame was rendered with (scripts/make_demo_frame.py: the
# corpus' fast preset), which no EXR pass holds: the demo gives them as `--bounces` would.
DEMO_LIGHT_PATHS = (3, 1)
OUTPUT_SUFFIXES = (".exr", ".png")
# Below this many tiles a progress bar is more noise than help.
PROGRESS_MIN_TILES = 4


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        _validate(args)
        return args.run(args)
    except (PhotorealError, OSError, ImportError) as exc:   # OSError: e.g. a disk that fills up
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m neural_core",
                                     description="Photoreal Enhance: run the neural render pass on EXR frames.")
    commands = parser.add_subparsers(dest="command", required=True)

    enhance = commands.add_parser("enhance", help="enhance one Blender multilayer EXR frame, or a sequence")
    enhance.add_argument("frame", type=Path, help="multilayer EXR written by Blender, or a sequence "
                                                  "pattern such as 'shot/frame_####.exr' (#### = frame number)")
    enhance.add_argument("--out", type=Path, required=True, help="output .exr (linear HDR) or .png (display sRGB); "
                                                                 "a '#' pattern for a sequence")
    enhance.add_argument("--frames", default=None, help="sequence: only frames FIRST-LAST (default: all that match)")
    enhance.add_argument("--temporal", action=argparse.BooleanOptionalAction, default=True,
                         help="sequence: blend each frame with the previous output along the Vector "
                              "pass to remove flicker (default: on; --no-temporal enhances each frame alone)")
    enhance.add_argument("--follow-lighting", action=argparse.BooleanOptionalAction, default=True,
                         help="sequence: restart the temporal history where the lighting changes, "
                              "e.g. a moving lamp or shadow (default: on; --no-follow-lighting: a "
                              "little steadier for shots whose lighting is fixed)")
    _add_model_options(enhance)
    enhance.add_argument("--view-layer", default=None, help="view layer to read (default: the first)")
    enhance.add_argument("--bounces", type=_bounces, default=None,
                         help="the render's Max Bounces (Render Properties > Light Paths), for models "
                              "that add the light a short light path misses (default: full light "
                              "paths are assumed: nothing is added)")
    enhance.set_defaults(run=_enhance)

    info = commands.add_parser("info", help="print a model's metadata and the passes it needs")
    info.add_argument("model", help="'rad', 'crn' or a path to an exported .onnx")
    info.set_defaults(run=_info)

    demo = commands.add_parser("demo", help="enhance the bundled demo frame, write input | enhanced as PNG")
    demo.add_argument("--out", type=Path, default=Path("out/demo_side_by_side.png"))
    _add_model_options(demo)
    demo.set_defaults(run=_demo)
    return parser


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="rad", help="'rad', 'crn' or a path to an exported .onnx (default: rad)")
    parser.add_argument("--device", default="auto", choices=DEVICES)
    parser.add_argument("--tile", type=int, default=None,
                        help="tile size in px for large frames (default: the runtime's; 0 = never tile)")
    parser.add_argument("--threads", type=int, default=None,
                        help=f"CPU threads, 1-{limits.MAX_THREADS}, capped at the CPU count (default: all cores)")
    parser.add_argument("--force-threads", action="store_true",
                        help="keep --threads above the CPU count")
    parser.add_argument("--exposure", type=float, default=0.0, help="exposure in stops for PNG output")


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def _enhance(args: argparse.Namespace) -> int:
    if sequence.is_pattern(args.frame) or sequence.is_pattern(args.out):
        return _enhance_sequence(args)
    _check_output(args.out, args.frame)
    frame = _with_bounces(_read_frame_quietly(args.frame, args.view_layer), args.bounces)
    enhancer = _load(args)
    rgb = _run(enhancer, frame)
    if args.out.suffix.lower() == ".exr":
        alpha = frame["alpha"][..., 0] if "alpha" in frame else None
        exr.write_rgb(args.out, rgb, alpha=alpha)
    else:
        display.save_png(args.out, display.to_display(rgb, args.exposure))
    print(f"wrote {args.out}")
    return 0


def _enhance_sequence(args: argparse.Namespace) -> int:
    source = sequence.Pattern.parse(args.frame, "input")
    output = sequence.Pattern.parse(args.out, "output")
    _check_output(args.out, args.frame)
    frames = sequence.select_frames(source, args.frames)
    enhancer = _load(args)
    print(f"sequence: {len(frames)} frame(s) {min(frames)}-{max(frames)} of {source}, temporal "
          f"filter {'on' if args.temporal else 'off'}")

    def write(path: Path, rgb: np.ndarray, frame: schema.Frame) -> None:
        if path.suffix.lower() == ".exr":
            exr.write_rgb(path, rgb, alpha=frame["alpha"][..., 0] if "alpha" in frame else None)
        else:
            display.save_png(path, display.to_display(rgb, args.exposure))

    def enhance(frame: schema.Frame) -> np.ndarray:
        return enhancer.enhance(_with_bounces(frame, args.bounces))

    counts = sequence.enhance_sequence(source, output, frames, enhance, write,
                                       temporal_on=args.temporal, view_layer=args.view_layer,
                                       follow_lighting=args.follow_lighting)
    print(f"wrote {counts['done']} frame(s) to {output}, skipped {counts['skipped']} that existed"
          + (f", history restarted {counts['history_resets']} time(s)" if args.temporal else ""))
    return 0


def _demo(args: argparse.Namespace) -> int:
    if not DEMO_FRAME.is_file():
        raise PhotorealError(f"the demo frame is missing (expected {DEMO_FRAME}); this checkout is incomplete")
    _check_output(args.out, DEMO_FRAME, suffixes=(".png",))
    frame = schema.with_light_paths(exr.read_frame(DEMO_FRAME), *DEMO_LIGHT_PATHS)
    enhancer = _load(args)
    rgb = _run(enhancer, frame)
    model_label = enhancer.kind.upper() + ("" if enhancer.is_trained else ", untrained")
    before = frame["image"] if "image" in frame else np.zeros_like(rgb)
    image = display.side_by_side(
        [display.to_display(before, args.exposure), display.to_display(rgb, args.exposure)],
        ["input (Combined)", f"enhanced ({model_label})"])
    display.save_png(args.out, image)
    print(f"wrote {args.out} (left: input, right: enhanced; view transform: sRGB Standard, "
          f"exposure {args.exposure:+g})")
    return 0


def _info(args: argparse.Namespace) -> int:
    enhancer = Enhancer.from_pretrained(args.model, device="cpu")
    meta = enhancer.metadata
    print(f"model:          {resolve_model_path(args.model)}")
    print(f"kind:           {meta.model_kind} (schema version {meta.schema_version})")
    print(f"trained on:     {meta.trained_on}")
    if not meta.is_trained:
        print(f"WARNING: {UNTRAINED_WARNING}")
    print(f"class source:   {meta.class_source}")
    print(f"grid multiple:  {meta.grid_multiple} (the graph pads to it)    images per run: {meta.num_images}")
    if meta.model_kind == "rad":
        print(f"tile overlap:   {meta.tile_overlap} px (tiles then match the whole frame)")
    print("required passes (and how to enable them in Blender):")
    for key in meta.required_passes:
        names = " / ".join(schema.pass_spec(key).blender_names) or "(render settings)"
        print(f"  {key:<15} {names:<28} {schema.enable_hint(key)}")
    if meta.gbuffer_channels:
        print(f"G-buffer channels ({len(meta.gbuffer_channels)}): {', '.join(meta.gbuffer_channels)}")
        print(f"  mean: {_floats(meta.gbuffer_mean)}")
        print(f"  std:  {_floats(meta.gbuffer_std)}")
    print(f"classes ({len(meta.classes)}): {', '.join(meta.classes)}")
    print(f"config:         {json.dumps(meta.config, sort_keys=True)}")
    print("inputs:")
    for tensor in enhancer.session.get_inputs():
        print(f"  {tensor.name:<10} {tensor.type:<16} {tensor.shape}")
    print("outputs:")
    for tensor in enhancer.session.get_outputs():
        print(f"  {tensor.name:<10} {tensor.type:<16} {tensor.shape}")
    return 0


# ---------------------------------------------------------------------------------------------

def _check_output(out: Path, source: Path, suffixes: Sequence[str] = OUTPUT_SUFFIXES) -> None:
    """Fail before any work: unknown format, or an output that would overwrite the input."""
    if out.suffix.lower() not in suffixes:
        raise PhotorealError(f"output {out} must end in {' or '.join(suffixes)}")
    if out.resolve() == Path(source).resolve():
        raise PhotorealError(f"output {out} is the input frame; choose another file name")
    limits.check_output(out)


def _validate(args: argparse.Namespace) -> None:
    """Every numeric option checked before any work, with its allowed range in the message."""
    if hasattr(args, "tile"):
        limits.check_tile(args.tile)
    if hasattr(args, "exposure"):
        limits.check_exposure(args.exposure)
    if hasattr(args, "threads"):
        args.threads, note = limits.check_threads(args.threads, args.force_threads)
        if note:
            print(f"note: {note}", file=sys.stderr)


def _read_frame_quietly(path: Path, view_layer: str | None) -> schema.Frame:
    """exr.read_frame, with what OpenEXR's C library prints about a damaged file held back: the
    one error line says it. Printed after all when the read succeeds."""
    import tempfile
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            frame = exr.read_frame(path, view_layer)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        sys.stderr.write(held.read().decode(errors="replace"))
    return frame


def _load(args: argparse.Namespace) -> Enhancer:
    enhancer = Enhancer.from_pretrained(args.model, device=args.device, tile_size=args.tile,
                                        threads=args.threads)
    print(f"model: {enhancer.kind} {enhancer.model_path}")
    print(f"trained on: {enhancer.metadata.trained_on}")
    if not enhancer.is_trained:
        print(f"WARNING: {UNTRAINED_WARNING}")
    print(f"provider: {enhancer.provider} ({enhancer.provider_reason})")
    return enhancer


def _bounces(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 1024:
        raise argparse.ArgumentTypeError(f"{value} bounces: give the render's Max Bounces, 0-1024")
    return value


def _with_bounces(frame: schema.Frame, bounces: int | None) -> schema.Frame:
    return frame if bounces is None else schema.with_light_paths(frame, bounces)


def _run(enhancer: Enhancer, frame: schema.Frame) -> np.ndarray:
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if total < PROGRESS_MIN_TILES:
            return
        if bar is None:
            from tqdm import tqdm
            bar = tqdm(total=total, unit="tile", desc="enhancing", file=sys.stderr)
        bar.update(done - bar.n)

    try:
        rgb = enhancer.enhance(frame, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for warning in enhancer.last_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    t = enhancer.last_timings
    height, width = rgb.shape[:2]
    print(f"frame: {width}x{height}, {enhancer.last_num_tiles} tile(s)")
    print(f"time: {sum(t.values()):.0f} ms (preprocess {t['preprocess']:.0f}, inference "
          f"{t['inference']:.0f}, postprocess {t['postprocess']:.0f})")
    return rgb


def _floats(values: Sequence[float]) -> str:
    return "[" + ", ".join(f"{v:.4g}" for v in values) + "]"
