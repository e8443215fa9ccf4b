"""Sequence mode of `python -m neural_core enhance`: frames rendered elsewhere (a farm), in order.

    python -m neural_core enhance 'shot/frame_####.exr' --model rad --out 'out/frame_####.exr'

Pattern syntax (Blender's): one run of '#' in the file name stands for the frame number,
zero-padded to the run's length (`####` matches 0001, 0042, 12345); the directory part may not
contain '#'. Every file in the directory that matches is a frame; they are enhanced in frame
order, and `--frames 10-20` keeps a range. The output pattern needs a '#' run too.

Resume: an output that exists is skipped. With the temporal filter on (default) each frame's
history is the previous frame's output, so the filter's state after each frame is saved next
to the outputs (OUT_DIR/.photoreal_history/<output name>.npz, written before the output itself,
the last two kept). A resumed run restores the state of the frame before the first missing one
and re-reads that frame's passes: it continues exactly as an uninterrupted run would. If that
state is gone (outputs made by another tool or an older version), the history restarts at the
first missing frame, and the run says so.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import exr
from .errors import PhotorealError
from .files import write_atomic

STATE_DIR = ".photoreal_history"
STATES_KEPT = 2


@dataclass(frozen=True)
class Pattern:
    """A frame path pattern such as shot/frame_####.exr."""

    directory: Path
    prefix: str
    digits: int
    suffix: str

    @classmethod
    def parse(cls, text: str | os.PathLike, what: str = "input") -> "Pattern":
        path = Path(text)
        runs = re.findall(r"#+", path.name)
        if "#" in str(path.parent):
            raise PhotorealError(f"{what} pattern {text}: '#' may only appear in the file name")
        if len(runs) != 1:
            raise PhotorealError(f"{what} pattern {text} needs exactly one run of '#' for the frame "
                                 f"number, e.g. frame_####.exr (found {len(runs)})")
        prefix, suffix = path.name.split(runs[0])
        return cls(path.parent, prefix, len(runs[0]), suffix)

    def path(self, number: int) -> Path:
        return self.directory / f"{self.prefix}{number:0{self.digits}d}{self.suffix}"

    def frames(self) -> dict[int, Path]:
        """{frame number: path} of the files that match."""
        regex = re.compile(re.escape(self.prefix) + r"(\d{%d,})" % self.digits + re.escape(self.suffix) + "$")
        if not self.directory.is_dir():
            raise FileNotFoundError(f"no directory {self.directory}")
        found = {}
        for entry in os.scandir(self.directory):
            match = regex.match(entry.name)
            if match and entry.is_file():
                found[int(match.group(1))] = Path(entry.path)
        return dict(sorted(found.items()))

    def __str__(self) -> str:
        return str(self.directory / f"{self.prefix}{'#' * self.digits}{self.suffix}")


def is_pattern(path: str | os.PathLike) -> bool:
    return "#" in Path(path).name


def frame_range(text: str | None) -> tuple[int, int] | None:
    """'10-20' or '7' -> (first, last)."""
    if not text:
        return None
    match = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*)?", text)
    if not match:
        raise PhotorealError(f"--frames {text!r}: give FIRST-LAST (e.g. 10-20) or one frame number")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise PhotorealError(f"--frames {text!r}: the last frame is before the first")
    return first, last


def select_frames(source: Pattern, frames: str | None) -> dict[int, Path]:
    found = source.frames()
    limits = frame_range(frames)
    if limits:
        found = {n: p for n, p in found.items() if limits[0] <= n <= limits[1]}
    if not found:
        what = f" in frames {frames}" if frames else ""
        raise PhotorealError(f"no file matches {source}{what} ('{'#' * source.digits}' is the frame "
                             f"number, zero-padded to {source.digits} digits)")
    return found


class HistoryStore:
    """The temporal filter's state after each frame, saved atomically next to the outputs."""

    def __init__(self, output: Pattern):
        self.directory = output.directory / STATE_DIR
        self.output = output

    def path(self, number: int) -> Path:
        return self.directory / (self.output.path(number).name + ".npz")

    def save(self, number: int, state: dict) -> None:
        if not state:
            return

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:   # a handle: numpy would append '.npz' to a name
                np.savez(handle, **state)
        write_atomic(self.path(number), write)
        self._prune(number)

    def load(self, number: int) -> dict | None:
        path = self.path(number)
        if not path.is_file():
            return None
        try:
            with np.load(path) as data:
                return {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            print(f"warning: cannot read the saved history {path} ({exc}); the history restarts",
                  file=sys.stderr)
            return None

    def _prune(self, number: int) -> None:
        """Keep the states of the last STATES_KEPT frames: older ones are never needed again."""
        for old in range(number - STATES_KEPT - 8, number - STATES_KEPT + 1):
            self.path(old).unlink(missing_ok=True)


def enhance_sequence(source: Pattern, output: Pattern, frames: dict[int, Path],
                     enhance: Callable, write: Callable, temporal_on: bool = True,
                     view_layer: str | None = None, progress: bool = True,
                     follow_lighting: bool = True) -> dict:
    """Enhance `frames` ({number: input path}) in order; returns counts for the summary.

    `enhance(frame) -> rgb` runs the network, `write(path, rgb, frame)` writes one output.
    """
    from tqdm import tqdm
    filt = None
    if temporal_on:      # imported here: --no-temporal works without the filter's compiler (numba)
        from . import temporal
        filt = temporal.TemporalFilter(temporal.settings_for(follow_lighting))
    store = HistoryStore(output)
    counts = {"done": 0, "skipped": 0, "history_resets": 0}
    bar = tqdm(frames.items(), unit="frame", desc="enhancing", file=sys.stderr, disable=not progress)
    for number, path in bar:
        target = output.path(number)
        if target.exists():
            counts["skipped"] += 1
            continue
        frame = exr.read_frame(path, view_layer)
        rgb = enhance(frame)
        if filt is not None:
            _continue_history(filt, store, frames, number, view_layer)
            rgb = filt.apply(frame, rgb, number)
            counts["history_resets"] += filt.last_reset is not None
            store.save(number, filt.state())
            bar.set_postfix_str(filt.last_reset or f"history {filt.last_history_fraction:.0%}")
        write(target, rgb, frame)
        counts["done"] += 1
    return counts


def _continue_history(filt, store: HistoryStore, frames: dict[int, Path], number: int,
                      view_layer: str | None) -> None:
    """Before frame `number`: if the filter did not just do frame number-1 (a resumed run, or
    a skipped output), restore the state saved after it."""
    previous = number - 1
    if filt.number == previous or previous not in frames:
        return
    state = store.load(previous)
    if state is None or int(state["number"]) != previous:
        if store.output.path(previous).exists():
            print(f"\nnote: no saved history for frame {previous} ({store.path(previous)}); the "
                  f"history restarts at frame {number}", file=sys.stderr)
        return
    filt.restore(state, exr.read_frame(frames[previous], view_layer))
