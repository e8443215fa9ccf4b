#!/usr/bin/env bash
# Steps 2-4 of reproducing the bundled RAD (step 1: scripts/make_default_corpus.sh).
# These are the exact commands behind neural_core/models/rad.onnx; its model card
# (neural_core/models/rad.md) records the steps reached, the data, the hardware and the wall time.
# Every run starts from the one before; re-running resumes each from its last checkpoint (a run
# that has reached its steps returns at once).
# The bundled CRN is unchanged by this script (its recipe: git history of this file, crn.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # a small network: one thread per process is fastest on 2 cores

PASSES=(depth normal albedo glossy emission roughness metallic bounces)
common=(--net denoised --batch-size 4 --crop 128 --vgg-weight 0 --lr-schedule cosine --log-every 50
        --no-progress --workers 1)
# Stages 2b-2e: with the bounces input, every checkpoint kept; from 2c on, colour-permuted.
conditioned=("${common[@]}" --gbuffer-passes "${PASSES[@]}" --keep-checkpoints 0)
permuted=("${conditioned[@]}" --color-permute 0.5)

# 2a. RAD on top of Cycles' denoiser: fast (denoised + noisy + G-buffers) -> reference, L1. (The
#     previous bundled model was this run's step 8000: CHECKPOINT=step_0008000.pt below.)
"$PY" -m training train-rad "${common[@]}" --data data/corpus2/train --run-dir runs/rad_denoised \
    --steps 10000 --lr 5e-4 --checkpoint-every 250

# 2b. + the render's light-path depth as an input (the `bounces` plane, starting at zero).
#     (A corpus rendered before frames recorded their bounces: scripts/backfill_light_paths.py.)
"$PY" -m training train-rad "${conditioned[@]}" --data data/corpus2/train --run-dir runs/rad_bounces \
    --init-from runs/rad_denoised --steps 12000 --lr 3e-4 --checkpoint-every 500

# 2c. + colour permutation (half the samples with R, G, B swapped alike in every colour pass):
#     4000 steps, then 6000 more at a lower rate.
"$PY" -m training train-rad "${permuted[@]}" --data data/corpus2/train --run-dir runs/rad_bounces_color \
    --init-from runs/rad_bounces --steps 4000 --lr 2e-4 --checkpoint-every 500
"$PY" -m training train-rad "${permuted[@]}" --data data/corpus2/train --run-dir runs/rad_bounces_color2 \
    --init-from runs/rad_bounces_color --steps 6000 --lr 1e-4 --checkpoint-every 1000

# 2d. + the product close-ups and the no-worse hinge (crops the model makes worse than the
#     denoised render cost extra). WITH_ABLATION=1 also trains the same run without the hinge
#     (runs/rad_closeup, rad.md "Training"), side by side on the second core.
closeup=("${permuted[@]}" --data data/corpus2/train,data/corpus2_closeup/train
         --init-from runs/rad_bounces_color2 --steps 6000 --lr 1e-4 --checkpoint-every 1000)
if [ "${WITH_ABLATION:-0}" = 1 ]; then
    "$PY" -m training train-rad "${closeup[@]}" --run-dir runs/rad_closeup & ablation=$!
fi
"$PY" -m training train-rad "${closeup[@]}" --run-dir runs/rad_closeup_nw --no-worse-weight 2
if [ "${WITH_ABLATION:-0}" = 1 ]; then wait "$ablation"; fi

# 2e. + 160 low-bounce scenes (1-3 bounces: renders that miss light) and a stronger hinge: the
#     bundled model. WITH_ABLATION=1 also trains the same with the hinge at 2 (runs/rad_low).
low=("${permuted[@]}" --data data/corpus2/train,data/corpus2_closeup/train,data/corpus2_low/train
     --init-from runs/rad_closeup_nw --steps 6000 --lr 1e-4 --checkpoint-every 1000)
if [ "${WITH_ABLATION:-0}" = 1 ]; then
    "$PY" -m training train-rad "${low[@]}" --run-dir runs/rad_low --no-worse-weight 2 & ablation=$!
fi
"$PY" -m training train-rad "${low[@]}" --run-dir runs/rad_low_h5 --no-worse-weight 5
if [ "${WITH_ABLATION:-0}" = 1 ]; then wait "$ablation"; fi

# 2f (tried, not bundled; WITH_STUDIO=1 runs it). + 120 studio scenes (glass, subsurface, clear
#     coat, sheen, haze: what no other kind has), same recipe, and side by side the same with the
#     studio scenes drawn twice as often. Neither beat 2e on the validation scenes (rad.md, "Tried").
if [ "${WITH_STUDIO:-0}" = 1 ]; then
    STUDIO=data/corpus2_studio/train
    ALL=data/corpus2/train,data/corpus2_closeup/train,data/corpus2_low/train
    studio=("${permuted[@]}" --init-from runs/rad_low_h5 --steps 6000 --lr 1e-4 --checkpoint-every 1000
            --no-worse-weight 5)
    "$PY" -m training train-rad "${studio[@]}" --data "$ALL,$STUDIO,$STUDIO" --run-dir runs/rad_studio2x & studio2x=$!
    "$PY" -m training train-rad "${studio[@]}" --data "$ALL,$STUDIO" --run-dir runs/rad_studio
    wait "$studio2x"
fi

# 2g. The bundled model: 2e with the context module (the coarsest branch pooled by 8 to 1/32 of
#     the frame, three 3x3 convs, added back through a conv that starts at zero, so the run starts
#     from 2e's exact output): light from further away than the branches see (indirect light in
#     a room). WITH_ABLATION=1 also trains the variants it was chosen against, two at a time:
#     pooling 4 and 8 with two convs (runs/rad_ctx4, runs/rad_ctx8), four convs (runs/rad_ctx8_l4).
context=("${permuted[@]}" --data data/corpus2/train,data/corpus2_closeup/train,data/corpus2_low/train
         --init-from runs/rad_low_h5 --steps 6000 --lr 1e-4 --checkpoint-every 1000 --no-worse-weight 5)
if [ "${WITH_ABLATION:-0}" = 1 ]; then
    "$PY" -m training train-rad "${context[@]}" --net-config '{"context_pool": 4}' --run-dir runs/rad_ctx4 &
    ablation=$!
    "$PY" -m training train-rad "${context[@]}" --net-config '{"context_pool": 8}' --run-dir runs/rad_ctx8
    wait "$ablation"
    "$PY" -m training train-rad "${context[@]}" --net-config '{"context_pool": 8, "context_layers": 4}' \
        --run-dir runs/rad_ctx8_l4 & ablation=$!
fi
"$PY" -m training train-rad "${context[@]}" --net-config '{"context_pool": 8, "context_layers": 3}' \
    --run-dir runs/rad_ctx8_l3
if [ "${WITH_ABLATION:-0}" = 1 ]; then wait "$ablation"; fi

# 3. The residual scales, on the validation scenes only (the recommendation printed last: one
#    for renders with every bounce, one for the others), then the export (RESIDUAL_SCALE,
#    FULL_BOUNCE_SCALE and CHECKPOINT=step_NNNNNNN.pt override).
RUN=${RUN:-rad_ctx8_l3}
"$PY" -m training export "runs/$RUN" --out "runs/$RUN/rad.onnx"
"$PY" scripts/calibrate_residual.py "runs/$RUN/rad.onnx" --by-bounces \
    --val data/corpus2/val data/corpus2_closeup/val data/corpus2_val2 data/corpus2_studio/val
ckpt() { [ -n "${CHECKPOINT:-}" ] && echo "--checkpoint runs/$RUN/checkpoints/$CHECKPOINT"; true; }
"$PY" -m training export "runs/$RUN" --residual-scale "${RESIDUAL_SCALE:-0.7}" \
    --full-bounce-scale "${FULL_BOUNCE_SCALE:-0.5}" --out neural_core/models/rad.onnx $(ckpt)

# 4. Evaluate on the held-out scenes against Blender's own denoising, scene by scene (and, once,
#    on the fresh held-out set: scripts/evaluate_heldout.sh data/corpus2_eval2 runs/eval2).
scripts/evaluate_heldout.sh data/corpus2/eval runs/eval
