"""Blender's own Denoise compositor node (OpenImageDenoise) as a baseline for RAD.

    python -m training.baselines.denoise_node --data DIR --out OUT

The node itself is the add-on's (addon/denoise_node.py: how it runs, what differs between
Blender versions): the add-on also uses it on renders made with Cycles' denoiser off, so the
baseline and what the add-on computes are one piece of code. This module denoises whole
datasets, resumably, for the evaluation.

Needs the `bpy` module; no torch.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from addon import blender_api
from addon.denoise_node import INPUTS, PREFILTERS, QUALITIES, DenoiseNode  # noqa: F401 (re-exported)
from neural_core import exr, schema
from neural_core.files import write_text_atomic

SETTINGS_FILE = "denoise.json"
OUTPUT_SUBDIR = "frames"
SOURCES = ("image", "noisy")   # the pass that is denoised: Combined, or Cycles' Noisy Image


def quiet_node(**settings) -> DenoiseNode:
    """The add-on's DenoiseNode with Blender's render log silenced (a readable progress bar)."""
    from training.scenes.render import quiet_stdout
    return DenoiseNode(**settings, quiet=lambda: quiet_stdout(True))


def denoise(frame: schema.Frame, hdr: bool = True, prefilter: str = "ACCURATE",
            quality: str | None = None) -> np.ndarray:
    """Blender's Denoise node on one frame's Combined with its albedo and normal passes.

    Returns (H, W, 3) float32, scene-linear HDR, row 0 = top. For many frames, keep a
    `DenoiseNode` instead (the tree is built once).
    """
    with quiet_node(hdr=hdr, prefilter=prefilter, quality=quality) as node:
        return node(frame)


# ---------------------------------------------------------------------------------------------
# Whole datasets
# ---------------------------------------------------------------------------------------------

def output_path(out_dir: str | os.PathLike, number: int) -> Path:
    """Where denoise_dataset writes frame `number`: OUT/frames/000001.exr (RGB, linear)."""
    from neural_core.dataset_format import frame_stem
    return Path(out_dir) / OUTPUT_SUBDIR / f"{frame_stem(number)}.exr"


def _check_settings(out_dir: Path, settings: dict) -> None:
    """OUT records the Denoise settings; resuming with other settings would mix results."""
    path = out_dir / SETTINGS_FILE
    if path.is_file():
        existing = json.loads(path.read_text(encoding="utf-8"))
        if existing.get("settings") != settings:
            raise ValueError(f"{out_dir} holds frames denoised with {existing.get('settings')}, not "
                             f"{settings}; use another --out or the same settings")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"denoiser": "Blender Denoise node (OpenImageDenoise)",
              "blender_version": blender_api.VERSION_STRING, "settings": settings}
    write_text_atomic(path, json.dumps(record, indent=1) + "\n")


def denoise_dataset(data_dir: str | os.PathLike, out_dir: str | os.PathLike, hdr: bool = True,
                    prefilter: str = "ACCURATE", quality: str | None = None,
                    progress: bool = True, source: str = "image") -> list[Path]:
    """Denoise every complete frame of an exported dataset into OUT/frames/<frame>.exr.

    `data_dir` is a dataset directory (neural_core.dataset_format), or a make-scenes ROOT,
    whose fast/ renders are then denoised. Frames already in OUT are skipped, so a killed run
    resumes; each file is written atomically. Returns the paths of all frames' results.
    `source` 'noisy' denoises the Noisy Image pass instead of Combined: what a user who rendered
    with Cycles' denoiser off would have denoised in the compositor.
    """
    from tqdm import tqdm

    from neural_core.dataset_format import DatasetReader

    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if (data_dir / "fast" / "manifest.json").is_file():
        data_dir = data_dir / "fast"
    reader = DatasetReader(data_dir)
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    settings = {"hdr": hdr, "prefilter": prefilter, "quality": quality}
    _check_settings(out_dir, {**settings, "source": source} if source != "image" else settings)
    todo = [n for n in reader.frames if not output_path(out_dir, n).is_file()]
    if todo:
        with quiet_node(**settings) as node:
            for number in tqdm(todo, desc="Denoise node", unit="frame", disable=not progress):
                frame = reader.read_frame(number)
                if source != "image":
                    schema.check_frame(frame, [source], source=str(reader.path(number, "exr")))
                    frame = {**frame, "image": frame[source]}
                exr.write_rgb(output_path(out_dir, number), node(frame))
    return [output_path(out_dir, n) for n in reader.frames]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.baselines.denoise_node",
        description="Denoise every frame of an exported dataset with Blender's Denoise node "
                    "(OpenImageDenoise, Combined + albedo + normal). Resumes: finished frames "
                    "in OUT are skipped.")
    parser.add_argument("--data", required=True,
                        help="dataset directory, or a make-scenes ROOT (its fast/ is denoised)")
    parser.add_argument("--out", required=True, help="writes OUT/frames/<frame>.exr (linear RGB)")
    parser.add_argument("--no-hdr", action="store_true", help="treat the input as LDR [0, 1]")
    parser.add_argument("--prefilter", choices=PREFILTERS, default="ACCURATE")
    parser.add_argument("--input", choices=SOURCES, default="image",
                        help="pass to denoise: image (Combined) or noisy (Cycles' Noisy Image: the "
                             "render as it was before Cycles' own denoiser)")
    parser.add_argument("--quality", choices=QUALITIES, default=None,
                        help="Blender 4.4+: OIDN quality (default: the node's own, Follow Scene)")
    args = parser.parse_args(argv)
    from neural_core.errors import PhotorealError
    try:
        paths = denoise_dataset(args.data, args.out, hdr=not args.no_hdr,
                                prefilter=args.prefilter, quality=args.quality, source=args.input)
    except (PhotorealError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{len(paths)} denoised frames in {Path(args.out) / OUTPUT_SUBDIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
