"""Small real ONNX models the Blender tests load as custom models (untrained, fixed seed).

    .venv/bin/python scripts/make_test_models.py   # -> tests/fixtures/rad_bounces_tiny.onnx

rad_bounces_tiny: a narrow RAD on top of the denoiser that also reads the render's light-path
depth (the `bounces` input), so the add-on's handling of it is tested whatever model is bundled.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from neural_core import schema  # noqa: E402
from runtime_models import build, export_model  # noqa: E402


def main() -> int:
    import torch

    net = build("rad", seed=0, image_passes=("image", "noisy"),
                gbuffer_passes=(*schema.DEFAULT_GBUFFER_PASSES, "bounces"))
    with torch.no_grad():   # a strong response to the plane, so a test sees it being passed
        net.gbuffer_encoder.stream_in.weight[:, -1] = 3.0
    out = export_model(net, REPO / "tests" / "fixtures" / "rad_bounces_tiny.onnx")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
