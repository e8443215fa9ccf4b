"""Issue 13's fault probe, outside Blender: each case asserts the real outcome (a file kept, one
error line naming the fix, a frame that enhances). The Blender cases are in
blender_tests/test_reliability.py; docs/reliability.md lists them all."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from neural_core import dataset_format, exr, fallbacks, limits, schema
from neural_core.errors import CorruptFileError, NonFiniteError, PhotorealError, SizeMismatchError
from neural_core.runtime import Enhancer

from runtime_models import build, export_model, make_frame

ROOT = Path(__file__).resolve().parents[1]
RAD_PASSES = ["image", "alpha", *schema.DEFAULT_GBUFFER_PASSES, "object_index"]


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "neural_core", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, env=env)


def one_error_line(result) -> str:
    """The run failed with status 2 and exactly one line on stderr, 'error: ...'."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def tiny_rad(tmp_path_factory):
    return export_model(build("rad"), tmp_path_factory.mktemp("model") / "rad.onnx")


@pytest.fixture(scope="module")
def frame_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("frames") / "frame.exr"
    exr.write_frame(path, make_frame(48, 64, passes=RAD_PASSES, seed=3), blender_version=(5, 2))
    return path


def _rewired(source: Path, path: Path, make_nodes) -> Path:
    """A copy of a model whose output goes through extra nodes: make_nodes(pre, out) -> (nodes,
    initializers). The metadata stays, so the runtime loads it like any custom model."""
    proto = onnx.load(str(source))
    out = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = ["pre_out" if o == out else o for o in node.output]
    nodes, inits = make_nodes("pre_out", out)
    proto.graph.node.extend(nodes)
    proto.graph.initializer.extend(inits)
    del proto.graph.output[0].type.tensor_type.shape.dim[:]
    onnx.save(proto, str(path))
    return path


# -- item 1: names from files never build paths ----------------------------------------------------

def test_manifest_paths_outside_the_dataset_are_refused(tmp_path):
    victim = tmp_path / "victim.exr"
    exr.write_frame(victim, make_frame(16, 16, passes=["image", "object_index"]))
    data = tmp_path / "data"
    writer = dataset_format.DatasetWriter(data, engine="CYCLES", samples=1, resolution=(16, 16))
    writer.write_frame(1, make_frame(16, 16, passes=["image", "object_index"], seed=1))
    manifest = json.loads((data / "manifest.json").read_text())
    manifest["frames"]["1"]["files"]["exr"] = "../victim.exr"
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(dataset_format.DatasetFormatError, match="outside the dataset folder"):
        dataset_format.DatasetReader(data).read_frame(1)
    manifest["frames"]["1"]["files"]["exr"] = str(victim)      # absolute paths too
    (data / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(dataset_format.DatasetFormatError, match="outside the dataset folder"):
        dataset_format.DatasetReader(data).read_frame(1)


# -- item 5: view layers with dots ---------------------------------------------------------------------

@pytest.mark.parametrize("layer", ["ViewLayer.001", "../x", "a.b.c"])
def test_view_layer_names_with_dots_enhance_end_to_end(tiny_rad, tmp_path, layer):
    frame = make_frame(48, 64, passes=RAD_PASSES, seed=5)
    path = tmp_path / "frame.exr"
    exr.write_frame(path, frame, view_layer=layer, blender_version=(4, 5))
    assert set(exr.read_frame(path)) == set(RAD_PASSES)
    assert set(exr.read_frame(path, layer)) == set(RAD_PASSES)
    out = tmp_path / "out.exr"
    result = run_cli("enhance", path, "--model", tiny_rad, "--out", out, "--threads", "1",
                     "--view-layer", layer)
    assert result.returncode == 0, result.stderr
    expected = Enhancer.from_pretrained(tiny_rad, device="cpu", threads=1).enhance(frame)
    got = np.stack([exr.read_channels(out)[c] for c in "RGB"], -1)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_passes_unknown_to_the_schema_stay_with_their_dotted_layer():
    plane = np.zeros((2, 2), np.float32)
    channels = {f"ViewLayer.001.{p}.{c}": plane for p, cs in (("Combined", "RGBA"),
                ("Noisy Image", "RGB")) for c in cs}
    layers = schema._layers(channels)
    assert set(layers) == {"ViewLayer.001"}
    assert set(layers["ViewLayer.001"]) == {"Combined", "Noisy Image"}


# -- item 6: arguments ----------------------------------------------------------------------------------

@pytest.mark.parametrize("args,message", [
    (["--threads", "100000"], "--threads must be between 1 and 256"),
    (["--threads", "-2"], "--threads must be between 1 and 256"),
    (["--tile", "7"], "at least 256 px, not 7"),
    (["--tile", "-1"], "at least 256 px, not -1"),
    (["--exposure", "1e6"], "--exposure must be between -64 and 64 stops"),
])
def test_bad_arguments_give_one_line_with_the_allowed_range(tiny_rad, frame_path, tmp_path, args, message):
    out = tmp_path / "out.png"
    line = one_error_line(run_cli("enhance", frame_path, "--model", tiny_rad, "--out", out, *args))
    assert message in line
    assert not out.exists()


def test_threads_above_the_cpu_count_are_capped(tiny_rad, frame_path, tmp_path):
    asked = limits.cpu_count() + 1
    if asked > limits.MAX_THREADS:
        pytest.skip("more CPUs than the thread limit")
    out = tmp_path / "out.exr"
    result = run_cli("enhance", frame_path, "--model", tiny_rad, "--out", out, "--threads", asked)
    assert result.returncode == 0, result.stderr
    assert f"--threads {asked} capped at the {limits.cpu_count()} CPUs" in result.stderr
    assert out.is_file()
    forced = run_cli("enhance", frame_path, "--model", tiny_rad, "--out", out, "--threads", asked,
                     "--force-threads")
    assert forced.returncode == 0 and "capped" not in forced.stderr, forced.stderr


def test_frames_that_would_not_fit_in_memory_are_refused_before_running():
    enhancer = Enhancer.from_pretrained("rad", device="cpu", tile_size=0, threads=1)
    h, w = 4320, 7680   # 8K, untiled: ~23 GB of working memory
    with pytest.raises(PhotorealError, match="use a smaller tile"):
        limits.check_memory("rad", enhancer._pixels_at_once(h, w), h, w, available=8 << 30)
    tiled = Enhancer.from_pretrained("rad", device="cpu", threads=1)   # default 1024 px tiles
    limits.check_memory("rad", tiled._pixels_at_once(h, w), h, w, available=8 << 30)


# -- item 7: failing before the work, bad files, bad models ----------------------------------------

def test_output_under_a_file_fails_before_any_work(tiny_rad, frame_path, tmp_path):
    (tmp_path / "file").write_text("x")
    result = run_cli("enhance", frame_path, "--model", tiny_rad, "--out", tmp_path / "file" / "o.exr")
    assert "is a file, not a folder" in one_error_line(result)
    assert "provider:" not in result.stdout       # the model was never loaded
    line = one_error_line(run_cli("enhance", frame_path, "--model", tiny_rad, "--out", tmp_path))
    assert "must end in" in line or "is a folder" in line


def test_a_model_that_outputs_nan_is_refused_and_nothing_is_written(tiny_rad, frame_path, tmp_path):
    def times_nan(pre, out):
        nan = numpy_helper.from_array(np.array(np.nan, np.float32), "nan")
        return [helper.make_node("Mul", [pre, "nan"], [out])], [nan]
    model = _rewired(tiny_rad, tmp_path / "nan.onnx", times_nan)
    out = tmp_path / "out.exr"
    line = one_error_line(run_cli("enhance", frame_path, "--model", model, "--out", out, "--threads", "1"))
    assert "NaN/inf" in line and "nothing was written" in line
    assert not out.exists()
    with pytest.raises(NonFiniteError):
        Enhancer.from_pretrained(model, device="cpu", threads=1).enhance(exr.read_frame(frame_path))


def test_a_model_with_a_one_channel_output_is_refused(tiny_rad, frame_path, tmp_path):
    def first_channel(pre, out):
        inits = [numpy_helper.from_array(np.array(v, np.int64), n)
                 for v, n in (([0], "s"), ([1], "e"), ([1], "a"))]
        return [helper.make_node("Slice", [pre, "s", "e", "a"], [out])], inits
    model = _rewired(tiny_rad, tmp_path / "one.onnx", first_channel)
    line = one_error_line(run_cli("enhance", frame_path, "--model", model, "--out",
                                  tmp_path / "o.exr", "--threads", "1"))
    assert "1 channel(s) per image" in line


def test_an_id_pass_of_another_size_is_refused_not_resized(tmp_path):
    frame = make_frame(64, 128, passes=["image", "object_index"])
    frame["object_index"] = frame["object_index"][::2, ::2].copy()
    crn = Enhancer.from_pretrained("crn", device="cpu", threads=1)
    with pytest.raises(SizeMismatchError, match="passes differ in size"):
        crn.enhance(frame)
    path = tmp_path / "half.exr"
    channels = {f"ViewLayer.Combined.{c}": frame["image"][..., i] for i, c in enumerate("RGB")}
    exr.write_channels(path, channels)
    assert "lacks pass" in one_error_line(run_cli("enhance", path, "--model", "crn", "--out",
                                                  tmp_path / "o.png"))


def test_a_corrupt_gbuffers_npz_is_one_clear_error(tmp_path):
    from training.data.sources import open_source
    data = tmp_path / "data"
    writer = dataset_format.DatasetWriter(data, engine="CYCLES", samples=1, resolution=(32, 16))
    writer.write_frame(1, make_frame(16, 32, passes=["image", "depth", "normal", "object_index"]))
    npz = data / dataset_format.relative_paths(1)["gbuffers"]
    npz.write_bytes(b"PK\x03\x04 not a zip")
    with pytest.raises(CorruptFileError, match="cannot read"):
        dataset_format.DatasetReader(data).read_gbuffers_npz(1)
    with pytest.raises(CorruptFileError, match="re-export it or remove it"):
        open_source(f"epe:{data / dataset_format.LIST_FILE}")


def test_build_addon_without_network_or_wheels_says_what_to_do(tmp_path):
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_FIND_LINKS=str(tmp_path / "none"))
    done = subprocess.run([sys.executable, "build_addon.py", "--out", str(tmp_path / "dist"),
                           "--wheel-cache", str(tmp_path / "cache")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error: could not download")


# -- item 8: messages that name the real problem ----------------------------------------------------

def test_a_truncated_multipart_exr_is_called_truncated(tmp_path):
    data = (ROOT / "tests" / "fixtures" / "blender5.2_passes.exr").read_bytes()
    path = tmp_path / "cut.exr"
    path.write_bytes(data[: int(len(data) * 0.95)])
    line = one_error_line(run_cli("enhance", path, "--model", "rad", "--out", tmp_path / "o.png"))
    assert "truncated" in line and "Object Index" not in line


# -- item 10: plain EXRs and foreign ids ------------------------------------------------------------------

def test_a_plain_blender_exr_without_the_custom_aovs_enhances_with_a_warning(tmp_path):
    rad = Enhancer.from_pretrained("rad", device="cpu", threads=1)
    # What Blender writes: the rendered passes without the add-on's AOVs (the bounces input
    # is no pass at all).
    plain = [k for k in ["alpha", *rad.required_passes]
             if k not in fallbacks.AOV_DEFAULTS and schema.pass_spec(k).rendered]
    frame = make_frame(48, 64, passes=plain, seed=2)
    path = tmp_path / "plain.exr"
    exr.write_frame(path, frame, blender_version=(4, 5))
    out = tmp_path / "out.exr"
    result = run_cli("enhance", path, "--model", "rad", "--out", out, "--threads", "1")
    assert result.returncode == 0, result.stderr
    assert "warning: the frame has no roughness / metallic AOV" in result.stderr
    filled = {**frame, "roughness": np.full((48, 64, 1), 0.5, np.float32),
              "metallic": np.zeros((48, 64, 1), np.float32)}
    if "bounces" in rad.required_passes:   # taken as fully lit, with a warning of its own
        assert "--bounces N" in result.stderr
        filled = schema.with_light_paths(filled, schema.FULL_BOUNCE_DEPTH)
    got = np.stack([exr.read_channels(out)[c] for c in "RGB"], -1)
    np.testing.assert_allclose(got, rad.enhance(filled), atol=1e-6)


def test_ids_of_another_pass_index_convention_are_warned_about():
    rad = Enhancer.from_pretrained("rad", device="cpu", threads=1)
    frame = make_frame(32, 32, passes=rad.required_passes)
    frame["object_index"][:8] = 37.0
    rad.enhance(frame)
    assert any("256 pixel(s) of the object_index pass hold ids that are no tagged class (e.g. 37"
               in w for w in rad.last_warnings)
    frame["object_index"][:8] = 3.0
    rad.enhance(frame)
    assert rad.last_warnings == []


# -- item 11: highlights --------------------------------------------------------------------------------------

def test_highlights_above_the_trained_range_are_kept():
    rad = Enhancer.from_pretrained("rad", device="cpu", threads=1)
    frame = make_frame(48, 64, passes=rad.required_passes, seed=4)
    frame["image"][10:13, 20:23] = 2.8e5          # a sun disc
    frame["image"][30, 40] = 750.0                # between HIGHLIGHT_START and the clip
    out = rad.enhance(frame)
    np.testing.assert_allclose(out[10:13, 20:23], 2.8e5, rtol=1e-6)
    assert out[30, 40].max() > fallbacks.HIGHLIGHT_START / 2
    assert np.isfinite(out).all()


# -- item 12: documentation and defaults (crop vs make-scenes: tests/training/test_reliability_training.py)

def test_readme_commands_run_from_the_environment_and_disk_use_is_stated():
    readme = (ROOT / "README.md").read_text()
    blocks = readme.split("```")[1::2]
    bare = [line for block in blocks for line in block.splitlines() if line.startswith("python ")]
    assert bare == [], f"README commands with a bare python: {bare}"
    assert "3.4 GB" in readme


def test_benchmarks_help_names_no_tracker_issue():
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--help"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 0 and "usage:" in done.stdout
    assert "issue" not in done.stdout.lower()
