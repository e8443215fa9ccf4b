"""Render the bundled demo frame: neural_core/assets/demo_frame.exr.

One procedural interior (the bundled RAD adds the light that few bounces miss), Cycles on the
CPU with its denoiser on (the noisy image stored), every schema pass plus the roughness/metallic
AOVs, written by Blender itself as a multilayer EXR (colour passes half float, ZIP compression).

    .venv313/bin/python scripts/make_demo_frame.py [--kind interior] [--seed 10] [--samples 16] [--out PATH]

(the bundled frame was made with Blender 5.2, `.venv313`; `.venv` runs it with Blender 4.5)
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bpy  # noqa: E402

from addon import blender_api  # noqa: E402
from neural_core import exr, schema  # noqa: E402
from neural_core.files import write_atomic  # noqa: E402
from training.scenes import apply_preset, build_scene, set_output_exr  # noqa: E402

DEMO_KIND = "interior"
DEMO_SEED = 10
DEMO_RESOLUTION = (480, 270)
DEMO_SAMPLES = 16


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kind", default=DEMO_KIND)
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    parser.add_argument("--samples", type=int, default=DEMO_SAMPLES)
    parser.add_argument("--codec", default="ZIP", help="EXR compression (ZIP, PIZ, ...)")
    parser.add_argument("--out", type=Path, default=REPO / "neural_core" / "assets" / "demo_frame.exr")
    args = parser.parse_args(argv)

    info = build_scene(args.kind, args.seed, DEMO_RESOLUTION)
    scene = bpy.context.scene
    apply_preset(scene, "fast", noise_seed=args.seed)
    scene.cycles.samples = args.samples

    def render(tmp: Path) -> None:
        set_output_exr(scene, str(tmp), half=True, codec=args.codec)
        bpy.ops.render.render(write_still=True)

    start = time.perf_counter()
    write_atomic(args.out, render)
    seconds = time.perf_counter() - start

    frame = exr.read_frame(args.out)
    schema.check_frame(frame, ["image", "noisy", *schema.DEFAULT_GBUFFER_PASSES, "object_index"],
                       source=str(args.out))
    classes = sorted({schema.CLASSES[c] for c in set(schema.class_map_from_frame(frame).ravel())})
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s with "
          f"Blender {blender_api.VERSION_STRING}, {args.kind} seed {args.seed}, {args.samples} spp; "
          f"{info['objects']} objects; classes in view: {', '.join(classes)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
