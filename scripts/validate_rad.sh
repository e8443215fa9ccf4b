#!/usr/bin/env bash
# Validation of a RAD model on the validation sets (never the held-out set, which stays unseen):
# data/corpus2/val (9 streets, interiors, table tops; seeds 30000+), data/corpus2_closeup/val
# (6 product close-ups; seeds 31000+), data/corpus2_val2 (12 table tops and close-ups; seeds
# 32000+) and data/corpus2_studio/val (6 studio scenes; seeds 33000+), all from
# scripts/make_default_corpus.sh. Prints, per set, RAD against the denoised render, scene by
# scene, worst scene included.
#
#   bash scripts/validate_rad.sh MODEL.onnx OUT_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MODEL=${1:?usage: validate_rad.sh MODEL.onnx OUT_DIR}
OUT=${2:?usage: validate_rad.sh MODEL.onnx OUT_DIR}
for set in corpus2/val corpus2_closeup/val corpus2_val2 corpus2_studio/val; do
    [ -d "data/$set" ] || { echo "data/$set is missing: run scripts/make_default_corpus.sh" >&2; exit 1; }
    "$PY" scripts/evaluate_default_models.py --eval "data/$set" --rad "$MODEL" --out "$OUT/${set%/val}"
done
