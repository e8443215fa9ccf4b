"""Sweep the temporal filter's settings on validation shots, ~1 s per setting (issue 12).

    .venv/bin/python scripts/sweep_temporal.py [--data ROOT ...] [--set NAME=V1,V2 ...]

Each setting is every combination of the --set values (TemporalSettings fields; e.g.
`--set clamp_radius=3,6 --set lighting_floor=0.01,0.015`). The shots' frames, the bundled
model's per-frame outputs and the reference display images are computed once and cached in
runs/temporal_sweep/cache-*.pkl, keyed by the roots and the model's weights (delete it after
re-rendering the data). Prints per setting the warping error as a ratio to the reference's and
the PSNR change against per-frame enhancement, shot by shot, with the mean, the worst shot and how
many shots meet both of issue 12's targets (<= 1.1x, >= -0.2 dB); and the worst frame's error
in the pixels just uncovered over per-frame enhancement's (the ghosting check, <= 1.1; how many
shots meet all three). The default roots are the 32
validation shots (scripts/temporal_heldout.sh), never the held-out ones.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import itertools
import json
import pickle
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from evaluate_temporal import disocclusion_errors, display, shots  # noqa: E402
from neural_core.dataset_format import DatasetReader  # noqa: E402
from neural_core.runtime import Enhancer, resolve_model_path  # noqa: E402
from neural_core.temporal import TemporalFilter, TemporalSettings  # noqa: E402
from training.metrics.image import psnr  # noqa: E402
from training.metrics.temporal import warping_error  # noqa: E402

# The 32 validation shots (scripts/temporal_heldout.sh says how each set was rendered).
VALIDATION = ("data/temporal_val", "data/temporal_val256", "data/temporal_val_interior",
              "data/temporal_val_street", "data/temporal_val_studio", "data/temporal_val_4spp",
              "data/temporal_val_long", "data/temporal_val512", "data/temporal_val512b")


def load_shots(roots, model: str) -> list[dict]:
    """Every shot of `roots`: its frames, per-frame outputs, reference display images and the
    per-frame output's warping error and PSNR (cached)."""
    weights = hashlib.sha1(resolve_model_path(model).read_bytes()).hexdigest()
    key = hashlib.sha1(json.dumps([sorted(map(str, roots)), weights]).encode()).hexdigest()[:10]
    cache = ROOT / "runs" / "temporal_sweep" / f"cache-{key}.pkl"
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    enhancer = Enhancer.from_pretrained(model, device="cpu")
    loaded = []
    for root in map(Path, roots):
        fast, reference = DatasetReader(root / "fast"), DatasetReader(root / "reference")
        kinds = json.loads((root / "scenes.json").read_text()).get("scenes", {})
        for shot in shots([n for n in fast.frames if n in set(reference.frames)]):
            frames = [fast.read_frame(n) for n in shot]
            per_frame = [enhancer.enhance(frame, engine=fast.manifest["engine"]) for frame in frames]
            references = [display(reference.read_frame(n)["image"]) for n in shot]
            kind = kinds.get(str((shot[0] - 1) // 100), {}).get("kind", "?")
            loaded.append(dict(name=f"{root.name} {kind} {shot[0]}-{shot[-1]}", numbers=shot, frames=frames,
                               per_frame=per_frame, references=references,
                               **_scores([display(p) for p in per_frame], frames, references)))
            print(f"loaded {loaded[-1]['name']}", file=sys.stderr, flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(loaded))
    return loaded


def _scores(images, frames, references) -> dict:
    motions = [frame["motion"] for frame in frames]
    return {"we": warping_error(images, motions), "reference_we": warping_error(references, motions),
            "psnr": float(np.mean([psnr(a, b) for a, b in zip(images, references)]))}


def evaluate(loaded: list[dict], settings: TemporalSettings) -> list[tuple[str, float, float, float]]:
    """[(shot, warping error / the reference's, PSNR - per-frame PSNR, the worst frame's error in
    what was just uncovered / per-frame's)] with `settings`."""
    rows = []
    for shot in loaded:
        filt = TemporalFilter(settings)
        images = [display(filt.apply(frame, enhanced, n))
                  for frame, enhanced, n in zip(shot["frames"], shot["per_frame"], shot["numbers"])]
        scores = _scores(images, shot["frames"], shot["references"])
        ghosting = disocclusion_errors({"temporal": images, "reference": shot["references"],
                                        "per_frame": [display(p) for p in shot["per_frame"]]},
                                       [frame["motion"] for frame in shot["frames"]])
        rows.append((shot["name"], scores["we"] / shot["reference_we"], scores["psnr"] - shot["psnr"],
                     ghosting.get("uncovered_ratio_worst_frame", 0.0)))
    return rows


def describe(label: str, rows) -> str:
    ratio, gain, ghost = (np.array([r[i] for r in rows]) for i in (1, 2, 3))
    return (f"{label}: warping error mean {ratio.mean():.3f}x, worst {ratio.max():.2f}x, "
            f"{int((ratio > 1.1).sum())} shots > 1.1x | PSNR vs per-frame mean {gain.mean():+.3f} dB, "
            f"worst {gain.min():+.2f} dB, {int((gain < -0.2).sum())} shots < -0.2 dB | "
            f"uncovered error worst frame / per-frame's: worst {ghost.max():.2f}, "
            f"{int((ghost > 1.1).sum())} shots > 1.1 | "
            f"{int(((ratio <= 1.1) & (gain >= -0.2)).sum())} of {len(rows)} shots meet both, "
            f"{int(((ratio <= 1.1) & (gain >= -0.2) & (ghost <= 1.1)).sum())} all three\n"
            + "\n".join(f"    {name:45s} {r:.2f}x {g:+.2f} dB uncovered {u:.2f}" for name, r, g, u in rows))


def _grid(pairs: list[str]) -> list[dict]:
    fields = {f.name: f.type for f in dataclasses.fields(TemporalSettings)}
    axes = []
    for pair in pairs:
        name, _, values = pair.partition("=")
        if name not in fields or not values:
            raise SystemExit(f"error: --set NAME=V1,V2 with NAME one of {', '.join(fields)}; got {pair!r}")
        cast = int if fields[name] in (int, "int") else float
        axes.append([(name, cast(v)) for v in values.split(",")])
    return [dict(combo) for combo in itertools.product(*axes)]


def settings_grid(pairs: list[str]):
    """(label, TemporalSettings) for every combination of the --set values."""
    for changes in _grid(pairs):
        label = ", ".join(f"{k}={v}" for k, v in changes.items()) or "defaults"
        yield label, dataclasses.replace(TemporalSettings(), **changes)


def load_roots(roots: list[str], model: str) -> list[dict]:
    """`load_shots`, with a one-line error for a root that has no shots."""
    missing = [d for d in roots if not (Path(d) / "scenes.json").exists()]
    if missing:
        raise SystemExit(f"error: no shots in {', '.join(missing)}; render them with scripts/render_temporal_sets.sh "
                         "(the commands of every set: scripts/temporal_heldout.sh)")
    return load_shots(roots, model)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", nargs="+", default=list(VALIDATION))
    parser.add_argument("--model", default="rad")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=V1,V2")
    args = parser.parse_args(argv)
    loaded = load_roots(args.data, args.model)
    for label, settings in settings_grid(args.set):
        print(describe(label, evaluate(loaded, settings)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
