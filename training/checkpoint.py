"""Checkpoints: plain tensors and containers only, so `torch.load(weights_only=True)` reads them.

RUN/checkpoints/step_0001000.pt holds
    step, models {name: state_dict}, optimizers {name: state_dict}, rng (torch CPU state),
    state {counters and measured constants, JSON-able}, options (JSON text).
Writes go to a temporary file that is renamed into place, so a kill never leaves a half
checkpoint under a real name; `latest` skips any file that does not load.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch

from neural_core.errors import PhotorealError
from neural_core.files import write_atomic

log = logging.getLogger(__name__)
PATTERN = re.compile(r"step_(\d+)\.pt$")


def checkpoint_dir(run: str | os.PathLike) -> Path:
    return Path(run) / "checkpoints"


def save(run: str | os.PathLike, step: int, payload: dict, keep: int = 3) -> Path:
    path = write_atomic(checkpoint_dir(run) / f"step_{step:07d}.pt",
                        lambda tmp: torch.save(payload, tmp))
    for old in all_checkpoints(run)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)
    return path


def all_checkpoints(run: str | os.PathLike) -> list[Path]:
    folder = checkpoint_dir(run)
    found = [p for p in folder.glob("step_*.pt") if PATTERN.search(p.name)] if folder.is_dir() else []
    return sorted(found, key=lambda p: int(PATTERN.search(p.name).group(1)))


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    return torch.load(path, map_location=device, weights_only=True)


def load_named(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """`load` of a checkpoint the user named: one line on why it does not load."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        return load(path, device)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} does not load: {_reason(exc)}") from exc


def remove_stale_temporaries(run: str | os.PathLike) -> None:
    """Delete half-written checkpoints of writers that no longer run.

    `save` renames a complete file into place, so a temporary never counts as a checkpoint; but a
    writer killed mid-save (SIGKILL, power loss) cannot delete its own. The writer's pid is in the
    name, so a live run's save in progress is left alone.
    """
    folder = checkpoint_dir(run)
    for tmp in folder.glob(".step_*.pt.*.tmp") if folder.is_dir() else []:
        pid = tmp.name.rsplit(".", 2)[-2]
        if pid.isdigit() and not _alive(int(pid)):
            log.info("removing %s, left by a run that was stopped while saving", tmp.name)
            tmp.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    """Is `pid` a running process? A killed process that its parent has not reaped yet (a
    zombie) still answers signals but can no longer write, so it counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): trust the signal check
    return state not in ("Z", "X")


def _reason(exc: Exception) -> str:
    """One line on why torch.load refused a file (its message spans a screen, with colours)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    detail = next((line for line in lines if "Unpickler error" in line), lines[0] if lines else "")
    if "Weights only load failed" in text:
        detail = f"refused by torch.load(weights_only=True): {detail}"
    return (detail or type(exc).__name__)[:300]


class CheckpointError(PhotorealError):
    """Checkpoints exist but none loads: starting afresh would overwrite and delete them."""


def latest(run: str | os.PathLike, device: str | torch.device = "cpu") -> dict | None:
    """The newest checkpoint that loads, or None for a fresh run (no checkpoints at all).

    Raises CheckpointError, touching no file, when checkpoints exist and none loads: a run that
    started again at step 0 would save over the newest and delete the older ones.
    """
    remove_stale_temporaries(run)
    failures = []
    for path in reversed(all_checkpoints(run)):
        try:
            payload = load(path, device)
            payload["path"] = str(path)
            return payload
        except Exception as exc:  # a damaged file (disk full, copied half): try the one before
            reason = _reason(exc)
            failures.append(f"{path.name}: {reason}")
            log.warning("checkpoint %s does not load (%s); trying an older one", path, reason)
    if failures:
        raise CheckpointError(
            f"none of the {len(failures)} checkpoint(s) in {checkpoint_dir(run)} loads, so "
            f"training does not start (it would overwrite them); newest first: "
            f"{'; '.join(failures)}. Fix or move them away, or train into a new --run folder")
    return None


def weights_to_start_from(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict:
    """The checkpoint `path` names (a file, or a run directory's newest) for --init-from."""
    if Path(path).is_dir():
        found = latest(path, device)
        if found is None:
            raise CheckpointError(f"--init-from {path}: that run directory has no checkpoint")
        return found
    return load_named(path, device)


def load_widened(model: torch.nn.Module, state: dict, source: str) -> list[str]:
    """Load `state` into `model`, where a tensor may have grown along its input channels (dim 1:
    a G-buffer pass added at the end of the stack). The old channels are copied and the new ones
    start at zero, so the network starts out computing exactly what the old one did; so do
    modules the model lists in `added_modules` (they start as the identity). Returns the
    widened tensors' names; any other mismatch is an error naming the tensor."""
    own = model.state_dict()
    unknown = sorted(set(state) - set(own))
    added = tuple(getattr(model, "added_modules", ()))
    missing = sorted(k for k in set(own) - set(state)
                     if own[k].is_floating_point() and not k.startswith(added))
    if unknown or missing:
        raise CheckpointError(f"{source} is another network: {len(unknown)} tensor(s) this one lacks "
                              f"({unknown[:3]}), {len(missing)} it lacks ({missing[:3]})")
    widened = []
    with torch.no_grad():
        for key, old in state.items():
            new = own[key]
            if new.shape == old.shape:
                new.copy_(old)
            elif (new.dim() == old.dim() >= 2 and new.shape[0] == old.shape[0]
                  and new.shape[2:] == old.shape[2:] and new.shape[1] > old.shape[1]):
                new.zero_()
                new[:, :old.shape[1]].copy_(old)
                widened.append(key)
            else:
                raise CheckpointError(f"{source}: {key} is {tuple(old.shape)} there but "
                                      f"{tuple(new.shape)} here; only added input channels can be "
                                      f"started from an older network")
    model.load_state_dict(own)
    return widened
