"""The add-on's steps around inference on rendered frames, timed inside Blender (bpy).

    python -m benchmarks.addon_overhead [1920x1080] [--model rad] [--repeats 3]

A fresh interpreter registers the add-on from this checkout, builds a tiny Cycles scene (plane,
cube, sun; Principled materials tagged with classes) at the size asked, 1 sample, and times
both ways the add-on enhances a frame:

  render pass   Enhance on Render (F12, animations, `blender -b`): Cycles renders, the wrapper
                reads the passes from the engine's result (readback), the Enhancer runs
                (preprocess, inference, postprocess), the image goes into the Photoreal pass
                (compositing); addon.render_pass records the steps. The whole render is also
                timed with and without enhancement.
  button        The Photoreal Enhance button, after a render: save_render to a multilayer EXR on
                /dev/shm + neural_core.exr.read_frame (readback), the Enhancer, store_image
                (foreach_set into bpy.data.images; packed only when the .blend is saved).

A batch render enhances frame after frame in one process, so the figures are medians over
`--repeats` frames after the first WARMUP_FRAMES (session start-up, onnxruntime's first runs at
that size, first touch of the memory every step allocates); the first frame is reported beside.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _scene(width: int, height: int):
    import bpy

    from addon import blender_api

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
        blender_api.node_tree(material)
        obj.data.materials.append(material)
        obj["photoreal_class"] = cls
    bpy.ops.object.light_add(type="SUN", location=(0, 0, 10))
    bpy.ops.object.camera_add(location=(7, -7, 5), rotation=(1.1, 0, 0.785))
    scene.camera = bpy.context.object
    return scene


WARMUP_FRAMES = 2


def measure(width: int, height: int, model: str, repeats: int) -> dict:
    """Both paths in this process (needs bpy) -> {"render_pass": ..., "button": ...}."""
    import bpy

    sys.path.insert(0, str(ROOT))
    import addon
    from addon import blender_api

    addon.register()
    try:   # unregistered on the way out, as Blender does at exit (addon_utils.disable_all)
        scene = _scene(width, height)
        scene.photoreal.model = model.upper()
        scene.photoreal.device = "CPU"
        result = {"width": width, "height": height, "model": model, "repeats": repeats,
                  "blender": blender_api.VERSION_STRING}
        for path, measure_path in (("render_pass", _render_pass_path), ("button", _button_path)):
            try:   # one path failing still leaves the other's figures
                result[path] = measure_path(scene, repeats)
            except Exception as exc:
                traceback.print_exc()
                result[path] = {"error": f"{type(exc).__name__}: {exc}"}
        return result
    finally:
        addon.unregister()


def _render_pass_path(scene, repeats: int) -> dict:
    import bpy

    from addon import enhance

    cancelled = []

    def render() -> float:
        # A render Blender does not report FINISHED is counted and asked for again.
        for _ in range(3):
            start = time.perf_counter()
            result = bpy.ops.render.render()
            if result == {"FINISHED"}:
                return time.perf_counter() - start
            cancelled.append(result)
            time.sleep(0.5)
        raise RuntimeError(f"Blender cancelled the render three times: {cancelled}")

    scene.photoreal.enhance_on_render = True
    walls, frames, unenhanced = [], [], []
    renders = 0
    while len(frames) < WARMUP_FRAMES + repeats:
        wall = render()
        renders += 1
        steps = enhance.LAST_RUN.pop("steps", None)
        if steps is None or "inference" not in steps:
            # Known, not understood: in about 1 process in 5 one render (usually the second) comes
            # back un-enhanced with no error; it is counted, reported and rendered again.
            unenhanced.append(renders)
            if len(unenhanced) > 2:
                raise RuntimeError(f"renders {unenhanced} came back un-enhanced; the last "
                                   f"enhancement: {enhance.LAST_RUN}")
            continue
        walls.append(wall)
        frames.append(steps)
    scene.photoreal.enhance_on_render = False
    plain = [render() for _ in range(repeats)]   # the same passes on, no enhancement
    return {**_medians(frames[WARMUP_FRAMES:]), "first_frame": _rounded(frames[0]),
            "cancelled_renders": len(cancelled), "unenhanced_renders": unenhanced,
            "tiles": enhance.get_enhancer(scene.photoreal).last_num_tiles,
            "render_s": round(statistics.median(walls[WARMUP_FRAMES:]), 2),
            "plain_render_s": round(statistics.median(plain), 2)}


def _button_path(scene, repeats: int) -> dict:
    from addon import compositor, enhance, readback
    from neural_core import exr

    enhancer = enhance.get_enhancer(scene.photoreal)
    path = Path("/dev/shm") / f"photoreal-bench-{scene.name}-{os.getpid()}.exr"
    frames = []
    try:
        for _ in range(WARMUP_FRAMES + repeats):
            start = time.perf_counter()
            readback.save_render_passes(scene, path)
            saved = time.perf_counter()
            frame = exr.read_frame(path, scene.view_layers[0].name)
            steps = {"readback": (time.perf_counter() - start) * 1e3,
                     "save_render": (saved - start) * 1e3}
            rgb = enhancer.enhance(frame, engine="CYCLES")
            steps.update(enhancer.last_timings)
            start = time.perf_counter()
            compositor.store_image(rgb)
            steps["compositing"] = (time.perf_counter() - start) * 1e3
            frames.append(steps)
            del frame, rgb
    finally:
        path.unlink(missing_ok=True)
    return {**_medians(frames[WARMUP_FRAMES:]), "first_frame": _rounded(frames[0]),
            "tiles": enhancer.last_num_tiles}


def _medians(frames: list[dict]) -> dict:
    return {key: round(statistics.median(f[key] for f in frames), 1) for key in frames[0]}


def _rounded(steps: dict) -> dict:
    return {key: round(ms, 1) for key, ms in steps.items()}


def time_addon_overhead(width: int, height: int, model: str = "rad", repeats: int = 3,
                        python: str = sys.executable) -> dict:
    """`measure` in a fresh `python` (a venv with bpy) -> dict of ms per step."""
    cmd = [python, "-m", "benchmarks.addon_overhead", f"{width}x{height}", "--model", model,
           "--repeats", str(repeats), "--child"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"the add-on overhead benchmark failed at {width}x{height}:\n"
                           f"{_without_render_progress(result.stderr)[-4000:]}")
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    for path in ("render_pass", "button"):
        if "error" in measured.get(path, {}):
            measured[path]["error"] += "\n" + _without_render_progress(result.stderr)[-3000:]
    return measured


def _without_render_progress(text: str) -> str:
    """Blender's output less its per-tile progress lines ('Fra:1 Mem:...'), which bury errors."""
    return "\n".join(line for line in text.strip().splitlines() if not line.startswith("Fra:"))


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
