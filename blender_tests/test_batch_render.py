"""Enhance on render: every frame of an animation, Cycles in-memory pass and EEVEE post-process."""
import subprocess
import sys

import bpy
import numpy as np
import pytest

from conftest import (ADDON, EEVEE, RENDER_ANIMATION, ROOT, animate_box, build_scene, comp_tree,
                      image_rgb, layer_rgb, set_multilayer_output, submodule)
from neural_core import exr, schema

STRENGTH = 0.5



def test_cycles_animation_enhances_each_frame_from_its_own_passes(addon, tmp_path, reference_enhancer):
    scene = build_scene(strength=STRENGTH)
    animate_box(scene)
    scene.photoreal.temporal = False     # per-frame mode (temporal mode: test_temporal.py)
    scene.photoreal.enhance_on_render = True      # sets up passes, classes and the compositor
    set_multilayer_output(scene, str(tmp_path / "frame_####"))
    blend = tmp_path / "scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))

    script = RENDER_ANIMATION.format(addon=ADDON)
    done = subprocess.run([sys.executable, "-c", script, str(blend)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    enhanced_frames = []
    for number in (1, 2, 3):
        path = tmp_path / f"frame_{number:04d}.exr"
        channels = exr.read_channels(path)
        render = layer_rgb(channels, "ViewLayer")
        enhanced = layer_rgb(channels, "ViewLayer", "Photoreal")
        composite = layer_rgb(channels, "Composite")
        expected = reference_enhancer.enhance(exr.read_frame(path, "ViewLayer"))
        np.testing.assert_allclose(enhanced, expected, atol=1e-5, rtol=1e-5)
        assert np.abs(composite - ((1 - STRENGTH) * render + STRENGTH * enhanced)).max() < 1e-3
        enhanced_frames.append(enhanced)
    # The box moves, so each frame's enhancement is its own.
    assert np.abs(enhanced_frames[0] - enhanced_frames[1]).max() > 1e-2
    assert np.abs(enhanced_frames[1] - enhanced_frames[2]).max() > 1e-2


def test_eevee_still_is_enhanced_after_writing(addon, tmp_path, reference_enhancer):
    """EEVEE has no index passes: the class ids come from the add-on's class AOV."""
    scene = build_scene(engine=EEVEE, strength=STRENGTH)
    scene.photoreal.enhance_on_render = True
    assert "photoreal_class" in scene.view_layers[0].aovs
    set_multilayer_output(scene, str(tmp_path / "still.exr"))
    bpy.ops.render.render(write_still=True)

    path = tmp_path / "still.exr"
    channels = exr.read_channels(path)
    frame = exr.read_frame(path, "ViewLayer")
    classes = set(np.unique(schema.class_map_from_frame(frame, "class_aov")).tolist())
    assert {schema.class_id("road"), schema.class_id("car"), schema.class_id("person")} <= classes
    # The runtime serves the class AOV as the class source and Combined as EEVEE's noisy image.
    enhanced = reference_enhancer.enhance(frame, engine=EEVEE)
    render = layer_rgb(channels, "ViewLayer")
    composite = layer_rgb(channels, "Composite")
    assert np.abs(enhanced - render).max() > 1e-3
    assert np.abs(composite - ((1 - STRENGTH) * render + STRENGTH * enhanced)).max() < 1e-3
    # Like Cycles' files, the EXR carries the enhanced image as its own layer.
    np.testing.assert_allclose(layer_rgb(channels, "ViewLayer", "Photoreal"), enhanced, atol=1e-5)
    # The Mix factor is back to the user's strength after the render.
    mix = comp_tree(scene).nodes["Photoreal Mix"]
    assert submodule("compositor").mix_sockets(mix)[0].default_value == pytest.approx(STRENGTH)

    # The button works on EEVEE too, from the same render (it has every pass, so no re-render).
    assert bpy.ops.photoreal.enhance() == {"FINISHED"}
    np.testing.assert_allclose(image_rgb(bpy.data.images["Photoreal Enhance"]), enhanced, atol=1e-5)


def test_cycles_render_with_a_failing_model_reports_and_keeps_the_render(addon, tmp_path, capsys):
    scene = build_scene(strength=STRENGTH)
    scene.photoreal.enhance_on_render = True
    scene.photoreal.model, scene.photoreal.custom_model = "CUSTOM", str(tmp_path / "gone.onnx")
    set_multilayer_output(scene, str(tmp_path / "still.exr"))
    bpy.ops.render.render(write_still=True)
    assert "frame 1 not enhanced: no model file at" in capsys.readouterr().err
    channels = exr.read_channels(tmp_path / "still.exr")
    # Not a darkened mix with an empty pass: the frame is the plain render.
    np.testing.assert_allclose(layer_rgb(channels, "Composite"), layer_rgb(channels, "ViewLayer"),
                               atol=1e-6)
