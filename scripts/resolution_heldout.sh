#!/usr/bin/env bash
# Does RAD hold at resolutions above the 256x128 it was trained and evaluated at? Users render
# larger frames, where its fixed receptive field (and the context module's 32-px cells) covers a
# smaller part of the scene. Renders fresh held-out scenes (seeds 22000+, never used to choose
# anything) at 512x256 with 256-spp references (no denoiser), runs the Denoise node on the noisy
# renders, and evaluates the bundled RAD scene by scene (scripts/evaluate_default_models.py).
# Resumes: finished scenes and denoised frames are skipped.
#   scripts/resolution_heldout.sh [RESOLUTION=512x256] [COUNT=6] [SAMPLES=256]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
RESOLUTION=${1:-512x256}
COUNT=${2:-6}
SAMPLES=${3:-256}
ROOT=data/heldout_${RESOLUTION}
OUT=runs/heldout_${RESOLUTION}
"$PY" -m training make-scenes --count "$COUNT" --seed 22000 --kinds street,interior,tabletop \
    --out "$ROOT" --resolution "$RESOLUTION" --fast 4spp-1b,16spp-12b \
    --reference-samples "$SAMPLES" --reference-raw
for setting in 4spp-1b 16spp-12b; do
    "$PY" -m training.baselines.denoise_node --data "$ROOT/fast-$setting" \
        --out "$OUT/denoise/$setting" --input noisy
done
"$PY" scripts/evaluate_default_models.py --eval "$ROOT" --denoise-node "$OUT/denoise" \
    --rad neural_core/models/rad.onnx --out "$OUT"
