"""Temporal stability on real renders: the Vector pass convention on a known camera move,
`blender -b -a` with Enhance on Render, and no ghosting behind a moving object."""
import subprocess
import sys

import bpy
import numpy as np
import pytest

from conftest import ADDON, RENDER_ANIMATION, ROOT, blender_api, build_scene, layer_rgb, set_multilayer_output
from neural_core import exr, temporal
from training.metrics.temporal import warping_error



def _linear(obj) -> None:
    for curve in blender_api.fcurves(obj):
        curve.extrapolation = "LINEAR"
        for key in curve.keyframe_points:
            key.interpolation = "LINEAR"


def _textured_floor_scene(tmp_path, engine: str = "CYCLES"):
    """A camera looking straight down at a noise-textured floor 10 m below, lens chosen so that
    1 m on the floor is 8 px; it moves +0.5 m in x and +0.25 m in y per frame."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = engine
    scene.cycles.samples, scene.cycles.device, scene.cycles.use_denoising = 16, "CPU", False
    scene.eevee.taa_render_samples = 1      # an emissive floor: one sample is exact
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 64, 32, 100
    scene.render.use_motion_blur = False
    scene.view_layers[0].use_pass_vector = True
    bpy.ops.mesh.primitive_plane_add(size=100)
    material = bpy.data.materials.new("Noise")
    tree = blender_api.node_tree(material)
    nodes, links = tree.nodes, tree.links
    noise, emission = nodes.new("ShaderNodeTexNoise"), nodes.new("ShaderNodeEmission")
    noise.inputs["Scale"].default_value = 20.0
    links.new(noise.outputs["Color"], emission.inputs["Color"])
    output = next(n for n in nodes if n.bl_idname == "ShaderNodeOutputMaterial")
    links.new(emission.outputs[0], output.inputs["Surface"])
    bpy.context.active_object.data.materials.append(material)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    camera.data.lens, camera.data.sensor_width, camera.data.sensor_fit = 45.0, 36.0, "HORIZONTAL"
    scene.collection.objects.link(camera)
    scene.camera = camera
    for number, (x, y) in ((1, (0.0, 0.0)), (2, (0.5, 0.25))):
        camera.location = (x, y, 10.0)
        camera.keyframe_insert("location", frame=number)
    _linear(camera)
    scene.frame_start, scene.frame_end = 1, 3
    set_multilayer_output(scene, str(tmp_path / "pan_####"))
    return scene


@pytest.mark.parametrize("engine", ["CYCLES", blender_api.EEVEE])
def test_vector_pass_convention_on_a_known_camera_move(tmp_path, engine):
    """Camera +x, +y (Blender y up): the floor moves 4 px left and 2 px down in the image, and
    EEVEE writes the Vector pass as Cycles does (the filter reads both alike)."""
    _textured_floor_scene(tmp_path, engine)
    bpy.ops.render.render(animation=True)
    frames = [exr.read_frame(tmp_path / f"pan_{n:04d}.exr") for n in (1, 2, 3)]
    # XY and ZW both (+4, +2) on every frame: the motion is extrapolated linearly, and Blender
    # takes the vectors from the scene at t-1 and t+1 whatever the render range is.
    for frame in frames:
        np.testing.assert_allclose(np.median(frame["motion"].reshape(-1, 4), 0), [4, 2, 4, 2], atol=0.02)
    # The image moved as the convention says: frame 2 at (row r, col c) is frame 1 at
    # (r - 2, c + 4), i.e. temporal.backward_flow of frame 2's pass.
    first, second = frames[0]["image"][..., 0], frames[1]["image"][..., 0]
    np.testing.assert_allclose(second[2:, :-4], first[:-2, 4:], atol=0.02)
    b_col, b_row = temporal.backward_flow(frames[1]["motion"])
    sampler = temporal.Sampler(np.ascontiguousarray(b_col), np.ascontiguousarray(b_row), b_col.shape)
    warped = sampler.bilinear(np.ascontiguousarray(first))
    assert np.abs(warped - second)[sampler.inside].mean() < 0.1 * np.abs(first - second).mean()
    f_col, f_row = temporal.forward_flow(frames[0]["motion"])
    assert (np.median(f_col), np.median(f_row)) == pytest.approx((-4.0, 2.0), abs=0.02)


def _animated_box_scene(tmp_path, frames: int):
    """The tiny test scene with the box sliding across the ground, an animated noise seed."""
    scene = build_scene(strength=1.0)
    box = bpy.data.objects["Box"]
    for number, x in ((1, -2.0), (2, -1.4)):
        box.location = (x, -0.5, 0.75)
        box.keyframe_insert("location", frame=number)
    _linear(box)
    scene.frame_start, scene.frame_end = 1, frames
    scene.cycles.use_animated_seed = True
    return scene


def test_blender_b_a_enhances_4_frames_with_less_flicker_than_per_frame(addon, tmp_path, reference_enhancer):
    scene = _animated_box_scene(tmp_path, 4)
    scene.photoreal.enhance_on_render = True       # passes (Vector too), classes, compositor
    assert scene.photoreal.temporal and scene.view_layers[0].use_pass_vector
    set_multilayer_output(scene, str(tmp_path / "frame_####"))
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    done = subprocess.run([sys.executable, "-c", RENDER_ANIMATION.format(addon=ADDON), str(blend)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    temporal_frames, per_frame, motions = [], [], []
    for number in range(1, 5):
        path = tmp_path / f"frame_{number:04d}.exr"
        frame = exr.read_frame(path, "ViewLayer")
        temporal_frames.append(layer_rgb(exr.read_channels(path), "ViewLayer", "Photoreal"))
        per_frame.append(reference_enhancer.enhance(frame))
        motions.append(frame["motion"])
    np.testing.assert_allclose(temporal_frames[0], per_frame[0], atol=1e-5)   # frame 1: no history
    tone = lambda frames: [np.clip(f / (1 + f), 0, 1) for f in frames]
    filtered_error = warping_error(tone(temporal_frames), motions)
    per_frame_error = warping_error(tone(per_frame), motions)
    print(f"warping error: temporal {filtered_error:.3e}, per-frame {per_frame_error:.3e}")
    assert filtered_error < 0.8 * per_frame_error


def test_no_ghosting_where_a_moving_object_uncovers_the_background(addon, tmp_path, reference_enhancer):
    """A box slides across a still background. In the pixels it uncovers at each frame the
    temporal output's error against a 64-spp reference stays within the per-frame error + 10 %."""
    scene = _animated_box_scene(tmp_path, 5)
    scene.camera.location = (0.0, -9.0, 3.0)
    scene.camera.rotation_euler = (1.35, 0.0, 0.0)
    scene.render.resolution_x, scene.render.resolution_y = 128, 64
    for key in ("use_pass_z", "use_pass_normal", "use_pass_diffuse_color", "use_pass_glossy_color",
                "use_pass_emit", "use_pass_object_index", "use_pass_vector"):
        setattr(scene.view_layers[0], key, True)
    from conftest import submodule
    passes = submodule("passes")
    passes.tag_classes(scene)
    passes.enable_passes(scene, scene.view_layers[0], ["roughness", "metallic", "noisy"])   # + denoiser
    renders = {}
    for name, samples in (("fast", 4), ("reference", 64)):
        scene.cycles.samples = samples
        set_multilayer_output(scene, str(tmp_path / f"{name}_####"))
        bpy.ops.render.render(animation=True)
        renders[name] = [exr.read_frame(tmp_path / f"{name}_{n:04d}.exr") for n in range(1, 6)]
    filt = temporal.TemporalFilter()
    box = float(bpy.data.objects["Box"].pass_index)
    checked = 0
    for t, (fast, ref) in enumerate(zip(renders["fast"], renders["reference"])):
        per_frame = reference_enhancer.enhance(fast)
        out = filt.apply(fast, per_frame, t + 1)
        if t == 0:
            continue
        was_box = renders["fast"][t - 1]["object_index"][..., 0] == box
        uncovered = was_box & (fast["object_index"][..., 0] != box)
        assert uncovered.sum() >= 20, uncovered.sum()
        error = lambda image: float(np.mean((image[uncovered] - ref["image"][uncovered]) ** 2))
        print(f"frame {t + 1}: {int(uncovered.sum())} px uncovered, error temporal "
              f"{error(out):.4g}, per-frame {error(per_frame):.4g}")
        assert error(out) <= 1.1 * error(per_frame)
        checked += 1
    assert checked == 4 and filt.last_history_fraction > 0.5


def test_eevee_animation_is_filtered_too(addon, tmp_path, reference_enhancer):
    """EEVEE frames are enhanced after writing (addon/batch.py): the same filter runs there."""
    from conftest import EEVEE
    scene = build_scene(engine=EEVEE, strength=1.0)
    box = bpy.data.objects["Box"]
    for number, x in ((1, -1.5), (2, -1.2)):
        box.location = (x, 0.0, 0.75)
        box.keyframe_insert("location", frame=number)
    scene.frame_start, scene.frame_end = 1, 2
    scene.photoreal.enhance_on_render = True
    assert scene.view_layers[0].use_pass_vector
    set_multilayer_output(scene, str(tmp_path / "eevee_####"))
    # Rendered in a Blender process of its own, as `blender -b -a` would: in this one, after the
    # tests before it, Blender 5.2's software EEVEE crashed here on a loaded 2-core machine (3 of 3
    # runs; alone it passed, and so did session 9's code under the same load: not ours).
    blend = tmp_path / "eevee.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    script = (RENDER_ANIMATION.format(addon=ADDON)
              + f"print('HISTORY', sys.modules[{ADDON + '.temporal'!r}].LAST['history'])\n")
    done = subprocess.run([sys.executable, "-c", script, str(blend)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    enhanced, per_frame = [], []
    for number in (1, 2):
        path = tmp_path / f"eevee_{number:04d}.exr"
        frame = exr.read_frame(path, "ViewLayer")
        per_frame.append(reference_enhancer.enhance(frame, engine=EEVEE))
        enhanced.append(layer_rgb(exr.read_channels(path), "ViewLayer", "Photoreal"))
    np.testing.assert_allclose(enhanced[0], per_frame[0], atol=1e-5)
    # EEVEE frames have no sampling noise and the bundled RAD changes them little, so history and
    # the current frame nearly agree: the filter ran (history below) and stays close.
    assert np.abs(enhanced[1] - per_frame[1]).mean() < 0.1 * np.abs(per_frame[1]).mean()
    history = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("HISTORY ")]
    assert history and float(history[-1]) > 0.5, done.stdout[-2000:]


def test_follow_lighting_changes_setting_reaches_the_filter(addon):
    """Panel > Follow Lighting Changes (on by default) sets the filter's lighting test."""
    from conftest import submodule
    scene = build_scene(strength=1.0)
    module = submodule("temporal")
    frame = {"motion": np.zeros((4, 6, 4), np.float32)}
    assert scene.photoreal.temporal and scene.photoreal.temporal_lighting
    for follow in (True, False):
        module.reset()
        scene.photoreal.temporal_lighting = follow
        module.apply(scene, scene.view_layers[0].name, frame, np.ones((4, 6, 3), np.float32))
        filt = module._FILTERS[(scene.name, scene.view_layers[0].name)]
        assert (filt.settings.lighting_gain > 0) == follow
