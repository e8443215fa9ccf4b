#!/usr/bin/env bash
# Steps 2-4 of reproducing the bundled RAD (step 1: scripts/make_default_corpus.sh).
# These are the exact commands behind neural_core/models/rad.onnx; its model card
# (neural_core/models/rad.md) records the steps reached, the data, the hardware and the wall time.
# Re-running resumes from the last checkpoint (and sees every scene rendered by then).
# The bundled CRN is unchanged by this script (its recipe: git history of this file, crn.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}   # a small network: one thread per process is fastest on 2 cores

# 2. Train RAD on top of Cycles' denoiser: fast (denoised + noisy + G-buffers) -> reference, L1.
"$PY" -m training train-rad --data data/corpus2/train --run-dir runs/rad_denoised --net denoised \
    --steps "${RAD_STEPS:-8000}" --lr 5e-4 --lr-schedule cosine --batch-size 4 --crop 128 \
    --vgg-weight 0 --log-every 50 --checkpoint-every 250 --no-progress --workers 1

# 2b. (Not the bundled model: rad.md, "Tried: the light-path input".) WITH_BOUNCES=1 goes on with
#     the render's light-path depth as an input (the `bounces` plane): step 2's network with that
#     input channel at zero, on every scene with its own bounces, exported to runs/rad_bounces/.
#     (A corpus rendered before frames recorded their bounces: scripts/backfill_light_paths.py.)
if [ "${WITH_BOUNCES:-0}" = 1 ]; then
    "$PY" -m training train-rad --data data/corpus2/train --run-dir runs/rad_bounces --net denoised \
        --gbuffer-passes depth normal albedo glossy emission roughness metallic bounces \
        --init-from runs/rad_denoised --steps "${BOUNCE_STEPS:-12000}" --lr 3e-4 --lr-schedule cosine \
        --batch-size 4 --crop 128 --vgg-weight 0 --log-every 50 --checkpoint-every 500 \
        --keep-checkpoints 0 --no-progress --workers 1
    "$PY" -m training export runs/rad_bounces --out runs/rad_bounces/rad.onnx
fi

# 2c. (Not the bundled model either: rad.md, "Tried".) WITH_COLOR=1 goes on from 2b with colour
#     permutation (half the samples with R, G, B swapped alike in every colour pass): 4000 steps,
#     then 6000 more at a lower rate; exported to runs/rad_bounces_color2/.
if [ "${WITH_COLOR:-0}" = 1 ]; then
    common=(--data data/corpus2/train --net denoised --batch-size 4 --crop 128 --vgg-weight 0
            --gbuffer-passes depth normal albedo glossy emission roughness metallic bounces
            --lr-schedule cosine --log-every 50 --keep-checkpoints 0 --no-progress --workers 1
            --color-permute 0.5)
    "$PY" -m training train-rad "${common[@]}" --run-dir runs/rad_bounces_color --init-from runs/rad_bounces \
        --steps 4000 --lr 2e-4 --checkpoint-every 500
    "$PY" -m training train-rad "${common[@]}" --run-dir runs/rad_bounces_color2 --init-from runs/rad_bounces_color \
        --steps 6000 --lr 1e-4 --checkpoint-every 1000
    "$PY" -m training export runs/rad_bounces_color2 --out runs/rad_bounces_color2/rad.onnx
fi

# 2d. WITH_CLOSEUP=1 goes on from 2c on the corpus plus the product close-ups
#     (data/corpus2_closeup/train, scripts/make_default_corpus.sh), with the colour permutation:
#     once with L1 alone, once with the no-worse hinge (--no-worse-weight: crops the model makes
#     worse than the denoised render cost extra). One thread each, so both run side by side.
if [ "${WITH_CLOSEUP:-0}" = 1 ]; then
    common=(--data data/corpus2/train,data/corpus2_closeup/train --net denoised --batch-size 4 --crop 128
            --vgg-weight 0 --gbuffer-passes depth normal albedo glossy emission roughness metallic bounces
            --lr-schedule cosine --log-every 50 --keep-checkpoints 0 --no-progress --workers 1
            --color-permute 0.5 --init-from runs/rad_bounces_color2 --steps 6000 --lr 1e-4
            --checkpoint-every 1000)
    "$PY" -m training train-rad "${common[@]}" --run-dir runs/rad_closeup & plain=$!
    "$PY" -m training train-rad "${common[@]}" --run-dir runs/rad_closeup_nw --no-worse-weight 2 & hinge=$!
    wait "$plain"; wait "$hinge"
    for run in rad_closeup rad_closeup_nw; do
        "$PY" -m training export "runs/$run" --out "runs/$run/rad.onnx"
    done
fi

# 3. Export (CHECKPOINT=step_NNNNNNN.pt picks one).
ckpt() { [ -n "${CHECKPOINT:-}" ] && echo "--checkpoint runs/$1/checkpoints/$CHECKPOINT"; true; }
"$PY" -m training export runs/rad_denoised --out neural_core/models/rad.onnx $(ckpt rad_denoised)

# 4. Evaluate on the held-out scenes against Blender's own denoising, scene by scene.
for setting in 4spp-1b 16spp-1b 16spp-12b; do
    "$PY" -m training.baselines.denoise_node --data "data/corpus2/eval/fast-$setting" \
        --out "runs/eval/denoise/$setting" --input noisy
done
"$PY" scripts/evaluate_default_models.py --eval data/corpus2/eval --train data/corpus2/train \
    --denoise-node runs/eval/denoise --rad neural_core/models/rad.onnx \
    --crn neural_core/models/crn.onnx --out runs/eval
