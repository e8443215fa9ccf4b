#!/usr/bin/env bash
# Every CUDA path of the project, run once on a GPU machine (benchmarks/gpu.py): the bundled
# models' inference at 540p/1080p/4K in fp32, bf16, fp16 and torch.compile; the paper-size RAD;
# train-rad paired (and resumed), unpaired, train-crn and torchrun (NCCL) with bf16; an export.
#
#   bash scripts/gpu_check.sh [OUT_DIR]        (default: benchmarks/results)
#
# The GPU machine has torch but not OpenEXR: a cp312 OpenEXR wheel put in .gpuwhl/ (ignored by
# git) is installed from there first, with no network. Dry run without a GPU:
#   .venv/bin/python -m benchmarks.gpu --out /tmp/gpu --device cpu --quick
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-benchmarks/results}
PY=${PY:-python3}
if compgen -G ".gpuwhl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/gpu_site .gpuwhl/*.whl
    export PYTHONPATH=/tmp/gpu_site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
"$PY" -m benchmarks.gpu --out "$OUT_DIR" "${@:2}"
