"""G-buffer standardisation statistics, computed once per dataset and saved next to it.

DIR/gbuffer_stats.json (for an EPE list: LIST.gbuffer_stats.json) holds the per-channel mean
and std of the schema-transformed G-buffers. A run copies them into its directory and the
exporter embeds them into the model (ModelMetadata.gbuffer_mean/std), so the add-on feeds
the network exactly what it saw in training.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
from tqdm import tqdm

from neural_core.errors import CorruptFileError
from neural_core.files import write_text_atomic
from neural_core.schema import GBufferStats

from .source import Source

log = logging.getLogger(__name__)
STATS_FILE = "gbuffer_stats.json"
# Every 4th pixel in each direction is plenty for means/stds and 16x cheaper.
PIXEL_STRIDE = 4


def stats_path(source: Source) -> Path:
    root = Path(source.root)
    return root.with_name(root.name + "." + STATS_FILE) if root.is_file() else root / STATS_FILE


def compute_stats(source: Source, max_items: int | None = None, progress: bool = True) -> dict:
    total = total_sq = None
    count, used = 0, 0
    indices = range(len(source)) if max_items is None else range(min(max_items, len(source)))
    for index in tqdm(indices, desc="G-buffer statistics", disable=not progress):
        try:
            g = source.load_gbuffers(index)[:, ::PIXEL_STRIDE, ::PIXEL_STRIDE].astype(np.float64)
        except (CorruptFileError, OSError, ValueError) as exc:
            source.skip(source.name(index), str(exc))
            continue
        flat = g.reshape(g.shape[0], -1)
        total = flat.sum(1) if total is None else total + flat.sum(1)
        total_sq = (flat ** 2).sum(1) if total_sq is None else total_sq + (flat ** 2).sum(1)
        count += flat.shape[1]
        used += 1
    if not used:
        raise ValueError(f"no readable G-buffers in {source.root} to compute statistics from")
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean ** 2, 0.0))
    # A constant channel (e.g. no emission anywhere) would divide by ~0: leave it unscaled.
    std = np.where(std < 1e-6, 1.0, std)
    return {"channels": list(source.gbuffer_channels), "mean": mean.tolist(), "std": std.tolist(),
            "items": used, "pixel_stride": PIXEL_STRIDE, "source": str(source.root)}


def write_json(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=1) + "\n")


def load_or_compute(source: Source, run_dir: Path | None = None, recompute: bool = False) -> dict:
    """The dataset's stats: read from its stats file, else computed and saved there.

    If the dataset directory is read-only the file goes into the run directory instead.
    """
    path = stats_path(source)
    if path.is_file() and not recompute:
        data = json.loads(path.read_text())
        if data.get("channels") == list(source.gbuffer_channels):
            log.info("G-buffer statistics from %s", path)
            return data
        log.warning("%s is for channels %s, not %s; recomputing", path, data.get("channels"),
                    source.gbuffer_channels)
    data = compute_stats(source)
    try:
        write_json(path, data)
        log.info("G-buffer statistics saved to %s", path)
    except OSError as exc:
        log.warning("cannot write %s (%s); statistics are kept in the run directory only", path, exc)
    if run_dir is not None:
        write_json(Path(run_dir) / STATS_FILE, data)
    return data


def as_gbuffer_stats(data: dict) -> GBufferStats:
    return GBufferStats.from_dict(data)
