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
# make-scenes at 256x128: COUNT SEED KINDS OUT [more make-scenes options]
scenes() {
    "$PY" -m training make-scenes --count "$1" --seed "$2" --kinds "$3" --out "$4" --resolution 256x128 "${@:5}"
}
# Validation sets: 4 spp / 1 bounce and 16 spp / 12 bounces against 256-spp raw references.
validation_set() { scenes "$@" --fast 4spp-1b,16spp-12b --reference-samples 256 --reference-raw; }
# Held-out sets: also 16 spp / 1 bounce, against 512-spp raw references.
heldout_set() {
    scenes "$@" --fast 4spp-1b,16spp-1b,16spp-12b --reference-samples "${EVAL_REFERENCE_SAMPLES:-512}" \
        --reference-raw
}

scenes "${TRAIN_COUNT:-300}" 10000 street,interior,tabletop data/corpus2/train --fast random
heldout_set "${EVAL_COUNT:-18}" 20000 street,interior,tabletop data/corpus2/eval
# val:   9 more scenes (seeds 30000+) at 4 spp / 1 bounce and 16 spp / 12 bounces, 256-spp raw
#        references: for choosing checkpoints, so that the held-out set stays unseen.
validation_set "${VAL_COUNT:-9}" 30000 street,interior,tabletop data/corpus2/val
# closeup: product close-ups (saturated glossy/metallic heroes 10-60 cm from the lens), the scenes
#        where the bounce-conditioned model failed (rad.md, "Tried"): a training set (seeds 11000+,
#        drawn fast settings as above) and a validation set (seeds 31000+, as val/).
validation_set "${CLOSEUP_VAL_COUNT:-6}" 31000 closeup data/corpus2_closeup/val
scenes "${CLOSEUP_COUNT:-120}" 11000 closeup data/corpus2_closeup/train --fast random
# low:   160 more training scenes (seeds 12000+, all four kinds in turn) whose fast render draws
#        1-3 bounces only: renders that miss light, what the model must learn to add
#        (the default draw gives 1-3 bounces to a quarter of the scenes).
scenes "${LOW_COUNT:-160}" 12000 street,interior,tabletop,closeup data/corpus2_low/train \
    --fast random --fast-bounces 1-3
# studio: a figure on a ground plane in what no other kind has: glass, subsurface scattering, clear
#        coat, sheen, haze (training/scenes/studio.py). Validation (seeds 33000+, as val/), then
#        120 training scenes with drawn fast settings (seeds 13000+; 998 s of rendering on 2 cores).
validation_set "${STUDIO_VAL_COUNT:-6}" 33000 studio data/corpus2_studio/val
scenes "${STUDIO_COUNT:-120}" 13000 studio data/corpus2_studio/train --fast random
# val2:  12 more validation scenes, table tops and close-ups in turn (seeds 32000+): the first two
#        validation sets did not show a failure on close glossy table tops at full bounces.
validation_set "${VAL2_COUNT:-12}" 32000 tabletop,closeup data/corpus2_val2
# eval2: a fresh held-out set like eval/ (seeds 20800+), never looked at while choosing a model:
#        the earlier one has been (neural_core/models/rad.md). Evaluate on it once per model.
heldout_set "${EVAL_COUNT:-18}" 20800 street,interior,tabletop data/corpus2_eval2
