"""make-scenes --sequence: short animated shots with per-frame references, and `training
evaluate --temporal-filter` on them (real bpy renders, the bundled RAD through onnxruntime)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from neural_core import dataset_format
from training.evaluate import independent_scenes
from training.metrics.temporal import occlusion_mask, warping_error

ROOT = Path(__file__).resolve().parents[2]


def run_python(args):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    out = tmp_path_factory.mktemp("shots") / "out"
    result = run_python(["-m", "training", "make-scenes", "--count", "2", "--sequence", "3", "--out", str(out),
                         "--resolution", "48x24", "--seed", "300", "--fast-samples", "2",
                         "--reference-samples", "16", "--kinds", "interior", "--no-progress"])
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_sequence_shots_have_every_frame_moving_and_paired(shots):
    record = json.loads((shots / "scenes.json").read_text())
    assert record["sequence"] == 3
    fast = dataset_format.DatasetReader(shots / "fast")
    reference = dataset_format.DatasetReader(shots / "reference")
    assert fast.frames == reference.frames == [1, 2, 3, 101, 102, 103]
    assert not independent_scenes(fast)       # evaluate treats them as sequences
    for index, first in (("0", 1), ("1", 101)):
        assert record["scenes"][index]["frames"] == [first, first + 2]
        assert record["scenes"][index]["moving"], record["scenes"][index]
        frames = [reference.read_frame(n) for n in range(first, first + 3)]
        for frame in frames:
            assert np.abs(frame["motion"]).max() > 0.05          # the camera moves on every frame
        images = [f["image"] / (1 + f["image"]) for f in frames]
        motions = [f["motion"] for f in frames]
        # The motion lasts the whole shot: each frame's vectors back (XY) agree with the previous
        # frame's vectors forward (ZW) almost everywhere (Lai et al.'s forward-backward check).
        for t in (1, 2):
            assert occlusion_mask(motions[t], motions[t - 1])[1].mean() > 0.6
        assert np.isfinite(warping_error(images, motions))


def test_evaluate_reports_temporal_filter_and_reference_warping_errors(shots, tmp_path):
    result = run_python(["-m", "training", "evaluate", "--model", "neural_core/models/rad.onnx",
                         "--data", str(shots), "--out", str(tmp_path), "--features", "vgg16:relu1_2",
                         "--temporal-filter", "--grids", "0"])
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["temporal_filter"] is True
    for key in ("warping_error", "per_frame_warping_error", "input_warping_error",
                "reference_warping_error", "per_frame_psnr", "psnr"):
        assert np.isfinite(metrics[key]), key
    assert metrics["warping_error"] < metrics["per_frame_warping_error"]
