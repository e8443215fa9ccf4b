#!/usr/bin/env bash
# Render again the temporal validation and held-out sets (data/ is not kept between sessions),
# cheapest first. Resumable: run it again after a stop; finished frames are skipped.
# On the 2-core VM (session 16): ~13 min per 128x64 set of 4 shots, ~25 min for the two 4-spp
# shots, ~10 min for the shadow table top, ~50-70 min per 256x128 held-out set of 4.
#   scripts/render_temporal_sets.sh [validation|heldout|eevee|all]   (default: validation)
# The commands of every set, with their seeds, are in scripts/temporal_heldout.sh; the 256x128
# and 512x256 validation sets and held-out sets A-D are there too (not rendered here).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
scenes() { "$PY" -m training make-scenes --no-progress --sequence 8 --reference-samples 512 "$@"; }
validation() {
    scenes --kinds street --count 6 --seed 20700 --resolution 128x64 --out data/temporal_val_street
    scenes --count 4 --seed 20200 --resolution 128x64 --out data/temporal_val
    scenes --kinds interior --count 4 --seed 20600 --resolution 128x64 --out data/temporal_val_interior
    scenes --kinds studio --count 4 --seed 20900 --resolution 128x64 --out data/temporal_val_studio
    scenes --kinds street,interior --count 2 --seed 21100 --resolution 256x128 --fast-samples 4 --out data/temporal_val_4spp
    scenes --kinds tabletop --count 1 --seed 20402 --resolution 256x128 --out data/temporal_val_shadow
}
heldout() {
    scenes --kinds street,interior --count 4 --seed 22300 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_e
    scenes --kinds street,interior --count 4 --seed 22500 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_f
    scenes --kinds street,interior --count 4 --seed 22700 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_g
    scenes --kinds street,interior --count 4 --seed 22900 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_h
    # Set I: rendered and evaluated once in session 19.
    scenes --kinds street,interior --count 4 --seed 23100 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_i
    # Set J: rendered and evaluated once in session 19.
    scenes --kinds street,interior --count 4 --seed 23300 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_j
    # Set K: rendered in sessions 19-20, evaluated once in session 20.
    scenes --kinds street,interior --count 4 --seed 23500 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_k
    # Set L: rendered in sessions 20-21, evaluated once in session 21.
    scenes --kinds street,interior --count 4 --seed 23700 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_l
    # Set M: rendered in sessions 21-22, evaluated once in session 22.
    scenes --kinds street,interior --count 4 --seed 23900 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_m
    # Set N: rendered in sessions 22-23, evaluated once in session 23.
    scenes --kinds street,interior --count 4 --seed 24100 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_n
    # Set O: clean renders (32 spp, 128x64), rendered and evaluated once in session 23.
    scenes --kinds street,interior --count 4 --seed 24300 --resolution 128x64 --fast-samples 32 --out data/temporal_heldout_o_clean
    # Set P: rendered in sessions 23-24, evaluated once in session 24.
    scenes --kinds street,interior --count 4 --seed 24500 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_p
    # Set R: rendered in sessions 24-25, evaluated once in session 25.
    scenes --kinds street,interior --count 4 --seed 25100 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_r
    # Set S: started in session 25 for the next filter change's once-only evaluation; not looked at.
    scenes --kinds street,interior --count 4 --seed 25300 --resolution 256x128 --fast-samples 4 --out data/temporal_heldout_s
}
# EEVEE frames (session 24): EEVEE at 16 render samples in software, ~1 min a 128x64 frame on
# this VM; the references are Cycles' as for every set. A development set with every kind, and
# held-out set Q (streets and interiors), evaluated once.
eevee() {
    scenes --fast-engine eevee --kinds street,interior,tabletop,studio --count 4 --seed 24700 --resolution 128x64 --fast-samples 16 --out data/temporal_eevee_dev
    scenes --fast-engine eevee --kinds street,interior --count 4 --seed 24900 --resolution 128x64 --fast-samples 16 --out data/temporal_heldout_q_eevee
}
case "${1:-validation}" in
    validation) validation ;;
    heldout) heldout ;;
    eevee) eevee ;;
    all) validation; heldout; eevee ;;
    *) echo "usage: $0 [validation|heldout|eevee|all]" >&2; exit 2 ;;
esac
# Then: scripts/sweep_temporal.py --data data/temporal_val data/temporal_val_street data/temporal_val_interior \
#   data/temporal_val_studio data/temporal_val_4spp data/temporal_val_shadow   (the 21 shots of session 16)
