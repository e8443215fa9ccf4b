#!/usr/bin/env bash
# Steps 2-4 of reproducing the bundled models (step 1: scripts/make_default_corpus.sh).
# These are the exact commands behind neural_core/models/{rad,crn}.onnx; the model cards
# (neural_core/models/*.md) record the steps reached, the hardware and the wall time.
# Runs stop at --steps; re-running a command resumes from its last checkpoint.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # small networks: one thread per process is fastest on 2 cores

# 2. Train: RAD (paired fast -> reference, L1), the same RAD without G-buffers (ablation), CRN.
RAD_ARGS=(--steps 4000 --lr 5e-4 --lr-schedule cosine --batch-size 4 --crop 96
          --vgg-weight 0 --log-every 50 --checkpoint-every 250 --no-progress)
"$PY" -m training train-rad --data data/corpus/train --run-dir runs/rad "${RAD_ARGS[@]}" &
"$PY" -m training train-rad --data data/corpus/train --run-dir runs/rad_nog --gbuffer-passes none \
    "${RAD_ARGS[@]}" &
# CRN with k = 1: with k > 1 the diversity loss splits the images into modes (bright / dark scenes)
# and the one image the add-on shows is a single mode (see neural_core/models/crn.md).
"$PY" -m training train-crn --data data/corpus/train/reference --run-dir runs/crn --steps "${CRN_STEPS:-1500}" \
    --batch-size 1 --lr 2e-4 --size 128 256 --net-config '{"num_images": 1}' \
    --vgg-taps relu1_2 relu2_2 relu3_2 --log-every 10 --checkpoint-every 100 --no-progress &
wait
# 2b. Both RADs resumed to 6000 steps (options come from the run; the cosine curve stretches, so the
#     learning rate restarts at 25 % and decays to 0 again). This is how the bundled RAD was made.
"$PY" -m training train-rad --run-dir runs/rad --steps 6000 &
"$PY" -m training train-rad --run-dir runs/rad_nog --steps 6000 &
wait

# 3. Export (CHECKPOINT=step_NNNNNNN.pt picks one; both RADs are compared at the same step).
ckpt() { [ -n "${CHECKPOINT:-}" ] && echo "--checkpoint runs/$1/checkpoints/$CHECKPOINT"; true; }
"$PY" -m training export runs/rad --out neural_core/models/rad.onnx $(ckpt rad)
"$PY" -m training export runs/rad_nog --out runs/rad_nog.onnx $(ckpt rad_nog)
"$PY" -m training export runs/crn --out neural_core/models/crn.onnx

# 4. Evaluate on the held-out scenes against the baselines.
"$PY" -m training.baselines.denoise_node --data data/corpus/eval --out runs/eval/denoise
"$PY" scripts/evaluate_default_models.py --eval data/corpus/eval --train data/corpus/train \
    --denoised runs/eval/denoise --rad neural_core/models/rad.onnx --rad-no-gbuffers runs/rad_nog.onnx \
    --crn neural_core/models/crn.onnx --out runs/eval
