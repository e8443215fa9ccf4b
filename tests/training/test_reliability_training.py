"""Issue 13, training side: checkpoints that do not load are kept and refused (item 4); a crop
larger than the frames is refused up front in one line (item 12)."""
import os
import subprocess
import sys
from pathlib import Path

import torch

from training import checkpoint

REPO = Path(__file__).resolve().parents[2]


def train_rad(data, run, *flags):
    return subprocess.run([sys.executable, "-m", "training", "train-rad", "--data", str(data),
                           "--run-dir", str(run), "--net", "tiny", "--batch-size", "1",
                           "--workers", "0", "--steps", "1", "--no-progress", *flags],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"))


class NotAWeight:   # weights_only=True refuses to unpickle an arbitrary class
    pass


def test_training_refuses_to_start_when_no_checkpoint_loads_and_keeps_every_file(paired_root, tmp_path):
    run = tmp_path / "run"
    folder = checkpoint.checkpoint_dir(run)
    folder.mkdir(parents=True)
    for step in (100, 200):
        torch.save({"step": step, "x": NotAWeight()}, folder / f"step_{step:07d}.pt")
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}

    done = train_rad(paired_root, run, "--crop", "32")
    assert done.returncode == 2, done.stderr[-2000:]
    error = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "Traceback" not in done.stderr
    assert "none of the 2 checkpoint(s)" in error[0]
    assert "step_0000200.pt:" in error[0] and "step_0000100.pt:" in error[0]
    assert "weights_only" in error[0] or "Unsupported global" in error[0]
    after = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.iterdir()}
    assert after == before


def test_a_crop_larger_than_the_frames_is_one_line_before_training(paired_root, tmp_path):
    done = train_rad(paired_root, tmp_path / "run", "--crop", "256")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    error = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert len(error) == 1 and "--crop 256 is larger than the 64x48 frames" in error[0]
    assert "use --crop 48 or less" in error[0] or "use --crop 32 or less" in error[0]
    assert not checkpoint.all_checkpoints(tmp_path / "run")


def test_export_of_a_checkpoint_that_does_not_load_is_one_line(tmp_path):
    bad = tmp_path / "step_0000001.pt"
    torch.save({"step": 1, "x": NotAWeight()}, bad)
    done = subprocess.run([sys.executable, "-m", "training", "export", str(tmp_path),
                           "--checkpoint", str(bad), "--out", str(tmp_path / "m.onnx")],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"error: checkpoint {bad} does not load")
    assert not (tmp_path / "m.onnx").exists()
