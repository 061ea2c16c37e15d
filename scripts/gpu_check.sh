#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: the whole test suite (tests/test_cuda.py runs there instead of
# being skipped, and the end-to-end tests train on the GPU), the speed benchmark on the GPU, and
# the shipped language model's recipe (scripts/train_default.sh's LM step) trained on the GPU and
# evaluated. Needs the bach-chorales corpus built (musicgpt corpus build bach-chorales).
# Usage: bash scripts/gpu_check.sh [OUT_DIR]      (results in OUT_DIR, default runs/gpu)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT_DIR=${1:-runs/gpu}
mkdir -p "$OUT_DIR"
PY=${PYTHON:-python3}
LM_FLAGS="--context 512 --layers 4 --heads 4 --d-model 256 --dropout 0.1 --batch-size 8 --lr 1e-3 --warmup 100 --eval-every 200 --eval-batches 25 --seed 0"

nvidia-smi -L
$PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name())'
echo "== tests"
$PY -m pytest -q -p no:cacheprovider -rs 2>&1 | tail -6
echo "== benchmark, the shipped model's shape"
$PY scripts/bench_model.py --device cuda --gen-threads 1 --matmul-n 8192 --out "$OUT_DIR/bench.md" \
    --note "GPU run of scripts/gpu_check.sh" | tail -9
echo "== benchmark, batch 256"
$PY scripts/bench_model.py --device cuda --batch 256 --gen-lengths --matmul-n 8192 \
    --out "$OUT_DIR/bench.md" --note "GPU run of scripts/gpu_check.sh, batch 256" | tail -4
echo "== the shipped LM's recipe on the GPU"
start=$(date +%s)
$PY -m musicgpt train --corpus bach-chorales --out "$OUT_DIR/lm" --steps 1200 $LM_FLAGS --device cuda --no-progress
echo "train wall time: $(( $(date +%s) - start )) s"
tail -n 2 "$OUT_DIR/lm/metrics.jsonl"
$PY -m musicgpt evaluate --model "$OUT_DIR/lm/best.pt" --corpus bach-chorales 2>&1 | tail -12
echo "== the shipped classifier on the GPU and on the CPU (82 test chorales)"
$PY -m musicgpt evaluate-classifier --corpus bach-chorales --device cuda --no-progress
$PY -m musicgpt evaluate-classifier --corpus bach-chorales --device cpu --no-progress
