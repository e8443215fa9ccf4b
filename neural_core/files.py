"""Writing files so that no reader ever sees half of one, and where fast temporary files go.

Every file the project writes (frames, PNGs, models, checkpoints, dataset files, records)
goes through write_atomic: the content is written to a temporary file next to the target and
renamed into place, and the temporary file is removed whatever happens. The temporary name,
`.NAME.PID.tmp`, carries the writer's process id, so a file left by a killed writer can be
told from one still being written (training/checkpoint.remove_stale_temporaries).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def temporary_name(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_atomic(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call `write(tmp)` to fill a temporary file, then rename it to `path` (folders made)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def fast_temp_base() -> Path:
    """/dev/shm (memory) when it is writable, else the system temporary folder: where large
    files that live for a moment (a frame's passes) cost the least."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return shm
    return Path(tempfile.gettempdir())
