"""make-scenes: generate paired fast/reference renders of procedural scenes.

    python -m training make-scenes --count 100 --out data/scenes --seed 10000
    python -m training.make_scenes --count 100 --out data/scenes --seed 10000   # same thing

Scene i (frame id i) is of kind kinds[i % len(kinds)] and is drawn from seed `seed + i`. It is
rendered twice through the add-on's dataset exporter (addon/dataset_export.py), into

    OUT/fast/        few samples, few bounces (RAD's input)
    OUT/reference/   many samples, full bounces (RAD's target)
    OUT/scenes.json  kind, seed, objects, classes and render seconds of every scene id

each in the neural_core.dataset_format layout (manifest.json, frames/, image/, gbuffers/,
labels/, list.txt). A re-run skips scenes whose two frames are complete, so a killed run
resumes where it stopped. Denoisers are off in both renders.

With --sequence N every scene is a short shot instead of one frame: frames
i*SEQUENCE_STRIDE+1 .. i*SEQUENCE_STRIDE+N, the camera and at least one object moving
(training/scenes/sequence.py), rendered with an animated noise seed as users render animations;
fast and reference renders of every frame. `training evaluate` then measures the warping error
of each shot (frames of different shots are never consecutive). With --fast-engine eevee the
fast render is EEVEE's (as an EEVEE user's frames come: no denoiser, no noisy image) and the
reference is still Cycles'.

Seed ranges keep data sets disjoint: tests use seeds below 1000, training corpora 10000-19999,
held-out evaluation 20000 and up.

Needs the `bpy` module (Blender 4.5 or 5.x); imported only when scenes are made.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]
SCENES_FILE = "scenes.json"
DEFAULT_KINDS = ("street", "interior", "tabletop")
DEFAULT_RESOLUTION = (256, 128)
SEED_RANGES = {"tests": (0, 1000), "training": (10_000, 20_000), "evaluation": (20_000, None)}
# Settings that must stay the same when a run resumes into an existing OUT.
RESUME_KEYS = ("base_seed", "kinds", "resolution", "presets")
# --sequence: scene i's frames start at i * SEQUENCE_STRIDE + 1 (at most SEQUENCE_STRIDE - 1 long).
SEQUENCE_STRIDE = 100


class MakeScenesError(Exception):
    """OUT holds a run with other settings, or an argument is invalid."""


def make_scenes(count: int, out_dir, seed: int = 0, kinds: Sequence[str] = DEFAULT_KINDS,
                resolution: tuple[int, int] = DEFAULT_RESOLUTION, fast_samples: int | None = None,
                reference_samples: int | None = None, progress: bool = True,
                blender_log: bool = False, device: str = "CPU", fast: Sequence[str] = ("random",),
                reference_denoise: bool = True, sequence: int = 0,
                fast_bounces: tuple[int, int] | None = None, fast_engine: str = "cycles") -> dict:
    """Generate scenes 0..count-1 into `out_dir`; returns the scenes.json content.

    `fast` names the fast renders of every scene: 'random' (OUT/fast/, each scene draws 1-64 spp
    and 1-12 bounces from its seed, training.scenes.draw_fast_preset) and/or fixed settings such
    as '4spp-1b' (OUT/fast-4spp-1b/). Every fast render runs Cycles' denoiser and stores the
    noisy image, so it holds both what a user sees with the denoiser on and off.
    `fast_samples` fixes the samples of the 'random' render, `fast_bounces` (lo, hi) narrows its
    bounce draw (e.g. (1, 3): renders that miss light, for a corpus of those); `reference_samples` /
    `reference_denoise` override the reference preset (held-out sets: 512+ raw samples).
    Blender's own render log is silenced unless `blender_log`. `device` 'GPU' renders with
    Cycles on the GPU(s) (CUDA/OptiX/...). `sequence` N > 1 renders every scene as an N-frame
    shot (see the module docstring). `fast_engine` 'eevee' renders the fast render (OUT/fast/
    only) with EEVEE at the fast samples, without a denoiser or noisy image, as an EEVEE user's
    frames come; the reference stays Cycles.
    """
    import bpy
    from tqdm import tqdm

    from addon import blender_api
    from training import scenes

    kinds = _check_kinds(kinds, scenes.KINDS)
    renders = _render_plan(scenes, fast, fast_samples, reference_samples, reference_denoise, fast_engine)
    fast_bounces = _check_bounce_range(fast_bounces or scenes.FAST_BOUNCE_RANGE)
    _warn_on_seed_ranges(seed, count)
    if sequence and not 1 < sequence < SEQUENCE_STRIDE:
        raise MakeScenesError(f"--sequence must be 2..{SEQUENCE_STRIDE - 1} frames, not {sequence}")
    if device.upper() == "GPU":
        scenes.blender_compat.enable_gpu_devices()  # fail before anything is written

    out = Path(out_dir)
    record = _open_record(out, {
        "base_seed": int(seed), "kinds": list(kinds), "resolution": [int(v) for v in resolution],
        "presets": {name: _preset_dict(p, fast_bounces, fast_engine) for name, p in renders.items()},
        "blender": blender_api.VERSION_STRING, "scenes": {}, **({"sequence": sequence} if sequence else {})})
    export_frames = _exporter()
    done = {name: _complete_ids(out / name) for name in renders}

    bar = tqdm(range(count), desc="make-scenes", unit="scene", disable=not progress)
    for index in bar:
        kind, scene_seed = kinds[index % len(kinds)], seed + index
        ids = frame_ids(index, sequence)
        todo = [name for name in renders if not set(ids) <= done[name]]
        if not todo:
            if str(index) not in record["scenes"]:  # killed after rendering, before recording
                record["scenes"][str(index)] = {"kind": kind, "seed": scene_seed}
                _save_record(out, record)
            bar.set_postfix_str(f"{index}: {kind} {scene_seed} done before")
            continue
        entry = record["scenes"].get(str(index), {})
        entry.update(scenes.build_scene(kind, scene_seed, resolution, frame=ids[0]))
        if sequence:
            from training.scenes.sequence import animate_sequence
            entry.update(animate_sequence(bpy.context.scene, ids[0], sequence, scene_seed))
        entry["seconds"] = dict(entry.get("seconds", {}))
        for name in todo:
            preset = _scene_preset(scenes, renders[name], scene_seed, fast_bounces, fast_engine)
            noise_seed = scene_seed * 8 + list(renders).index(name)   # independent noise per render
            # The manifest's sample count must not change between frames (resume check), and a
            # drawn render's does: it records 0, and scenes.json keeps each scene's own preset.
            samples = 0 if renders[name] == RANDOM else preset.samples
            entry["seconds"][name] = _render(bpy.context.scene, out / name, ids, preset, samples,
                                             noise_seed, device, export_frames, blender_log)
            if renders[name] == RANDOM:
                entry["fast_preset"] = _preset_dict(preset)
            done[name].update(ids)
        record["scenes"][str(index)] = entry
        _save_record(out, record)
        times = ", ".join(f"{q} {s:.1f}s" for q, s in entry["seconds"].items())
        bar.set_postfix_str(f"{index}: {kind} {scene_seed} {times}")
    return record


RANDOM = "random"


def _render_plan(scenes, fast, fast_samples, reference_samples, reference_denoise,
                 fast_engine: str = "cycles") -> dict:
    """{output folder: preset, or RANDOM for a per-scene draw}: the fast renders, then the
    reference."""
    try:
        fast_preset = scenes.FAST.with_engine(fast_engine)   # checks the engine's name once
    except ValueError as exc:
        raise MakeScenesError(str(exc)) from None
    if fast_engine != "cycles" and [t.strip() for t in fast] != [RANDOM]:
        raise MakeScenesError("--fast-engine eevee renders OUT/fast/ only: leave --fast at 'random' "
                              "(fix its samples with --fast-samples); bounce settings are Cycles'")
    plan: dict = {}
    for text in fast:
        text = text.strip()
        if text == RANDOM:
            plan["fast"] = fast_preset.with_samples(fast_samples) if fast_samples else RANDOM
        else:
            try:
                preset = scenes.parse_fast_preset(text)
            except ValueError as exc:
                raise MakeScenesError(str(exc)) from None
            plan[preset.name] = preset
    if not plan:
        raise MakeScenesError("--fast names no render; use 'random' or settings like 4spp-1b")
    reference = scenes.REFERENCE.with_denoise(reference_denoise)
    plan["reference"] = reference.with_samples(reference_samples) if reference_samples else reference
    return plan


def _scene_preset(scenes, planned, scene_seed: int, fast_bounces: tuple[int, int],
                  fast_engine: str = "cycles"):
    if planned != RANDOM:
        return planned
    return scenes.draw_fast_preset(scene_seed, fast_bounces).with_engine(fast_engine)


def _check_bounce_range(bounces) -> tuple[int, int]:
    low, high = (int(v) for v in bounces)
    if not 1 <= low <= high <= 1024:
        raise MakeScenesError(f"--fast-bounces must be LO-HI with 1 <= LO <= HI <= 1024, not {low}-{high}")
    return low, high


def frame_ids(index: int, sequence: int = 0) -> list[int]:
    """The frame ids of scene `index`: [index], or its shot's frames with --sequence."""
    if not sequence:
        return [index]
    first = index * SEQUENCE_STRIDE + 1
    return list(range(first, first + sequence))


def _render(scene, directory: Path, ids: list[int], preset, manifest_samples: int, noise_seed: int,
            device: str, export_frames, blender_log: bool) -> float:
    """Export frames `ids` of the built scene with `preset`; returns the seconds it took.
    A sequence's noise changes every frame (animated seed), as in a user's animation."""
    from training import scenes
    from training.scenes.render import quiet_stdout
    scenes.apply_preset(scene, preset, noise_seed=noise_seed, device=device)
    extra = {"generator": "training.make_scenes"}
    if len(ids) > 1:
        scene.cycles.use_animated_seed = True
        extra["sequence_length"] = len(ids)
    start = time.perf_counter()
    with quiet_stdout(not blender_log):
        export_frames(scene, str(directory), ids[0], ids[-1], samples=manifest_samples, extra=extra)
    return round(time.perf_counter() - start, 2)


def _check_kinds(kinds, known) -> list[str]:
    kinds = [k.strip() for k in kinds if k.strip()]
    unknown = [k for k in kinds if k not in known]
    if unknown or not kinds:
        raise MakeScenesError(f"unknown scene kind(s) {unknown or kinds}; choose from {', '.join(known)}")
    return kinds


def _preset_dict(preset, fast_bounces: tuple[int, int] | None = None,
                 fast_engine: str = "cycles") -> dict | str:
    """A preset as recorded in scenes.json; RANDOM (a per-scene draw) as text naming its ranges."""
    from dataclasses import asdict
    if preset == RANDOM and fast_engine != "cycles":
        return f"{fast_engine}, 1-64 samples drawn per scene"
    if preset == RANDOM:
        return f"1-64 spp, {fast_bounces[0]}-{fast_bounces[1]} bounces drawn per scene, denoised"
    recorded = asdict(preset)
    if recorded["engine"] == "cycles":   # as recorded before EEVEE renders: such runs resume
        del recorded["engine"]
    return recorded


def _warn_on_seed_ranges(seed: int, count: int) -> None:
    last = seed + max(count, 1) - 1
    touched = [name for name, (lo, hi) in SEED_RANGES.items()
               if last >= lo and (hi is None or seed < hi)]
    if len(touched) > 1:
        warnings.warn(f"seeds {seed}..{last} span the {' and '.join(touched)} ranges "
                      f"({SEED_RANGES}); keep training and evaluation scenes disjoint", stacklevel=3)


def _open_record(out: Path, wanted: dict) -> dict:
    path = out / SCENES_FILE
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        return wanted
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MakeScenesError(f"{path} is not valid JSON ({exc}); delete it to start over") from exc
    keys = RESUME_KEYS + (("sequence",) if "sequence" in wanted or "sequence" in record else ())
    diffs = [f"{name}: {old!r} there, {new!r} now"
             for k in keys for name, old, new in _differences(k, record.get(k), wanted.get(k))]
    if diffs:
        raise MakeScenesError(f"{out} holds scenes made with other settings ({'; '.join(diffs)}). "
                              f"Use the same --seed/--kinds/--resolution/samples to resume, "
                              f"or a new --out")
    return record


def _differences(name: str, old, new):
    """(dotted name, old, new) for every leaf that differs between two JSON-like values."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            yield from _differences(f"{name}.{key}", old.get(key), new.get(key))
    elif old != new:
        yield name, old, new


def _save_record(out: Path, record: dict) -> None:
    from neural_core.files import write_text_atomic
    write_text_atomic(out / SCENES_FILE, json.dumps(record, indent=1) + "\n")


def _exporter():
    """The add-on's dataset exporter (addon/dataset_export.py: a plain module that needs no
    registration). The add-on package sits next to training/ in the repository."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from addon.dataset_export import export_frames
    return export_frames


def _complete_ids(directory: Path) -> set[int]:
    """Frame ids the exporter finished in `directory` (listed complete and all files present)."""
    from neural_core import dataset_format
    if not (directory / dataset_format.MANIFEST).exists():
        return set()
    reader = dataset_format.DatasetReader(directory)
    return {n for n in reader.frames
            if all((directory / rel).is_file() for rel in dataset_format.relative_paths(n).values())}


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def _resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"resolution must look like 320x180, not {text!r}") from None
    if w < 8 or h < 8:
        raise argparse.ArgumentTypeError(f"resolution {w}x{h} is too small (at least 8x8)")
    return w, h


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--count", type=_positive, required=True, help="number of scenes (frame ids 0..N-1)")
    parser.add_argument("--out", required=True, help="output directory (fast/, reference/, scenes.json)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of scene 0; scene i uses seed+i. Tests < 1000, training "
                             "10000-19999, evaluation >= 20000")
    parser.add_argument("--resolution", type=_resolution, default=DEFAULT_RESOLUTION,
                        help="WxH (default %(default)s)")
    parser.add_argument("--kinds", default=",".join(DEFAULT_KINDS),
                        help="comma-separated scene kinds: street, interior, tabletop, closeup, studio "
                             "(training/scenes/README.md)")
    parser.add_argument("--fast", default=RANDOM,
                        help="comma-separated fast renders: 'random' (OUT/fast/: 1-64 spp and 1-12 "
                             "bounces drawn per scene) and/or settings like 4spp-1b,16spp-12b "
                             "(OUT/fast-4spp-1b/ ...); all denoised, with the noisy image stored")
    parser.add_argument("--reference-raw", action="store_true",
                        help="reference without Cycles' denoiser (held-out sets: use 512+ samples)")
    parser.add_argument("--fast-samples", type=_positive, default=None,
                        help="override the fast preset's samples")
    parser.add_argument("--fast-bounces", type=_bounce_range, default=None, metavar="LO-HI",
                        help="bounces the 'random' fast render draws from (default 1-12), e.g. 1-3 "
                             "for a corpus of renders that miss light")
    parser.add_argument("--reference-samples", type=_positive, default=None,
                        help="override the reference preset's samples")
    parser.add_argument("--fast-engine", choices=("cycles", "eevee"), default="cycles",
                        help="engine of the fast render: eevee renders OUT/fast/ with EEVEE at "
                             "--fast-samples render samples (no denoiser, no noisy image; EEVEE "
                             "renders in software without a GPU: ~1 min a tiny frame). The "
                             "reference is always Cycles")
    parser.add_argument("--device", choices=("cpu", "gpu"), default="cpu",
                        help="Cycles device; gpu uses every CUDA/OptiX/HIP GPU Blender finds")
    parser.add_argument("--sequence", type=_positive, default=0, metavar="N",
                        help="render every scene as an N-frame shot (moving camera and object, "
                             "animated noise seed) instead of one frame; default: single frames")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--blender-log", action="store_true", help="show Blender's render log")
    return parser


def _bounce_range(text: str) -> tuple[int, int]:
    low, sep, high = text.partition("-")
    try:
        return _check_bounce_range((int(low), int(high if sep else low)))
    except (ValueError, MakeScenesError) as exc:
        raise argparse.ArgumentTypeError(f"give LO-HI bounces such as 1-3, not {text!r} ({exc})") from None


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from neural_core.errors import PhotorealError
    try:
        record = make_scenes(args.count, args.out, seed=args.seed, kinds=args.kinds.split(","),
                             resolution=args.resolution, fast_samples=args.fast_samples,
                             reference_samples=args.reference_samples, progress=not args.no_progress,
                             blender_log=args.blender_log, device=args.device.upper(),
                             fast=args.fast.split(","), reference_denoise=not args.reference_raw,
                             sequence=args.sequence, fast_bounces=args.fast_bounces,
                             fast_engine=args.fast_engine)
    except (MakeScenesError, PhotorealError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = sum(1 for i in range(args.count) if str(i) in record["scenes"])
    print(f"{done}/{args.count} scenes in {args.out} (fast/, reference/, {SCENES_FILE})")
    return 0


def add_cli(subparsers) -> argparse.ArgumentParser:
    """Register `make-scenes` on the `python -m training` sub-command parser."""
    parser = subparsers.add_parser("make-scenes", help="render paired fast/reference procedural scenes",
                                   description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    parser.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = add_arguments(argparse.ArgumentParser(prog="python -m training.make_scenes",
                                                   description=__doc__.split("\n\n")[0]))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
