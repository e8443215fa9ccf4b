"""A run killed mid-way (SIGKILL, under torchrun/DDP) and resumed reaches the same step with
the same weights as a run that was never interrupted; checkpoints load with weights_only."""
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from training import checkpoint
from training.options import RADOptions
from training.trainers.rad_paired import PairedRADTrainer

REPO = Path(__file__).resolve().parents[2]
STEPS = 5
FLAGS = dict(net="tiny", batch_size=2, crop=32, workers=0, progress=False, log_every=1,
             vgg_taps=["relu1_2", "relu2_2"], steps=STEPS, lr=1e-3)


def cli_flags(data, run) -> list[str]:
    flags = ["--data", str(data), "--run-dir", str(run), "--checkpoint-every", "1", "--no-progress"]
    for key, value in FLAGS.items():
        if key == "progress":
            continue
        flag = "--" + key.replace("_", "-")
        flags += [flag, *value] if isinstance(value, list) else [flag, str(value)]
    return flags


def kill_after_checkpoint(data, run, step: int) -> None:
    """torchrun (DDP, gloo, 1 process) training; SIGKILL the whole group once `step` is saved."""
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.Popen([str(torchrun), "--standalone", "--nproc_per_node=1", "-m", "training",
                             "train-rad", *cli_flags(data, run)], cwd=REPO, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1"))
    target = checkpoint.checkpoint_dir(run) / f"step_{step:07d}.pt"
    deadline = time.time() + 120
    while not target.exists():
        if proc.poll() is not None:
            raise AssertionError(f"training exited early: {proc.stderr.read().decode()[-3000:]}")
        assert time.time() < deadline, "no checkpoint within 2 minutes"
        time.sleep(0.05)
    # torchrun starts its worker in a session of its own: kill the worker(s), then torchrun.
    killed = [*descendants(proc.pid), proc.pid]
    for pid in killed:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    # SIGKILL is delivered asynchronously: wait until every killed process is gone (or a zombie).
    deadline = time.time() + 10
    while any(checkpoint._alive(pid) for pid in killed) and time.time() < deadline:
        time.sleep(0.05)


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_killed_run_resumes_to_the_same_weights(paired_root, tmp_path):
    reference = PairedRADTrainer(RADOptions(run_dir=str(tmp_path / "straight"), data=str(paired_root),
                                            checkpoint_every=1000, **FLAGS))
    reference.fit()
    reference.close()

    run = tmp_path / "killed"
    kill_after_checkpoint(paired_root, run, step=2)
    saved = checkpoint.latest(run)
    assert 2 <= saved["step"] < STEPS, "the kill came too late to test resuming"
    # Plain tensors and containers only: loads with weights_only=True.
    torch.load(saved["path"], weights_only=True)
    assert not list(checkpoint.checkpoint_dir(run).glob(".*tmp"))   # no half-written files

    resumed = PairedRADTrainer(RADOptions(run_dir=str(run), data=str(paired_root), checkpoint_every=1, **FLAGS))
    assert resumed.step == saved["step"]
    resumed.fit()
    resumed.close()
    assert resumed.step == STEPS
    final = checkpoint.latest(run)
    straight = checkpoint.latest(tmp_path / "straight")
    assert final["step"] == straight["step"] == STEPS
    for name, tensor in straight["models"]["generator"].items():
        torch.testing.assert_close(final["models"]["generator"][name], tensor, rtol=1e-5, atol=1e-6,
                                   msg=f"{name} differs after resume")


def test_half_written_checkpoints_of_dead_writers_are_removed(tmp_path):
    """A writer killed mid-save leaves its temporary behind; it never counts as a checkpoint and
    the next look for the latest checkpoint removes it, but not a live writer's."""
    import os
    import subprocess

    checkpoint.save(tmp_path, 1, {"step": 1, "x": torch.zeros(2)})
    finished = subprocess.Popen(["true"])
    finished.wait()
    folder = checkpoint.checkpoint_dir(tmp_path)
    stale = folder / f".step_0000002.pt.{finished.pid}.tmp"
    in_progress = folder / f".step_0000002.pt.{os.getpid()}.tmp"
    stale.write_bytes(b"half a checkpoint")
    in_progress.write_bytes(b"half a checkpoint")
    assert checkpoint.latest(tmp_path)["step"] == 1
    assert not stale.exists()
    assert in_progress.exists()
