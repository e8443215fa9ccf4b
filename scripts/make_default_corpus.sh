#!/usr/bin/env bash
# Step 1 of reproducing the bundled models: the generated corpus (see neural_core/models/*.md).
# Training scenes use seeds 10000+, held-out evaluation scenes 20000+ (tests use < 1000).
# Kill it any time and run it again: finished scenes are skipped (also on a fresh machine, if
# data/corpus2/ is copied over). Both folders are refused if they hold other settings.
#
# train: street, interior and table-top scenes in turn at 256x128; each scene's fast render draws
#        1-64 spp and 1-12 bounces from its seed, Cycles' denoiser on (the noisy image is stored);
#        the reference is 64 spp, full bounces, denoised.
# eval:  6 + 6 + 6 held-out scenes, each rendered at 4 spp / 1 bounce, 16 spp / 1 bounce and
#        16 spp / 12 bounces (denoised, noisy image stored: the denoiser-off case is that image),
#        reference 512 spp, full bounces, no denoiser.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
"$PY" -m training make-scenes --count "${TRAIN_COUNT:-300}" --seed 10000 --resolution 256x128 \
    --kinds street,interior,tabletop --fast random --out data/corpus2/train
"$PY" -m training make-scenes --count "${EVAL_COUNT:-18}" --seed 20000 --resolution 256x128 \
    --kinds street,interior,tabletop --fast 4spp-1b,16spp-1b,16spp-12b \
    --reference-samples "${EVAL_REFERENCE_SAMPLES:-512}" --reference-raw --out data/corpus2/eval
# val:   9 more scenes (seeds 30000+) at 4 spp / 1 bounce and 16 spp / 12 bounces, 256-spp raw
#        references: for choosing checkpoints, so that the held-out set stays unseen.
"$PY" -m training make-scenes --count "${VAL_COUNT:-9}" --seed 30000 --resolution 256x128 \
    --kinds street,interior,tabletop --fast 4spp-1b,16spp-12b --reference-samples 256 \
    --reference-raw --out data/corpus2/val
# closeup: product close-ups (saturated glossy/metallic heroes 10-60 cm from the lens), the scenes
#        where the bounce-conditioned model failed (rad.md, "Tried"): a training set (seeds 11000+,
#        drawn fast settings as above) and a validation set (seeds 31000+, as val/).
"$PY" -m training make-scenes --count "${CLOSEUP_VAL_COUNT:-6}" --seed 31000 --resolution 256x128 \
    --kinds closeup --fast 4spp-1b,16spp-12b --reference-samples 256 --reference-raw \
    --out data/corpus2_closeup/val
"$PY" -m training make-scenes --count "${CLOSEUP_COUNT:-120}" --seed 11000 --resolution 256x128 \
    --kinds closeup --fast random --out data/corpus2_closeup/train
# low:   160 more training scenes (seeds 12000+, all four kinds in turn) whose fast render draws
#        1-3 bounces only: renders that miss light, what the model must learn to add
#        (the default draw gives 1-3 bounces to a quarter of the scenes).
"$PY" -m training make-scenes --count "${LOW_COUNT:-160}" --seed 12000 --resolution 256x128 \
    --kinds street,interior,tabletop,closeup --fast random --fast-bounces 1-3 \
    --out data/corpus2_low/train
# studio: a figure on a ground plane in what no other kind has: glass, subsurface scattering, clear
#        coat, sheen, haze (training/scenes/studio.py). Validation (seeds 33000+, as val/), then
#        120 training scenes with drawn fast settings (seeds 13000+; 998 s of rendering on 2 cores).
"$PY" -m training make-scenes --count "${STUDIO_VAL_COUNT:-6}" --seed 33000 --resolution 256x128 \
    --kinds studio --fast 4spp-1b,16spp-12b --reference-samples 256 --reference-raw \
    --out data/corpus2_studio/val
"$PY" -m training make-scenes --count "${STUDIO_COUNT:-120}" --seed 13000 --resolution 256x128 \
    --kinds studio --fast random --out data/corpus2_studio/train
# val2:  12 more validation scenes, table tops and close-ups in turn (seeds 32000+): the first two
#        validation sets did not show a failure on close glossy table tops at full bounces.
"$PY" -m training make-scenes --count "${VAL2_COUNT:-12}" --seed 32000 --resolution 256x128 \
    --kinds tabletop,closeup --fast 4spp-1b,16spp-12b --reference-samples 256 --reference-raw \
    --out data/corpus2_val2
# eval2: a fresh held-out set like eval/ (seeds 20800+), never looked at while choosing a model:
#        the earlier one has been (neural_core/models/rad.md). Evaluate on it once per model.
"$PY" -m training make-scenes --count "${EVAL_COUNT:-18}" --seed 20800 --resolution 256x128 \
    --kinds street,interior,tabletop --fast 4spp-1b,16spp-1b,16spp-12b \
    --reference-samples "${EVAL_REFERENCE_SAMPLES:-512}" --reference-raw --out data/corpus2_eval2
