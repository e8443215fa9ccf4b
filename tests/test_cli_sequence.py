"""`python -m neural_core enhance 'shot/frame_####.exr' --out 'out/frame_####.exr'`: sequence mode
with the temporal filter, resume, and its errors. Runs the bundled RAD through onnxruntime.

The sequence is a camera pan over one real-looking frame: each frame is a window 2 px further
right, so the content moves 2 px left per frame, and its Vector pass says so in Blender's
convention (XY = (+2, 0) back to the previous frame, ZW = (+2, 0)); the image gets fresh noise
every frame, like an animated render seed.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neural_core import exr, schema
from neural_core.runtime import Enhancer

from runtime_models import make_frame

ROOT = Path(__file__).resolve().parents[1]
H, W, STEP, FRAMES = 64, 96, 2, 4
PASSES = ["image", "noisy", "alpha", *schema.DEFAULT_GBUFFER_PASSES, "object_index", "motion"]


def pan_sequence(directory: Path, passes=PASSES) -> list[Path]:
    base = make_frame(H, W + STEP * FRAMES, passes=passes, seed=3)
    yy, xx = np.mgrid[0:H, 0:W + STEP * FRAMES].astype(np.float32)
    base["depth"] = (4.0 + yy / 16.0)[..., None]                  # a floor receding upwards
    base["normal"] = np.broadcast_to(np.float32([0, 0, 1]), (H, W + STEP * FRAMES, 3)).copy()
    base["alpha"][:] = 1.0
    paths = []
    for t in range(FRAMES):
        frame = {key: np.ascontiguousarray(v[:, STEP * t: STEP * t + W]) for key, v in base.items()}
        noise = np.random.default_rng(100 + t).normal(1.0, 0.15, frame["image"].shape)
        frame["image"] = (frame["image"] * np.clip(noise, 0.2, None)).astype(np.float32)
        if "noisy" in frame:
            frame["noisy"] = (frame["image"] * np.clip(noise, 0.2, None)).astype(np.float32)
        frame["motion"] = np.zeros((H, W, 4), np.float32)
        frame["motion"][..., 0] = STEP if t > 0 else 0.0           # XY: first frame has none
        frame["motion"][..., 2] = STEP if t < FRAMES - 1 else 0.0  # ZW: last frame has none
        paths.append(directory / f"frame_{t + 1:04d}.exr")
        exr.write_frame(paths[-1], frame, blender_version=(5, 0))
    return paths


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shot")
    return directory, pan_sequence(directory)


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "neural_core", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def enhance_shot(shot_dir: Path, out_dir: Path, *extra):
    result = run_cli("enhance", shot_dir / "frame_####.exr", "--model", "rad", "--device", "cpu",
                     "--threads", "1", "--out", out_dir / "out_####.exr", *extra)
    assert result.returncode == 0, result.stderr
    return result


def read_rgb(path: Path) -> np.ndarray:
    channels = exr.read_channels(path)
    return np.stack([channels[c] for c in "RGB"], axis=-1)


def per_frame(paths):
    enhancer = Enhancer.from_pretrained("rad", device="cpu", threads=1)
    return [enhancer.enhance(exr.read_frame(p)) for p in paths]


def test_sequence_resumes_without_redoing_finished_frames_and_with_the_same_history(shot, tmp_path):
    shot_dir, paths = shot
    straight = tmp_path / "straight"
    result = enhance_shot(shot_dir, straight)
    assert "4 frame(s) 1-4" in result.stdout and "wrote 4 frame(s)" in result.stdout
    expected = [read_rgb(straight / f"out_{n:04d}.exr") for n in range(1, 5)]
    alone = per_frame(paths)
    np.testing.assert_allclose(expected[0], alone[0], atol=1e-6)       # frame 1: no history
    assert np.abs(expected[3] - alone[3]).max() > 1e-3                  # later: history used

    # An interrupted run: frames 1-2 written (and their history saved), 3-4 not.
    resumed = tmp_path / "resumed"
    enhance_shot(shot_dir, resumed, "--frames", "1-2")
    finished = {n: os.stat(resumed / f"out_{n:04d}.exr").st_mtime_ns for n in (1, 2)}
    result = enhance_shot(shot_dir, resumed)
    assert "wrote 2 frame(s)" in result.stdout and "skipped 2 that existed" in result.stdout
    assert {n: os.stat(resumed / f"out_{n:04d}.exr").st_mtime_ns for n in (1, 2)} == finished
    for n in (3, 4):
        np.testing.assert_array_equal(read_rgb(resumed / f"out_{n:04d}.exr"), expected[n - 1])


def test_resume_without_saved_history_restarts_it_and_says_so(shot, tmp_path):
    shot_dir, paths = shot
    enhance_shot(shot_dir, tmp_path, "--frames", "1-2")
    for state in (tmp_path / ".photoreal_history").iterdir():
        state.unlink()
    result = enhance_shot(shot_dir, tmp_path)
    assert "no saved history for frame 2" in result.stderr
    np.testing.assert_allclose(read_rgb(tmp_path / "out_0003.exr"), per_frame(paths[2:3])[0], atol=1e-6)


def test_frames_from_eevee_are_enhanced_as_the_add_on_enhances_them(tmp_path):
    """An EEVEE EXR has the class AOV instead of an index pass and no noisy image (EEVEE has no
    denoiser), and its file does not name the engine: the CLI serves Combined as the noisy image,
    as the add-on does for EEVEE, instead of asking for Cycles' denoising data."""
    eevee_passes = [key for key in PASSES if key not in ("noisy", "object_index")] + ["class_aov"]
    paths = pan_sequence(tmp_path / "shot", eevee_passes)
    assert "noisy" not in exr.read_frame(paths[0])
    enhance_shot(tmp_path / "shot", tmp_path / "out")
    enhancer = Enhancer.from_pretrained("rad", device="cpu", threads=1)
    first = enhancer.enhance(exr.read_frame(paths[0]), engine="BLENDER_EEVEE")
    np.testing.assert_allclose(read_rgb(tmp_path / "out" / "out_0001.exr"), first, rtol=1e-4, atol=1e-5)
    later = [read_rgb(tmp_path / "out" / f"out_{n:04d}.exr") for n in range(2, FRAMES + 1)]
    assert all(np.isfinite(rgb).all() and rgb.mean() > 0.01 for rgb in later)


def test_no_temporal_gives_the_per_frame_results(shot, tmp_path):
    shot_dir, paths = shot
    enhance_shot(shot_dir, tmp_path, "--no-temporal", "--frames", "2-3")
    assert sorted(p.name for p in tmp_path.glob("out_*.exr")) == ["out_0002.exr", "out_0003.exr"]
    for n, expected in zip((2, 3), per_frame(paths[1:3])):
        np.testing.assert_allclose(read_rgb(tmp_path / f"out_{n:04d}.exr"), expected, atol=1e-6)


def test_follow_lighting_restarts_the_history_where_the_light_changes(tmp_path):
    """A still camera; the light doubles at frame 3. By default the history restarts there and
    the output follows the per-frame result; --no-follow-lighting keeps the old light."""
    shot_dir = tmp_path / "shot"
    shot_dir.mkdir()
    base = make_frame(H, W, passes=PASSES, seed=5)
    base["motion"][:] = 0.0
    paths = []
    for t in range(FRAMES):
        frame = dict(base)
        noise = np.random.default_rng(200 + t).normal(1.0, 0.05, base["image"].shape).astype(np.float32)
        light = np.float32(1.0 if t < 2 else 2.0)
        frame["image"], frame["noisy"] = base["image"] * noise * light, base["noisy"] * noise * light
        paths.append(shot_dir / f"frame_{t + 1:04d}.exr")
        exr.write_frame(paths[-1], frame, blender_version=(5, 0))
    alone = per_frame(paths)[-1]
    errors = {}
    for name, extra in (("follow", ()), ("fixed", ("--no-follow-lighting",))):
        enhance_shot(shot_dir, tmp_path / name, *extra)
        out = read_rgb(tmp_path / name / f"out_{FRAMES:04d}.exr")
        errors[name] = np.abs(out - alone).mean() / alone.mean()
    assert errors["follow"] < 0.02 and errors["fixed"] > 0.1, errors


@pytest.mark.parametrize("frame, out, message", [
    ("nothing_####.exr", "o_####.exr", "no file matches"),
    ("frame_####.exr", "single.exr", "needs exactly one run of '#'"),
    ("frame_####.exr", "o_####.jpg", "must end in .exr or .png"),
    ("frame_####.exr", "o_####.exr --frames 5-2", "the last frame is before the first"),
])
def test_sequence_errors_are_one_line(shot, tmp_path, frame, out, message):
    shot_dir, _ = shot
    out, *extra = out.split()
    result = run_cli("enhance", shot_dir / frame, "--out", tmp_path / out, *extra)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
