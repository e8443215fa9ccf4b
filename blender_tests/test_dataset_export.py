"""photoreal.export_dataset: files that neural_core.dataset_format (and so training) reads back."""
import json

import bpy
import numpy as np

from conftest import animate_box, blender_api, build_scene, save_render, submodule
from neural_core import dataset_format, display, exr, schema


def test_export_three_frames_reads_back_the_rendered_values(addon, tmp_path):
    scene = build_scene()
    animate_box(scene)
    scene.cycles.max_bounces, scene.cycles.diffuse_bounces = 3, 2
    out = tmp_path / "dataset"
    assert bpy.ops.photoreal.export_dataset(directory=str(out), frame_start=1, frame_end=3) == {"FINISHED"}

    reader = dataset_format.DatasetReader(out)
    assert reader.frames == [1, 2, 3]
    manifest = reader.manifest
    assert manifest["engine"] == "CYCLES" and manifest["samples"] == 2
    assert manifest["blender_version"] == blender_api.VERSION_STRING
    assert manifest["schema_version"] == schema.SCHEMA_VERSION
    assert manifest["resolution"] == [64, 48] and reader.class_source == "object_index"
    assert {"depth", "normal", "albedo", "roughness", "metallic", "motion"} <= set(reader.gbuffer_passes)
    # No pass holds the light-path depth: each frame records it, and reads back as the plane.
    assert reader.knows_light_paths and "bounces" not in reader.gbuffer_passes
    assert {tuple(manifest["frames"][str(n)]["light_paths"].items()) for n in reader.frames} == \
        {(("max_bounces", 3), ("diffuse_bounces", 2))}
    assert np.all(reader.read_frame(2)["bounces"] == 0.5)
    assert (out / "list.txt").read_text().splitlines()[0] == \
        "image/000001.png,labels/000001.png,gbuffers/000001.npz,labels/000001.png"

    images = []
    for number in reader.frames:
        # Render the frame again here: Cycles is deterministic, so the files must hold exactly it.
        scene.frame_set(number)
        bpy.ops.render.render()
        rendered = exr.read_frame(save_render(scene, tmp_path / f"check{number}.exr"), "ViewLayer")
        stored = reader.read_frame(number)
        for key in ("image", "depth", "normal", "albedo", "roughness", "object_index"):
            np.testing.assert_array_equal(stored[key], rendered[key], err_msg=key)
        labels = reader.read_labels(number)
        np.testing.assert_array_equal(labels, schema.class_map_from_frame(rendered))
        assert {schema.class_id("road"), schema.class_id("car")} <= set(np.unique(labels).tolist())
        npz = reader.read_gbuffers_npz(number)
        assert list(npz["channels"]) == reader.gbuffer_channels
        expected = np.concatenate([rendered[k] for k in reader.gbuffer_passes], axis=-1)
        np.testing.assert_array_equal(npz["gbuffers"], expected)
        np.testing.assert_array_equal(npz["img"], display.to_display(rendered["image"]))
        np.testing.assert_array_equal(reader.read_image(number), npz["img"])
        images.append(stored["image"])
    assert np.abs(images[0] - images[2]).max() > 1e-2       # the box moved: three distinct frames


def test_export_resumes_without_redoing_finished_frames(addon, tmp_path):
    scene = build_scene()
    out = tmp_path / "dataset"
    export = submodule("dataset_export").export_frames
    first = export(scene, str(out), 1, 2)
    assert first.written == [1, 2] and first.skipped == []
    stamp = (out / "frames" / "000001.exr").stat().st_mtime_ns
    # An interrupted frame 3: a stray file but no manifest entry. It must be redone, not trusted.
    (out / "frames" / "000003.exr").write_bytes(b"truncated")

    second = export(scene, str(out), 1, 3)
    assert second.written == [3] and second.skipped == [1, 2]
    assert (out / "frames" / "000001.exr").stat().st_mtime_ns == stamp
    assert dataset_format.DatasetReader(out).read_frame(3)["image"].shape == (48, 64, 3)
    assert json.loads((out / "manifest.json").read_text())["frames"]["3"]["complete"] is True
