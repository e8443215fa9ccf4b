"""Blender's Denoise node baseline (training/baselines/denoise_node.py) with the real bpy:
Blender 4.5 from this venv and 5.x from .venv313. Blender runs in subprocesses, so every
run gets a fresh bpy, as a user's would.
"""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neural_core import exr
from neural_core.dataset_format import DatasetWriter

from conftest import scene_frame

REPO = Path(__file__).resolve().parents[2]
BLENDER_5_PYTHON = REPO / ".venv313" / "bin" / "python"
pytestmark = pytest.mark.skipif(importlib.util.find_spec("bpy") is None,
                                reason="needs the bpy module (make .venv/.installed)")

H, W = 48, 64
BRIGHT = (slice(4, 28), slice(4, 40))     # a constant 5.0 block near the top-left corner
INSIDE = (slice(8, 24), slice(8, 36))     # its interior, away from its edges
BRIGHT_VALUE = 5.0

DENOISE_SCRIPT = r"""
import sys
import numpy as np
from neural_core.errors import MissingPassError
from addon import blender_api
from training.baselines.denoise_node import DenoiseNode

data = np.load(sys.argv[1])
frame = {k: data[k] for k in ("image", "albedo", "normal")}
with DenoiseNode() as node:
    first = node(frame)
    again = node(frame)          # the same tree re-run
    node.denoise.mute = True     # the pipeline without the denoiser must be the identity
    passthrough = node(frame)
    node.denoise.mute = False
    try:
        node({"image": frame["image"], "normal": frame["normal"]})
        error = ""
    except MissingPassError as exc:
        error = str(exc)
np.savez(sys.argv[2], denoised=first, again=again, passthrough=passthrough, error=error, blender=blender_api.VERSION_STRING)
"""


def noisy_case(seed: int = 0) -> dict[str, np.ndarray]:
    """A smooth, asymmetric HDR gradient (known albedo and normal) with strong per-pixel noise."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    clean = np.stack([0.2 + 1.5 * xx / W, 0.1 + 0.8 * (yy / H) ** 2, np.full_like(xx, 0.4)], -1)
    clean[BRIGHT] = BRIGHT_VALUE
    rng = np.random.default_rng(seed)
    # Unbiased multiplicative noise, like a few-sample path tracer (std 50 % of the value).
    noisy = clean * rng.gamma(4.0, 0.25, clean.shape)
    normal = np.zeros((H, W, 3), np.float32)
    normal[..., 2] = 1.0
    albedo = np.full((H, W, 3), 0.6, np.float32)
    return {"clean": clean.astype(np.float32), "image": noisy.astype(np.float32),
            "albedo": albedo, "normal": normal}


def psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    return float(10 * np.log10(peak ** 2 / np.mean((a - b) ** 2)))


def run_python(python, args, expect_rc=0):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([str(python), *map(str, args)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == expect_rc, result.stderr[-3000:]
    return result


def denoise_in(python, tmp_path: Path) -> dict:
    case = noisy_case()
    np.savez(tmp_path / "case.npz", **case)
    run_python(python, ["-c", DENOISE_SCRIPT, tmp_path / "case.npz", tmp_path / "out.npz"])
    with np.load(tmp_path / "out.npz") as out:
        return {**case, **{k: out[k] for k in out.files}}


@pytest.fixture(scope="module")
def blender4(tmp_path_factory):
    return denoise_in(sys.executable, tmp_path_factory.mktemp("denoise45"))


def test_denoised_is_much_closer_to_the_clean_image(blender4):
    clean, noisy, out = blender4["clean"], blender4["image"], blender4["denoised"]
    before, after = psnr(noisy, clean, BRIGHT_VALUE), psnr(out, clean, BRIGHT_VALUE)
    print(f"Blender {blender4['blender']}: PSNR {before:.1f} dB -> {after:.1f} dB")
    assert after - before > 8.0, (before, after)


def test_output_is_linear_hdr(blender4):
    """No view transform or clipping: the 5.0 block stays about 5.0, the dim ramp stays dim."""
    out, clean = blender4["denoised"], blender4["clean"]
    bright = out[INSIDE]
    assert abs(bright.mean() - BRIGHT_VALUE) < 0.05 * BRIGHT_VALUE, bright.mean()
    assert bright.min() > 0.75 * BRIGHT_VALUE and bright.max() < 1.25 * BRIGHT_VALUE
    dim = (slice(32, 46), slice(8, 56), 1)    # green is 0.4-0.6 there
    assert abs(out[dim].mean() - clean[dim].mean()) < 0.02


def test_pipeline_around_the_node_keeps_values_exactly(blender4):
    """Image nodes -> output -> EXR -> numpy changes nothing: no colour management, no clamp."""
    np.testing.assert_array_equal(blender4["passthrough"], blender4["image"])


def test_shape_and_orientation(blender4):
    out, clean = blender4["denoised"], blender4["clean"]
    assert out.shape == (H, W, 3) and out.dtype == np.float32
    # Row 0 is the top and column 0 the left: a flip would move the bright block and ramps.
    error = np.abs(out - clean).mean()
    assert error < np.abs(out - clean[::-1]).mean() / 3
    assert error < np.abs(out - clean[:, ::-1]).mean() / 3
    assert out[BRIGHT].mean() > 4.5 and out[-12:, -12:].mean() < 2.0


def test_tree_reruns_and_missing_pass_is_explained(blender4):
    np.testing.assert_allclose(blender4["again"], blender4["denoised"], atol=1e-5)
    error = str(blender4["error"])
    assert "albedo" in error and "Diffuse Color" in error, error


@pytest.mark.skipif(not BLENDER_5_PYTHON.exists(), reason="needs .venv313 (bpy 5.x)")
def test_blender_5_gives_the_same_result(blender4, tmp_path):
    newer = denoise_in(BLENDER_5_PYTHON, tmp_path)
    assert str(newer["blender"]).startswith("5.")
    clean = newer["clean"]
    assert psnr(newer["denoised"], clean, BRIGHT_VALUE) - psnr(newer["image"], clean, BRIGHT_VALUE) > 8.0
    assert abs(newer["denoised"][INSIDE].mean() - BRIGHT_VALUE) < 0.05 * BRIGHT_VALUE
    assert np.abs(newer["denoised"] - blender4["denoised"]).mean() < 0.02


def test_dataset_cli_denoises_every_frame_and_resumes(tmp_path):
    data, out = tmp_path / "fast", tmp_path / "denoised"
    writer = DatasetWriter(data, engine="CYCLES", samples=4, resolution=(W, H))
    for number in (1, 2):
        writer.write_frame(number, scene_frame(number, noise=0.5))
    cli = ["-m", "training.baselines.denoise_node", "--data", tmp_path, "--out", out]

    assert "2 denoised frames" in run_python(sys.executable, cli).stdout
    paths = [out / "frames" / f"{n:06d}.exr" for n in (1, 2)]
    for number, path in zip((1, 2), paths):
        result = exr.read_frame(path)["image"]
        clean, noisy = scene_frame(number)["image"], scene_frame(number, noise=0.5)["image"]
        assert result.shape == (H, W, 3)
        assert np.abs(result - clean).mean() < np.abs(noisy - clean).mean()

    stamps = [p.stat().st_mtime_ns for p in paths]
    paths[1].unlink()                                   # as if killed before frame 2
    run_python(sys.executable, cli)
    assert paths[0].stat().st_mtime_ns == stamps[0]     # finished frames are not redone
    assert paths[1].is_file()

    changed = run_python(sys.executable, [*cli, "--prefilter", "FAST"], expect_rc=1)
    assert "'prefilter': 'ACCURATE'" in changed.stderr and "use another --out" in changed.stderr
