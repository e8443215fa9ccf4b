"""Blender tests: the built extension zip installed into a throwaway user-resources folder.

Run with either interpreter (its bpy decides the Blender version):
    .venv/bin/python -m pytest blender_tests       # Blender 4.5 LTS (Python 3.11)
    .venv313/bin/python -m pytest blender_tests    # Blender 5.2 LTS (Python 3.13)
The zip comes from `make addon` (dist/); it is built here if missing.
PHOTOREAL_TEST_MODEL=/path/model.onnx runs the tests with that model instead of the bundled RAD.
"""
from __future__ import annotations

import glob
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
# Blender reads this when bpy is imported: nothing may touch the user's ~/.config/blender.
USER_RESOURCES = tempfile.mkdtemp(prefix="photoreal-bpy-user-")
os.environ["BLENDER_USER_RESOURCES"] = USER_RESOURCES

import bpy  # noqa: E402

if str(ROOT) not in sys.path:           # the repository's neural_core, as training uses it
    sys.path.insert(0, str(ROOT))

from addon import blender_api  # noqa: E402  (the source tree's seam: importing it loads nothing else)

ADDON = "bl_ext.user_default.photoreal_enhance"
W, H = 64, 48
CLASS_TAGS = {"Ground": "road", "Box": "car", "Ball": "person"}
TEST_MODEL = os.environ.get("PHOTOREAL_TEST_MODEL", "")
EEVEE = blender_api.EEVEE


def built_zip() -> Path:
    zips = sorted(glob.glob(str(ROOT / "dist" / "photoreal_enhance-*-linux_x64.zip")))
    if not zips:
        subprocess.run([sys.executable, str(ROOT / "build_addon.py"), "--out", str(ROOT / "dist")],
                       check=True)
        zips = sorted(glob.glob(str(ROOT / "dist" / "photoreal_enhance-*-linux_x64.zip")))
    return Path(zips[-1])


@pytest.fixture(scope="session")
def addon_zip() -> Path:
    return built_zip()


@pytest.fixture(scope="session")
def addon(addon_zip):
    """The installed and enabled extension package (its Python module)."""
    result = bpy.ops.extensions.package_install_files(filepath=str(addon_zip), repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    assert ADDON in bpy.context.preferences.addons
    yield importlib.import_module(ADDON)
    import addon_utils
    addon_utils.disable(ADDON)
    shutil.rmtree(USER_RESOURCES, ignore_errors=True)


def submodule(name: str):
    return importlib.import_module(f"{ADDON}.{name}")


# ---------------------------------------------------------------------------------------------
# A tiny scene: ground plane, box and ball tagged with classes, a sun and a camera
# ---------------------------------------------------------------------------------------------

def _material(name, color, roughness=0.5, metallic=0.0):
    mat = bpy.data.materials.new(name)
    bsdf = next(n for n in blender_api.node_tree(mat).nodes if n.bl_idname == "ShaderNodeBsdfPrincipled")
    bsdf.inputs["Base Color"].default_value = (*color, 1.0)
    bsdf.inputs["Roughness"].default_value = roughness
    bsdf.inputs["Metallic"].default_value = metallic
    return mat


def _mesh_object(name, mesh, location, material):
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    obj.data.materials.append(material)
    obj["photoreal_class"] = CLASS_TAGS[name]
    bpy.context.scene.collection.objects.link(obj)
    return obj


def _primitive(kind, **kwargs):
    getattr(bpy.ops.mesh, f"primitive_{kind}_add")(**kwargs)
    obj = bpy.context.active_object
    mesh = obj.data
    bpy.data.objects.remove(obj)
    return mesh


def build_scene(engine="CYCLES", strength=0.5):
    """A fresh file with the tiny test scene; returns the scene."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = engine
    scene.render.resolution_x, scene.render.resolution_y = W, H
    scene.render.resolution_percentage = 100
    scene.render.use_motion_blur = False
    if engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = 2
        scene.cycles.use_denoising = False
        scene.cycles.seed = 1
    else:
        scene.eevee.taa_render_samples = 1
    scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.3, 0.4, 0.6)

    # EEVEE compiles a shader per material (tens of seconds each without a warm cache): there
    # the objects share one material; their classes still differ (per-object pass index).
    paint = _material("Paint", (0.7, 0.05, 0.05), roughness=0.3, metallic=0.8)
    shared = engine != "CYCLES"
    _mesh_object("Ground", _primitive("plane", size=12), (0, 0, 0),
                 paint if shared else _material("Asphalt", (0.2, 0.2, 0.22), roughness=0.9))
    _mesh_object("Box", _primitive("cube", size=1.5), (0, 0, 0.75), paint)
    _mesh_object("Ball", _primitive("uv_sphere", radius=0.6, segments=16, ring_count=8),
                 (1.8, 0.8, 0.6), paint if shared else _material("Skin", (0.8, 0.6, 0.5)))
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.rotation_euler = (0.6, 0.2, 0.4)
    sun.data.energy = 3.0
    scene.collection.objects.link(sun)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    camera.location = (6.0, -6.0, 4.0)
    camera.rotation_euler = (1.1, 0.0, 0.785)
    scene.collection.objects.link(camera)
    scene.camera = camera

    settings = scene.photoreal
    if TEST_MODEL:
        settings.model, settings.custom_model = "CUSTOM", TEST_MODEL
    else:
        settings.model = "RAD"
    settings.device = "CPU"
    settings.strength = strength
    return scene


def animate_box(scene):
    box = bpy.data.objects["Box"]
    box.location = (-1.5, 0, 0.75)
    box.keyframe_insert("location", frame=1)
    box.location = (1.5, -1.0, 0.75)
    box.keyframe_insert("location", frame=3)
    scene.frame_start, scene.frame_end = 1, 3


def comp_tree(scene):
    return blender_api.compositor_tree(scene, create=False)


def set_multilayer_output(scene, path: str):
    blender_api.set_multilayer_exr(scene.render.image_settings, depth="32", codec="ZIP")
    scene.render.filepath = path


def save_render(scene, path: Path) -> Path:
    """The current Render Result (passes + Composite) as a multilayer EXR."""
    return submodule("readback").save_render_passes(scene, path)


def layer_rgb(channels, layer: str, name: str = "Combined") -> np.ndarray:
    return np.stack([channels[f"{layer}.{name}.{c}"] for c in "RGB"], axis=-1)


def image_rgb(image) -> np.ndarray:
    return submodule("compositor").image_pixels(image)[..., :3]


def run_cli_enhance(exr_path: Path, out_path: Path, model: str, *options: str) -> np.ndarray:
    """`python -m neural_core enhance` with this interpreter; returns the output's RGB."""
    subprocess.run([sys.executable, "-m", "neural_core", "enhance", str(exr_path), "--model", model,
                    "--device", "cpu", "--out", str(out_path), *options], cwd=ROOT, check=True,
                   capture_output=True)
    from neural_core import exr
    channels = exr.read_channels(out_path)
    return np.stack([channels[c] for c in "RGB"], axis=-1)


# What `blender -b scene.blend -a` does, in a fresh process. The bpy module starts like
# --factory-startup (no saved preferences), so the installed extension is enabled explicitly.
RENDER_ANIMATION = """
import sys, bpy, addon_utils
assert addon_utils.enable({addon!r}, default_set=True) is not None
bpy.ops.wm.open_mainfile(filepath=sys.argv[1])
bpy.ops.render.render(animation=True)
"""


@pytest.fixture(scope="session")
def reference_enhancer():
    """The model the add-on runs, loaded outside Blender: what each enhanced frame must equal."""
    from neural_core.runtime import Enhancer
    return Enhancer.from_pretrained(TEST_MODEL or "rad", device="cpu")


def cli_model_argument() -> str:
    return TEST_MODEL or "rad"


def pytest_sessionfinish(session, exitstatus):
    # Blender 4.5 hangs at interpreter exit while render handlers are registered.
    for name in ("render_init", "render_pre", "render_post", "render_write", "render_complete",
                 "render_cancel", "frame_change_pre", "frame_change_post"):
        getattr(bpy.app.handlers, name).clear()
