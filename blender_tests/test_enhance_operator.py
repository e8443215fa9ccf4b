"""The "Photoreal Enhance" button: passes, render, model, compositor (pixel values)."""
from pathlib import Path

import bpy
import numpy as np
import pytest

from conftest import (build_scene, cli_model_argument, comp_tree, image_rgb, layer_rgb,
                      run_cli_enhance, save_render, submodule)
from neural_core import exr, schema

STRENGTH = 0.5
# scripts/make_test_models.py: an untrained tiny RAD that reads the `bounces` input.
BOUNCES_MODEL = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "rad_bounces_tiny.onnx"


@pytest.fixture
def enhanced_scene(addon):
    scene = build_scene(strength=STRENGTH)
    assert bpy.ops.photoreal.enhance() == {"FINISHED"}
    return scene


def test_composite_is_mix_of_render_and_enhanced(enhanced_scene, tmp_path):
    bpy.ops.render.render()
    channels = exr.read_channels(save_render(enhanced_scene, tmp_path / "after.exr"))
    render = layer_rgb(channels, "ViewLayer")
    composite = layer_rgb(channels, "Composite")
    enhanced = image_rgb(bpy.data.images["Photoreal Enhance"])
    assert enhanced.shape == render.shape == (48, 64, 3)
    assert np.abs(enhanced - render).max() > 1e-3, "the model changed nothing: the test would be blind"
    expected = (1 - STRENGTH) * render + STRENGTH * enhanced
    assert np.abs(composite - expected).max() < 1e-3


def test_enhanced_image_equals_cli_on_same_frame(enhanced_scene, tmp_path):
    frame_exr = save_render(enhanced_scene, tmp_path / "frame.exr")
    cli = run_cli_enhance(frame_exr, tmp_path / "cli.exr", cli_model_argument())
    addon_image = image_rgb(bpy.data.images["Photoreal Enhance"])
    np.testing.assert_allclose(addon_image, cli, atol=1e-5, rtol=1e-5)


def test_operator_enables_passes_and_tags_classes(enhanced_scene, tmp_path):
    settings = enhanced_scene.photoreal
    required = submodule("enhance").required_passes(settings)
    view_layer = enhanced_scene.view_layers[0]
    status = dict(submodule("passes").pass_status(enhanced_scene, view_layer, required))
    assert status and all(status.values()), status
    assert bpy.data.objects["Box"].pass_index == schema.pass_index_for_class("car")
    frame = exr.read_frame(save_render(enhanced_scene, tmp_path / "f.exr"))
    classes = set(np.unique(schema.class_map_from_frame(frame)).tolist())
    assert {schema.class_id("road"), schema.class_id("car"), schema.class_id("person")} <= classes


def test_operator_turns_on_the_denoiser_the_model_works_on(addon, tmp_path):
    """The bundled RAD corrects Cycles' denoised image and reads the noisy one: on a scene
    rendered with the denoiser off and no denoising data, the button turns both on, and the
    frame it enhanced has the noisy image beside the denoised Combined."""
    scene = build_scene(strength=1.0)
    view_layer = scene.view_layers[0]
    assert not scene.cycles.use_denoising and not view_layer.cycles.denoising_store_passes
    required = submodule("enhance").required_passes(scene.photoreal)
    assert "noisy" in required
    bpy.ops.render.render()                       # the user's render: no noisy image in it
    assert bpy.ops.photoreal.enhance() == {"FINISHED"}
    assert scene.cycles.use_denoising and view_layer.cycles.denoising_store_passes
    frame = exr.read_frame(save_render(scene, tmp_path / "frame.exr"))
    assert np.abs(frame["noisy"] - frame["image"]).mean() > 1e-3   # denoised != noisy at 2 spp
    cli = run_cli_enhance(tmp_path / "frame.exr", tmp_path / "cli.exr", cli_model_argument())
    np.testing.assert_allclose(image_rgb(bpy.data.images["Photoreal Enhance"]), cli, atol=1e-5, rtol=1e-5)


def test_a_render_made_without_the_denoiser_is_denoised_by_the_node_not_rendered_again(addon, tmp_path):
    """A user who rendered with Cycles' denoiser off (every other pass on) presses the button:
    no new render; Blender's Denoise node gives the denoised image the model starts from, and
    the render's Combined is its noisy image. The enhanced image equals the runtime on exactly
    that frame, and the user's render result is left as it was."""
    scene = build_scene(strength=1.0)
    assert bpy.ops.photoreal.enhance() == {"FINISHED"}        # turns every needed pass on
    scene.cycles.use_denoising = False                       # ... and the user turns it off
    bpy.ops.render.render()
    before = exr.read_frame(save_render(scene, tmp_path / "before.exr"))
    assert "noisy" not in before and "albedo" in before and "normal" in before

    renders = []
    count = lambda s, *_: renders.append(s.name)  # noqa: E731
    bpy.app.handlers.render_pre.append(count)
    try:
        assert bpy.ops.photoreal.enhance() == {"FINISHED"}
    finally:
        bpy.app.handlers.render_pre.remove(count)
    assert scene.name not in renders, "the user's scene was rendered again"
    assert "Photoreal Denoise" not in bpy.data.scenes

    after = exr.read_frame(save_render(scene, tmp_path / "after.exr"))
    np.testing.assert_array_equal(after["image"], before["image"])   # the render result is intact
    denoise_node = submodule("denoise_node")
    with denoise_node.DenoiseNode() as node:
        denoised = node(before)
    assert np.abs(denoised - before["image"]).mean() > 1e-3, "the node changed nothing at 2 spp"
    frame = schema.with_light_paths(schema.on_denoised(before, denoised), **submodule("passes").light_paths(scene))
    assert frame["noisy"] is before["image"]
    from neural_core.runtime import Enhancer
    expected = Enhancer.from_pretrained(cli_model_argument(), device="cpu").enhance(frame, engine="CYCLES")
    np.testing.assert_allclose(image_rgb(bpy.data.images["Photoreal Enhance"]), expected, atol=1e-5, rtol=1e-5)


def test_the_render_light_paths_reach_the_model(addon, tmp_path):
    """A model that reads the render's light-path depth (`bounces`) gets the scene's Max/Diffuse
    Bounces from the button, exactly what `--bounces` gives it on the command line, and a
    1-bounce render is enhanced differently from the same pixels said to be fully lit."""
    model = str(BOUNCES_MODEL)
    scene = build_scene(strength=1.0)
    scene.photoreal.model, scene.photoreal.custom_model = "CUSTOM", model
    scene.cycles.max_bounces, scene.cycles.diffuse_bounces = 1, 4
    assert "bounces" in submodule("enhance").required_passes(scene.photoreal)
    assert bpy.ops.photoreal.enhance() == {"FINISHED"}
    frame_exr = save_render(scene, tmp_path / "frame.exr")
    addon_image = image_rgb(bpy.data.images["Photoreal Enhance"])
    one = run_cli_enhance(frame_exr, tmp_path / "one.exr", model, "--bounces", "1")
    np.testing.assert_allclose(addon_image, one, atol=1e-5, rtol=1e-5)
    full = run_cli_enhance(frame_exr, tmp_path / "full.exr", model)
    assert np.abs(full - one).max() > 1e-3


def _tree_snapshot(tree):
    nodes = sorted((n.name, n.bl_idname) for n in tree.nodes)
    links = sorted((l.from_node.name, l.from_socket.identifier, l.to_node.name, l.to_socket.identifier)
                   for l in tree.links)
    return nodes, links


def test_pressing_twice_keeps_one_set_of_nodes_and_user_nodes(addon):
    scene = build_scene(strength=STRENGTH)
    compositor = submodule("compositor")
    tree = compositor.get_tree(scene)
    out = compositor.output_socket(tree, scene)
    rl = compositor.render_layers(tree, scene)
    user = tree.nodes.new("CompositorNodeBlur")     # the user's own node, in the output chain
    user.name = "My Blur"
    tree.links.new(rl.outputs["Image"], user.inputs[0])
    tree.links.new(user.outputs[0], out)

    assert bpy.ops.photoreal.enhance() == {"FINISHED"}
    first = _tree_snapshot(tree)
    assert bpy.ops.photoreal.enhance() == {"FINISHED"}
    assert _tree_snapshot(tree) == first

    ours = [n for n in tree.nodes if n.name.startswith("Photoreal")]
    assert sorted(n.name for n in ours) == ["Photoreal Image", "Photoreal Mix"]
    assert "My Blur" in tree.nodes
    mix = tree.nodes["Photoreal Mix"]
    factor, a, b, result = compositor.mix_sockets(mix)
    assert a.links[0].from_node.name == "My Blur"          # the user's chain feeds our mix
    assert out.links[0].from_node == mix
    assert b.links[0].from_node.name == "Photoreal Image"
    assert factor.default_value == pytest.approx(STRENGTH)
    assert comp_tree(scene) == tree


def test_strength_property_drives_the_mix(enhanced_scene):
    enhanced_scene.photoreal.strength = 0.25
    mix = comp_tree(enhanced_scene).nodes["Photoreal Mix"]
    assert submodule("compositor").mix_sockets(mix)[0].default_value == pytest.approx(0.25)


def test_missing_custom_model_is_reported_not_raised_from_inside(addon, tmp_path):
    scene = build_scene()
    scene.photoreal.model = "CUSTOM"
    scene.photoreal.custom_model = str(tmp_path / "nope.onnx")
    # bpy.ops turns an ERROR report into RuntimeError carrying the report's text.
    with pytest.raises(RuntimeError, match="no model file at .*nope.onnx"):
        bpy.ops.photoreal.enhance()
    assert "Photoreal Mix" not in (comp_tree(scene).nodes if comp_tree(scene) else [])


def test_enhanced_image_is_kept_in_the_saved_file(enhanced_scene, tmp_path):
    before = image_rgb(bpy.data.images["Photoreal Enhance"])
    bpy.ops.wm.save_as_mainfile(filepath=str(tmp_path / "saved.blend"))
    bpy.ops.wm.open_mainfile(filepath=str(tmp_path / "saved.blend"))
    np.testing.assert_array_equal(image_rgb(bpy.data.images["Photoreal Enhance"]), before)
    # Pressing again in the reopened file updates the packed image in place.
    assert bpy.ops.photoreal.enhance(rerender=True) == {"FINISHED"}
    np.testing.assert_allclose(image_rgb(bpy.data.images["Photoreal Enhance"]), before, atol=1e-6)


def test_nodes_without_an_enhanced_image_pass_the_render_through(addon, tmp_path):
    scene = build_scene(strength=STRENGTH)
    submodule("compositor").ensure_nodes(scene)
    bpy.ops.render.render()
    channels = exr.read_channels(save_render(scene, tmp_path / "plain.exr"))
    np.testing.assert_allclose(layer_rgb(channels, "Composite"), layer_rgb(channels, "ViewLayer"),
                               atol=1e-6)


def test_crn_model_synthesizes_from_classes(addon, tmp_path):
    scene = build_scene(strength=1.0)
    scene.photoreal.model = "CRN"
    assert bpy.ops.photoreal.enhance() == {"FINISHED"}
    frame_exr = save_render(scene, tmp_path / "frame.exr")
    cli = run_cli_enhance(frame_exr, tmp_path / "crn.exr", "crn")
    np.testing.assert_allclose(image_rgb(bpy.data.images["Photoreal Enhance"]), cli, atol=1e-5, rtol=1e-5)
