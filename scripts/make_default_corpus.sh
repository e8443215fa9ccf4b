#!/usr/bin/env bash
# Step 1 of reproducing the bundled models: the generated corpus (see neural_core/models/*.md).
# Training scenes use seeds 10000+, held-out evaluation scenes 20000+ (tests use < 1000).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m training make-scenes --count "${TRAIN_COUNT:-84}" --seed 10000 --resolution 256x144 \
    --fast-samples 8 --reference-samples 128 --out data/corpus/train
"$PY" -m training make-scenes --count "${EVAL_COUNT:-12}" --seed 20000 --resolution 256x144 \
    --fast-samples 8 --reference-samples 256 --out data/corpus/eval
