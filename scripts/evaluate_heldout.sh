#!/usr/bin/env bash
# Step 4 of reproducing the bundled models: evaluate them on held-out scenes against Blender's own
# denoising, scene by scene (Denoise node on the noisy render, and the denoised render).
#   scripts/evaluate_heldout.sh [EVAL_ROOT=data/corpus2/eval] [OUT=runs/eval]
# data/corpus2_eval2 (scripts/make_default_corpus.sh) is the fresh held-out set: evaluate each
# model on it once, after choosing it on the validation scenes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
EVAL_ROOT=${1:-data/corpus2/eval}
OUT=${2:-runs/eval}
for setting in 4spp-1b 16spp-1b 16spp-12b; do
    "$PY" -m training.baselines.denoise_node --data "$EVAL_ROOT/fast-$setting" \
        --out "$OUT/denoise/$setting" --input noisy
done
"$PY" scripts/evaluate_default_models.py --eval "$EVAL_ROOT" --train data/corpus2/train \
    --denoise-node "$OUT/denoise" --rad neural_core/models/rad.onnx \
    --crn neural_core/models/crn.onnx --out "$OUT"
