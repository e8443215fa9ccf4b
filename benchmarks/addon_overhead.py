"""The add-on's steps around inference on one rendered frame, timed inside Blender (bpy).

    python -m benchmarks.addon_overhead [1920x1080] [--model rad] [--repeats 3]

A fresh interpreter builds a tiny Cycles scene (plane, cube, sun; Principled materials tagged
with classes), enables the passes the model reads (addon.passes), renders it at the size asked
with 1 sample, then times what the add-on does after a render:

    readback      addon.readback.save_render_passes (multilayer EXR on /dev/shm; save_render) +
                  neural_core.exr.read_frame
    preprocess, inference, postprocess    Enhancer.last_timings
    compositing   addon.compositor.store_image: foreach_set into bpy.data.images (the image is
                  packed only when the .blend is saved, by a save_pre handler)

A batch render enhances frame after frame in one process, so the figures are medians over
`--repeats` frames after a first one; the first frame (session start-up, onnxruntime's first
run at that size, first-touch of the memory every step allocates) is reported beside them.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _scene(width: int, height: int):
    import bpy

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    bpy.ops.mesh.primitive_plane_add(size=20)
    bpy.ops.mesh.primitive_cube_add(location=(0, 0, 1))
    for obj, cls in zip(scene.objects, ("road", "car")):
        material = bpy.data.materials.new(cls)
        material.use_nodes = True
        obj.data.materials.append(material)
        obj["photoreal_class"] = cls
    bpy.ops.object.light_add(type="SUN", location=(0, 0, 10))
    bpy.ops.object.camera_add(location=(7, -7, 5), rotation=(1.1, 0, 0.785))
    scene.camera = bpy.context.object
    return scene


def measure(width: int, height: int, model: str, repeats: int) -> dict:
    """Render, then time the add-on's steps in this process (needs bpy)."""
    import bpy

    sys.path.insert(0, str(ROOT))
    from addon import compositor, passes, readback
    from neural_core import exr
    from neural_core.runtime import Enhancer

    enhancer = Enhancer.from_pretrained(model, device="cpu")
    scene = _scene(width, height)
    passes.tag_classes(scene)
    notes = passes.enable_passes(scene, scene.view_layers[0], enhancer.required_passes,
                                 enhancer.metadata.class_source)
    start = time.perf_counter()
    bpy.ops.render.render()
    render_s = time.perf_counter() - start
    path = Path("/dev/shm") / f"photoreal-bench-{width}x{height}.exr"
    steps: dict[str, list[float]] = {k: [] for k in ("readback", "save_render", "preprocess",
                                                     "inference", "postprocess", "compositing")}
    first: dict[str, float] = {}
    try:
        for run in range(repeats + 1):
            start = time.perf_counter()
            readback.save_render_passes(scene, path)
            saved = time.perf_counter()
            frame = exr.read_frame(path, scene.view_layers[0].name)
            steps["readback"].append((time.perf_counter() - start) * 1e3)
            steps["save_render"].append((saved - start) * 1e3)
            rgb = enhancer.enhance(frame, engine="CYCLES")
            for stage, ms in enhancer.last_timings.items():
                steps[stage].append(ms)
            start = time.perf_counter()
            compositor.store_image(rgb)
            steps["compositing"].append((time.perf_counter() - start) * 1e3)
            if run == 0:
                first = {stage: round(ms.pop(), 1) for stage, ms in steps.items()}
    finally:
        path.unlink(missing_ok=True)
    return {"width": width, "height": height, "model": model, "repeats": repeats,
            "tiles": enhancer.last_num_tiles, "render_s": round(render_s, 1), "notes": notes,
            "blender": bpy.app.version_string, "first_frame": first,
            **{stage: round(statistics.median(ms), 1) for stage, ms in steps.items()}}


def time_addon_overhead(width: int, height: int, model: str = "rad", repeats: int = 3,
                        python: str = sys.executable) -> dict:
    """`measure` in a fresh `python` (a venv with bpy) -> dict of ms per step."""
    cmd = [python, "-m", "benchmarks.addon_overhead", f"{width}x{height}", "--model", model,
           "--repeats", str(repeats), "--child"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the add-on overhead benchmark failed at {width}x{height}:\n"
                           f"{result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    from .denoise_node import _size

    parser = argparse.ArgumentParser(prog="python -m benchmarks.addon_overhead", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("size", nargs="?", type=_size, default=(1920, 1080))
    parser.add_argument("--model", default="rad")
    parser.add_argument("--repeats", type=int, default=3, help="frames timed after the first")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(*args.size, args.model, args.repeats)))
    else:
        print(json.dumps(time_addon_overhead(*args.size, args.model, args.repeats), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
