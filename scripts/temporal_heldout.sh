#!/usr/bin/env bash
# Held-out temporal evaluation (issue 12): 4 shots x 8 frames (2 streets, 2 interiors, every shot
# with a moving camera and at least one moving object; animated noise seed), fast (8 spp) and
# reference (512 spp) renders, then per-shot warping errors and PSNR of the input, the per-frame
# enhancement, the temporally filtered enhancement and the reference.
# Resumable: run it again after an interruption; finished frames are not rendered again.
#   scripts/temporal_heldout.sh [OUT=data/temporal_heldout] [COUNT=4] [FRAMES=8] [RES=128x64]
# Validation shots for choosing filter settings (seeds 20200+), evaluated to a file of their own:
#   SEED=20200 EVAL_OUT=/tmp/temporal_val.json scripts/temporal_heldout.sh data/temporal_val
# and 6 more at 256x128 (seeds 20400+; streets, interiors and table tops in turn):
#   SEED=20400 EVAL_OUT=/tmp/temporal_val256.json scripts/temporal_heldout.sh data/temporal_val256 6 8 256x128
# and 4 interiors (seeds 20600+; docs/temporal.md, the moving lamp):
#   .venv/bin/python -m training make-scenes --kinds interior --count 4 --seed 20600 --resolution 128x64 \
#       --reference-samples 512 --sequence 8 --out data/temporal_val_interior
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_val_interior --out /tmp/temporal_val_interior.json
# and 6 streets (seeds 20700+; session 8: the lighting test's cost on noisy streets, and a shot
# whose road moves unlike its Vector pass, docs/temporal.md):
#   .venv/bin/python -m training make-scenes --kinds street --count 6 --seed 20700 --resolution 128x64 \
#       --reference-samples 512 --sequence 8 --out data/temporal_val_street
# and 4 studio shots (seeds 20900+; session 9: glass, subsurface, haze; none of it in training):
#   .venv/bin/python -m training make-scenes --kinds studio --count 4 --seed 20900 --resolution 128x64 \
#       --reference-samples 512 --sequence 8 --out data/temporal_val_studio
# and 2 shots at 4 spp, 256x128 (seeds 21100+; session 9: the issue's own setting):
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 2 --seed 21100 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_val_4spp
# Held-out set B (session 12; seeds 21300+): 4 shots at the issue's own setting, 4 spp at 256x128:
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 21300 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_4spp
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_4spp --out docs/temporal_eval_4spp.json
# Held-out set C (session 12; seeds 21500+): a table top, a close-up, a studio set-up and an interior, same setting:
#   .venv/bin/python -m training make-scenes --kinds tabletop,closeup,studio,interior --count 4 --seed 21500 \
#       --resolution 256x128 --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_c
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_c --out docs/temporal_eval_c.json
# Long shots (session 13; validation, seeds 21700+): a street and an interior of 24 frames, judged by runs of 8:
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 2 --seed 21700 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 256 --sequence 24 --out data/temporal_val_long      # ~25 min
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_val_long --window 8 --out docs/temporal_eval_long.json
# A larger frame (session 13; validation, seeds 21800+): a street and an interior at 512x256:
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 2 --seed 21800 --resolution 512x256 \
#       --fast-samples 4 --reference-samples 256 --sequence 8 --out data/temporal_val512         # ~30 min
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_val512 --out docs/temporal_eval_512.json
# and a table top and a close-up at 512x256 (session 13, seeds 21900+; rendered after its change was chosen):
#   .venv/bin/python -m training make-scenes --kinds tabletop,closeup --count 2 --seed 21900 --resolution 512x256 \
#       --fast-samples 4 --reference-samples 256 --sequence 8 --out data/temporal_val512b        # ~25 min
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_val512b --out docs/temporal_eval_512b.json
# Held-out set D (session 14; seeds 22100+): 4 more shots at the issue's own setting, rendered after
# session 14's change (which left the outputs as they were) and evaluated once:
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 22100 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_d
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_d --out docs/temporal_eval_d.json
# The moving-shadow table top alone (session 16, validation; the scene of temporal_val256's shot
# 201-208, seed 20402, with other noise):
#   .venv/bin/python -m training make-scenes --kinds tabletop --count 1 --seed 20402 --resolution 256x128 \
#       --reference-samples 512 --sequence 8 --out data/temporal_val_shadow
# Held-out set E (session 16; seeds 22300+): 4 more shots at the issue's own setting, rendered
# after the noise bound was chosen and evaluated once (also with the bound off, --noise-bound 0):
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 22300 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_e
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_e --out docs/temporal_eval_e.json
# Held-out set F (session 17; seeds 22500+): 4 more shots at the issue's own setting, rendered
# while the emitter range was chosen on the validation shots, evaluated once after (also with the
# range off, --emitter-radius 0):
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 22500 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_f
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_f --out docs/temporal_eval_f.json
# Held-out set G (session 17; seeds 22700+): 4 more shots at the issue's own setting, rendered
# after both of session 17's changes were chosen; for one evaluation of the final filter (sets E
# and F have been looked at):
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 22700 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_g
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_g --out docs/temporal_eval_g.json
# Held-out set H (session 18; seeds 22900+): 4 more shots at the issue's own setting, rendered
# while session 18 changed only the filter's speed (same output as set G's filter) and
# evaluated once at the end of the session:
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 22900 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_h
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_h --out docs/temporal_eval_h.json
# Held-out set I (seeds 23100+): rendered in session 19, evaluated once at its end (4 of 4 meet
# both targets; docs/temporal.md).
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 23100 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_i
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_i --out docs/temporal_eval_i.json
# Held-out set J (seeds 23300+): rendered in session 19, evaluated once at its end with the same
# filter as set I (4 of 4 meet both targets).
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 23300 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_j
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_j --out docs/temporal_eval_j.json
# Held-out set K (seeds 23500+): rendered in sessions 19-20, evaluated once at the end of session
# 20 with its filter (3 of 4 meet both targets; docs/temporal.md).
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 23500 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_k
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_k --out docs/temporal_eval_k.json
# Held-out set L (seeds 23700+): rendered in sessions 20-21, evaluated once at the end of session
# 21 with its filter (docs/temporal.md).
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 23700 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_l
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_l --out docs/temporal_eval_l.json
# Held-out set M (seeds 23900+): rendered in sessions 21-22, evaluated once at the end of session
# 22 with its filter (4 of 4 meet both targets; docs/temporal.md).
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 23900 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_m
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_m --out docs/temporal_eval_m.json
# Held-out set N (seeds 24100+): rendered in sessions 22-23, evaluated once in session 23.
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 24100 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_n
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_n --out docs/temporal_eval_n.json
# Held-out set O, clean renders (seeds 24300+, 32 spp at 128x64: the case session 23's cap on a
# clean render's history is for): rendered and evaluated once in session 23.
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 24300 --resolution 128x64 \
#       --fast-samples 32 --reference-samples 512 --sequence 8 --out data/temporal_heldout_o_clean
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_o_clean --out docs/temporal_eval_o_clean.json
# Held-out set P (seeds 24500+): rendered in sessions 23-24, evaluated once in session 24 (the
# change of fast_motion to 0.03).
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 24500 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_p
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_p --out docs/temporal_eval_p.json
# EEVEE (session 24): fast frames rendered by EEVEE at 16 samples, references Cycles' (512 spp,
# denoised). A development set with every kind (seeds 24700+), and held-out set Q (seeds 24900+)
# evaluated once.
#   .venv/bin/python -m training make-scenes --fast-engine eevee --kinds street,interior,tabletop,studio --count 4 \
#       --seed 24700 --resolution 128x64 --fast-samples 16 --reference-samples 512 --sequence 8 --out data/temporal_eevee_dev
#   .venv/bin/python -m training make-scenes --fast-engine eevee --kinds street,interior --count 4 --seed 24900 \
#       --resolution 128x64 --fast-samples 16 --reference-samples 512 --sequence 8 --out data/temporal_heldout_q_eevee
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_q_eevee --out docs/temporal_eval_q_eevee.json
# Held-out set R (seeds 25100+): rendered in sessions 24-25, evaluated once in session 25 (4 of 4).
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 25100 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_r
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_r --out docs/temporal_eval_r.json
# Held-out set S (seeds 25300+): started at the end of session 25 (resumable), not looked at; for
# the next filter change's once-only evaluation. Next unused seeds: 25500+.
#   .venv/bin/python -m training make-scenes --kinds street,interior --count 4 --seed 25300 --resolution 256x128 \
#       --fast-samples 4 --reference-samples 512 --sequence 8 --out data/temporal_heldout_s
#   .venv/bin/python scripts/evaluate_temporal.py --data data/temporal_heldout_s --out docs/temporal_eval_s.json
# Any of the validation sets: scripts/sweep_temporal.py --data ROOT [--set NAME=V1,V2]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-data/temporal_heldout}
COUNT=${2:-4}
FRAMES=${3:-8}
RES=${4:-128x64}
PY=${PY:-.venv/bin/python}
$PY -m training make-scenes --count "$COUNT" --out "$OUT" --seed "${SEED:-20100}" --resolution "$RES" \
    --reference-samples 512 --sequence "$FRAMES" --no-progress
$PY scripts/evaluate_temporal.py --data "$OUT" --out "${EVAL_OUT:-docs/temporal_eval.json}"
