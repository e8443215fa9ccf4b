"""Limits on what a run may ask for, checked before any work (issue 13, items 6 and 7).

Every check raises PhotorealError with one line that names the allowed range or the fix, so
the CLI and the add-on fail before reading frames or running a model instead of after.
"""
from __future__ import annotations

import os
from pathlib import Path

from .errors import PhotorealError

# onnxruntime starts one OS thread per intra-op thread: 100000 grew to 16 GB and never
# finished, 500 took 33 s instead of 0.5 s. Above the CPU count threads only wait on each
# other, so more than that is capped unless forced, and never above MAX_THREADS.
MAX_THREADS = 256
# Tiles below this lose part of the 128 px overlap (a 7 px request became 64 px tiles whose
# output differed from the whole frame by up to 0.18); from 256 on the overlap is whole.
MIN_TILE = 256
# Exposure in stops for PNG output: 2**64 already saturates any float32 radiance.
MAX_EXPOSURE = 64.0
# Working memory of a run, bytes per pixel processed at once, measured with the bundled
# models (README: RAD 1080p whole ~1.3 GB, CRN ~1.2 GB) with a margin, plus the frame itself.
BYTES_PER_PIXEL = {"rad": 700, "crn": 600}


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def check_threads(threads: int | None, force: bool = False) -> tuple[int | None, str | None]:
    """(threads to use, a note for the user or None). None = onnxruntime's default."""
    if threads is None or threads == 0:
        return None, None
    if not 1 <= threads <= MAX_THREADS:
        raise PhotorealError(f"--threads must be between 1 and {MAX_THREADS} (this machine has "
                             f"{cpu_count()} CPUs), not {threads}")
    if threads > cpu_count() and not force:
        return cpu_count(), (f"--threads {threads} capped at the {cpu_count()} CPUs of this "
                             f"machine (add --force-threads to keep it)")
    return threads, None


def check_tile(tile: int | None) -> None:
    if tile is None or tile == 0:
        return
    if tile < MIN_TILE:
        raise PhotorealError(f"tile size must be 0 (never tile) or at least {MIN_TILE} px, not "
                             f"{tile}: smaller tiles lose their overlap and the output changes")


def check_exposure(exposure: float) -> None:
    if not -MAX_EXPOSURE <= exposure <= MAX_EXPOSURE:
        raise PhotorealError(f"--exposure must be between {-MAX_EXPOSURE:g} and "
                             f"{MAX_EXPOSURE:g} stops, not {exposure:g}")


def check_output(out: Path) -> None:
    """Fail before the work if `out` cannot be written: under a file, not writable, a folder."""
    out = Path(out)
    if out.is_dir():
        raise PhotorealError(f"output {out} is a folder; give a file name ending in .exr or .png")
    ancestor = out.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PhotorealError(f"output {out} cannot be created: {ancestor} is a file, not a "
                             f"folder; choose another output path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise PhotorealError(f"output {out} cannot be written: no write permission in "
                             f"{ancestor}; choose a writable folder")
    if out.exists() and not os.access(out, os.W_OK):
        raise PhotorealError(f"output {out} exists and is read-only; remove it or choose "
                             f"another name")


def available_memory() -> int | None:
    """Bytes of memory available to new allocations (MemAvailable), None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(kind: str, pixels_at_once: int, height: int, width: int,
                 available: int | None = None) -> None:
    """Refuse a run whose working memory would not fit in the memory available now."""
    available = available_memory() if available is None else available
    if available is None:
        return
    need = BYTES_PER_PIXEL.get(kind, max(BYTES_PER_PIXEL.values())) * pixels_at_once
    if need > available:
        raise PhotorealError(
            f"a {width}x{height} frame needs about {need / 2**30:.1f} GB at this tile size, but "
            f"{available / 2**30:.1f} GB is available; use a smaller tile (--tile 512, or the "
            f"Tile Size setting) or free memory")
