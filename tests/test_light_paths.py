"""The `bounces` input: the render's light-path depth as a constant plane, from the schema through
the runtime, the CLI and the dataset files."""
import numpy as np
import pytest

from neural_core import cli, exr, schema
from neural_core.dataset_format import DatasetFormatError, DatasetReader, DatasetWriter
from neural_core.runtime import Enhancer

from runtime_models import build, export_model, make_frame, metadata_for, torch_reference

PASSES = ("image", "noisy", *schema.DEFAULT_GBUFFER_PASSES, "object_index")


@pytest.mark.parametrize("max_bounces,diffuse,value", [
    (1, None, 0.25), (12, 4, 1.0), (12, 2, 0.5), (2, 4, 0.5), (0, None, 0.0), (1024, None, 1.0)])
def test_bounce_depth_is_the_diffuse_depth_over_the_full_depth(max_bounces, diffuse, value):
    assert schema.bounce_depth(max_bounces, diffuse) == value


def test_the_plane_is_a_constant_view_and_the_frame_is_not_changed():
    frame = make_frame(6, 10, passes=["image"])
    lit = schema.with_light_paths(frame, 3, 4)
    assert "bounces" not in frame and lit["image"] is frame["image"]
    assert lit["bounces"].shape == (6, 10, 1) and lit["bounces"].strides == (0, 0, 0)
    assert np.all(lit["bounces"] == 0.75)
    assert not schema.pass_spec("bounces").rendered and schema.pass_spec("depth").rendered


@pytest.fixture(scope="module")
def bounce_model(tmp_path_factory):
    net = build("rad", image_passes=("image", "noisy"),
                gbuffer_passes=(*schema.DEFAULT_GBUFFER_PASSES, "bounces"))
    meta = metadata_for(net)
    path = export_model(net, tmp_path_factory.mktemp("bounces") / "rad.onnx", meta)
    return net, meta, path


def test_the_model_reads_the_plane_and_an_unknown_depth_counts_as_full(bounce_model):
    net, meta, path = bounce_model
    assert "bounces" in meta.required_passes
    enhancer = Enhancer.from_pretrained(path, device="cpu", threads=1)
    frame = make_frame(64, 96, passes=list(PASSES), seed=3)
    one = enhancer.enhance(schema.with_light_paths(frame, 1))
    assert enhancer.last_warnings == []
    np.testing.assert_allclose(one, torch_reference(net, schema.with_light_paths(frame, 1), meta),
                               rtol=1e-4, atol=1e-4)
    full = enhancer.enhance(schema.with_light_paths(frame, 12, 4))
    assert np.abs(one - full).max() > 1e-3, "the plane changes the output"
    unknown = enhancer.enhance(frame)
    np.testing.assert_array_equal(unknown, full)
    assert any("--bounces" in w and "full light paths" in w for w in enhancer.last_warnings)


def test_cli_bounces_reach_the_model_and_absurd_values_are_refused(bounce_model, tmp_path, capsys):
    _, _, path = bounce_model
    frame = make_frame(64, 96, passes=list(PASSES), seed=4)
    exr.write_frame(tmp_path / "in.exr", frame, blender_version=(4, 5))
    common = ["enhance", str(tmp_path / "in.exr"), "--model", str(path), "--threads", "1"]
    assert cli.main([*common, "--out", str(tmp_path / "one.exr"), "--bounces", "1"]) == 0
    assert "--bounces" not in capsys.readouterr().err
    enhancer = Enhancer.from_pretrained(path, device="cpu", threads=1)
    expected = enhancer.enhance(schema.with_light_paths(exr.read_frame(tmp_path / "in.exr"), 1))
    np.testing.assert_array_equal(exr.read_frame(tmp_path / "one.exr")["image"], expected)
    with pytest.raises(SystemExit):
        cli.main([*common, "--out", str(tmp_path / "x.exr"), "--bounces", "-1"])
    assert "Max Bounces" in capsys.readouterr().err and not (tmp_path / "x.exr").exists()


def test_datasets_record_each_frames_light_paths_and_serve_the_plane(tmp_path):
    frame = make_frame(16, 24, passes=["image", "depth", "normal", "object_index"])
    writer = DatasetWriter(tmp_path / "d", engine="CYCLES", samples=4, resolution=(24, 16))
    writer.write_frame(1, frame, light_paths={"max_bounces": 12, "diffuse_bounces": 2})
    writer.write_frame(2, frame, light_paths={"max_bounces": 1})
    with pytest.raises(DatasetFormatError, match="max_bounces"):
        writer.write_frame(3, frame, light_paths={"bounces": 3})
    reader = DatasetReader(tmp_path / "d")
    assert reader.knows_light_paths and "bounces" not in reader.gbuffer_passes
    assert float(reader.read_frame(1)["bounces"].max()) == 0.5
    assert float(reader.read_frame(2)["bounces"].max()) == 0.25
    writer.write_frame(4, frame)   # exported without it: the dataset no longer knows
    assert not DatasetReader(tmp_path / "d").knows_light_paths
    assert "bounces" not in DatasetReader(tmp_path / "d").read_frame(4)
