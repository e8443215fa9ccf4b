"""Digests of the bundled models' outputs on the demo frame, to show a refactor changes nothing.

    .venv/bin/python scripts/model_output_digests.py > before.txt    # on the old tree
    .venv/bin/python scripts/model_output_digests.py > after.txt     # on the new tree
    diff before.txt after.txt                                          # empty: bit-identical

Each line: model, tile size, the sha256 of the linear float32 output and of its display PNG
pixels (the one sRGB encoder). CPU, 2 threads, so that runs on one machine compare exactly.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from neural_core import display, exr  # noqa: E402
from neural_core.runtime import Enhancer  # noqa: E402


def digest(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()[:16]


def main() -> int:
    frame = exr.read_frame(ROOT / "neural_core" / "assets" / "demo_frame.exr")
    for model in sorted((ROOT / "neural_core" / "models").glob("*.onnx")):
        for tile in (None, 256):
            enhancer = Enhancer.from_pretrained(model, device="cpu", tile_size=tile, threads=2)
            rgb = np.asarray(enhancer.enhance(frame))
            print(f"{model.name} tile {tile} {rgb.shape} {rgb.dtype} {digest(rgb)} "
                  f"display {digest(display.to_display(rgb))} warnings {enhancer.last_warnings}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
