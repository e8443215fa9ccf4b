"""`python -m neural_core` (enhance, info, demo) and the PNG view transform."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
from PIL import Image

from neural_core import cli, display, exr, schema
from neural_core.runtime import Enhancer

from runtime_models import build, export_model, make_frame

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return export_model(build("rad"), tmp_path_factory.mktemp("model") / "rad.onnx")


@pytest.fixture(scope="module")
def frame_path(tmp_path_factory):
    frame = make_frame(200, 280, passes=["image", "alpha", *schema.DEFAULT_GBUFFER_PASSES,
                                         "object_index"], seed=7)
    path = tmp_path_factory.mktemp("frames") / "frame.exr"
    exr.write_frame(path, frame, blender_version=(4, 5))
    return path


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "neural_core", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True)


# One thread: these networks are tiny, and on a busy CI machine two threads only wait on each other.
THREADS = ["--threads", "1"]


def read_rgba(path):
    with OpenEXR.File(str(path), separate_channels=True) as f:
        channels = f.channels()
        return (np.stack([channels[c].pixels for c in "RGB"], axis=-1),
                channels["A"].pixels if "A" in channels else None)


# -- enhance --------------------------------------------------------------------------------------

def test_enhance_to_exr_writes_exactly_what_the_enhancer_returns(model, frame_path, tmp_path):
    out = tmp_path / "out.exr"
    result = run_cli("enhance", frame_path, "--model", model, "--out", out, "--device", "cpu", *THREADS)
    assert result.returncode == 0, result.stderr
    assert "provider: CPUExecutionProvider" in result.stdout
    assert "WARNING: this model is freshly initialised, not trained" in result.stdout
    assert "inference" in result.stdout
    rgb, alpha = read_rgba(out)
    frame = exr.read_frame(frame_path)
    expected = Enhancer.from_pretrained(model, device="cpu", threads=1).enhance(frame)
    np.testing.assert_array_equal(rgb, expected)
    assert rgb.max() > 1.0, "linear HDR values are kept, not clipped"
    np.testing.assert_array_equal(alpha, frame["alpha"][..., 0])
    assert not list(tmp_path.glob(".*tmp")), "no temporary file left behind"


def test_enhance_to_png_uses_the_view_transform(model, frame_path, tmp_path):
    out = tmp_path / "out.png"
    assert cli.main(["enhance", str(frame_path), "--model", str(model), "--out", str(out),
                     "--tile", "256", *THREADS]) == 0
    png = np.asarray(Image.open(out))
    expected = display.to_display(
        Enhancer.from_pretrained(model, device="cpu", tile_size=256, threads=1).enhance(exr.read_frame(frame_path)))
    assert png.shape == (200, 280, 3)
    np.testing.assert_array_equal(png, expected)


def test_errors_are_one_clean_line_with_status_2(model, frame_path, tmp_path):
    frame = exr.read_frame(frame_path)
    del frame["normal"]
    broken = tmp_path / "no_normal.exr"
    exr.write_frame(broken, frame)
    result = run_cli("enhance", broken, "--model", model, "--out", tmp_path / "x.exr", *THREADS)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "use_pass_normal" in lines[0]
    assert not (tmp_path / "x.exr").exists()


@pytest.mark.parametrize("args,message", [
    (["--out", "out.jpg"], "must end in .exr or .png"),
    (["--out", "out.exr", "--device", "cuda"], "onnxruntime-gpu"),
])
def test_bad_options_are_refused_before_any_work(model, frame_path, tmp_path, capsys, args, message):
    args = [a if not a.startswith("out.") else str(tmp_path / a) for a in args]
    if "cuda" in args and "cuda" in __import__("neural_core.runtime").runtime.available_devices():
        pytest.skip("CUDA is available here")
    assert cli.main(["enhance", str(frame_path), "--model", str(model), *args]) == 2
    assert message in capsys.readouterr().err


def test_output_may_not_overwrite_the_input(model, frame_path, capsys):
    assert cli.main(["enhance", str(frame_path), "--model", str(model), "--out", str(frame_path)]) == 2
    assert "is the input frame" in capsys.readouterr().err


# -- info -----------------------------------------------------------------------------------------

def test_info_prints_required_passes_with_blender_settings(model, capsys):
    assert cli.main(["info", str(model)]) == 0
    out = capsys.readouterr().out
    assert "kind:           rad" in out
    for setting in ("use_pass_z", "use_pass_normal", "use_pass_diffuse_color", "use_pass_object_index",
                    "AOV named 'roughness'"):
        assert setting in out
    assert "G-buffer channels (15)" in out
    assert "  normal     tensor(float)    ['batch', 3, 'height', 'width']" in out   # graph inputs: the passes
    assert "freshly initialised" in out


# -- demo -----------------------------------------------------------------------------------------

@pytest.mark.skipif(not cli.DEMO_FRAME.is_file(), reason="demo frame not in this checkout yet")
def test_demo_writes_input_and_enhanced_side_by_side(tmp_path):
    out = tmp_path / "demo.png"
    result = run_cli("demo", "--out", out, *THREADS)
    assert result.returncode == 0, result.stderr
    frame = exr.read_frame(cli.DEMO_FRAME)
    height, width = frame["image"].shape[:2]
    png = np.asarray(Image.open(out))
    assert png.shape[1] == 2 * width + 8 and png.shape[0] > height
    # The left panel is the input through the view transform.
    np.testing.assert_array_equal(png[-height:, :width], display.to_display(frame["image"]))
    # The demo says how many bounces its frame was rendered with: no fallback warning.
    assert "light bounces" not in result.stderr


def test_demo_light_paths_are_those_the_demo_frame_was_rendered_with():
    pytest.importorskip("bpy")
    from training.scenes import FAST
    assert cli.DEMO_LIGHT_PATHS == (FAST.max_bounces, FAST.diffuse_bounces)


# -- view transform -------------------------------------------------------------------------------

def test_view_transform_values():
    linear = np.array([[[0.0, 1.0, 0.5], [4.0, -1.0, np.nan], [0.002, 0.18, 0.0031308]]], np.float32)
    out = display.to_display(linear)
    # 0.5 -> 1.055 * 0.5**(1/2.4) - 0.055 = 0.7354 -> 188; 0.18 -> 0.4614 -> 118; 0.002 -> 12.92*0.002 -> 7
    np.testing.assert_array_equal(out, [[[0, 255, 188], [255, 0, 0], [7, 118, 10]]])
    np.testing.assert_array_equal(display.to_display(linear * 0.5, exposure=1.0), out)


def test_side_by_side_keeps_both_images_and_labels_them():
    a = np.zeros((60, 40, 3), np.uint8)
    b = np.full((60, 50, 3), 200, np.uint8)
    out = display.side_by_side([a, b], ["input", "enhanced"], gap=8)
    assert out.shape[1] == 40 + 8 + 50 and out.shape[0] > 60
    np.testing.assert_array_equal(out[-60:, :40], a)
    np.testing.assert_array_equal(out[-60:, 48:], b)
    assert (out[: out.shape[0] - 60] > 200).any(), "a light label is drawn in the strip"
