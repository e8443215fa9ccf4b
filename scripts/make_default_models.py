"""Build UNTRAINED models of the default configs: the small RAD and CRN, freshly initialised
with a fixed seed, exported with metadata and a model card each.

They are for development (a real model of the right architecture and metadata, seconds to
make). The bundled models in neural_core/models are trained: scripts/train_default_models.sh.

    .venv/bin/python scripts/make_default_models.py [--out out/untrained_models] [--seed 0]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from neural_core.export import export_onnx, metadata_for  # noqa: E402
from neural_core.files import write_text_atomic  # noqa: E402
from neural_core.metadata import OUTPUT_NAME  # noqa: E402
from neural_core.networks import build_network, count_flops, count_params  # noqa: E402

UNTRAINED_DIR = Path(__file__).resolve().parents[1] / "out" / "untrained_models"
TRAINED_ON = "untrained: freshly initialised weights (seed {seed})"
FULL_HD = (1080, 1920)


def build(kind: str, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_network(kind, None).eval()


def flops_at(model: torch.nn.Module, height: int, width: int) -> int:
    if model.kind == "crn":
        # The exported CRN pads to its size multiple; count what it really runs.
        m = model.size_multiple
        height, width = -(-height // m) * m, -(-width // m) * m
    return count_flops(model, height, width)


def model_card(kind: str, model: torch.nn.Module, metadata, onnx_path: Path, seed: int) -> str:
    flops = flops_at(model, *FULL_HD)
    config = json.dumps(metadata.config, indent=2)
    inputs = ", ".join(metadata.input_names)
    if kind == "rad":
        crn_note = (f"\nNo per-image statistics at inference (BatchNorm with running statistics), so "
                    f"tiles agree with the whole frame when their offsets are multiples of "
                    f"{model.config.alignment} (the stride of the coarsest branch).\n")
    else:
        crn_note = (f"\nThe network needs H and W that are multiples of {model.size_multiple}; the "
                    f"exported graph pads the class map (repeating its edge) and crops the output, so "
                    f"it accepts any size. Layer norm uses whole-image statistics: run CRN on the whole "
                    f"frame, not in tiles. Of its {metadata.num_images} output images the export "
                    f"keeps the first.\n")
    return f"""# Untrained {kind.upper()} model ({onnx_path.name})

**UNTRAINED.** These are freshly initialised weights (seed {seed}), not a trained model:
{"its output is the input image plus a small residual that has learned nothing" if kind == "rad" else "its output is a smooth, random-looking image that has learned nothing"}.
It exists so that development has a real model with the right architecture and metadata;
the bundled models in neural_core/models are trained (scripts/train_default_models.sh).

- Architecture: {"RAD enhancement network after EPE (neural_core/networks/rad.py)" if kind == "rad" else "Cascaded Refinement Network after Chen & Koltun (neural_core/networks/crn.py)"}, the `small` config
- Parameters: {count_params(model):,}
- Compute: {flops / 1e9:.1f} GFLOP per 1920x1080 frame (2 x multiply-accumulates of the convolutions)
- ONNX: opset 17, dynamic batch/height/width, inputs ({inputs}), output `{OUTPUT_NAME}`
  (B, 3, H, W) in the log1p-encoded domain of `schema.encode_radiance`
- Required passes: {", ".join(metadata.required_passes)}
- Schema version: {metadata.schema_version}; trained_on: "{metadata.trained_on}"
- File size: {onnx_path.stat().st_size / 1e6:.1f} MB
{crn_note}
Rebuild with `.venv/bin/python scripts/make_default_models.py`.

## Config

```json
{config}
```
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=UNTRAINED_DIR)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in ("rad", "crn"):
        model = build(kind, args.seed)
        metadata = metadata_for(kind, model.config, trained_on=TRAINED_ON.format(seed=args.seed))
        onnx_path = export_onnx(model, metadata, args.out / f"{kind}.onnx")
        write_text_atomic(args.out / f"{kind}.md", model_card(kind, model, metadata, onnx_path, args.seed))
        print(f"{onnx_path}: {count_params(model):,} parameters, "
              f"{flops_at(model, *FULL_HD) / 1e9:.1f} GFLOP at 1920x1080, "
              f"{onnx_path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
