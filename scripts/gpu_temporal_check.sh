#!/usr/bin/env bash
# The temporal step's cost on a GPU machine (issue 12): the filter runs on the CPU (numpy, in
# Blender too), the network on the GPU. One run, ~3 minutes:
#   1. python -m benchmarks.temporal 1920x1080 on the machine's CPU (ONNX Runtime's CPU
#      inference and the filter in the same run);
#   2. scripts/gpu_check.sh's inference section: the bundled models in PyTorch on CUDA (the GPU
#      machine has no onnxruntime-gpu), for the filter's share of a GPU frame.
#
#   bash scripts/gpu_temporal_check.sh [OUT_DIR]        (default: benchmarks/results)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-benchmarks/results}
PY=${PY:-python3}
mkdir -p "$OUT_DIR"
{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    echo "CPU: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
    "$PY" -m benchmarks.temporal 1920x1080 --reps 7
} 2>&1 | tee "$OUT_DIR/temporal-gpu-machine-$(date +%F).txt"
bash scripts/gpu_check.sh "$OUT_DIR" --sections inference
