#!/usr/bin/env bash
# Does MidiTok's BPE help? Train the same small model for the same steps on bach-chorales with
# and without BPE, then compare test bits/note and tokens/note (bits/note is comparable across
# vocabularies; bits/token is not). Transposition is off in both runs, because token-level
# transposition is not possible on BPE ids.
# Usage: bash experiments/bench_bpe.sh [STEPS] [BPE_VOCAB]   -> runs/bpe/*.json
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-400}
VOCAB=${2:-1000}
FLAGS="--context 256 --layers 2 --heads 4 --d-model 128 --dropout 0.1 --batch-size 8 --transpose 0 \
  --eval-every $STEPS --eval-batches 10 --seed 0 --no-progress"
mkdir -p runs/bpe
musicgpt train --corpus bach-chorales --out runs/bpe/plain --steps "$STEPS" $FLAGS > /dev/null
musicgpt train --corpus bach-chorales --out runs/bpe/bpe --steps "$STEPS" --bpe "$VOCAB" $FLAGS > /dev/null
for r in plain bpe; do
  musicgpt evaluate --model runs/bpe/$r/best.pt --corpus bach-chorales --json > runs/bpe/$r.json
done
python - "$STEPS" "$VOCAB" <<'PY'
import json, sys
print(f"steps {sys.argv[1]}, BPE vocabulary {sys.argv[2]}")
print("| tokenizer | vocab | tokens/note | bits/token | bits/note | best n-gram bits/note |")
print("|---|---|---|---|---|---|")
for r in ("plain", "bpe"):
    d = json.load(open(f"runs/bpe/{r}.json"))
    t = d["transformer"]; g = d["ngram"][d["best_ngram"]]
    vocab = json.load(open(f"runs/bpe/{r}/config.json"))["model_config"]["vocab_size"]
    print(f"| REMI{' + BPE' if r == 'bpe' else ''} | {vocab} | {t['tokens_per_note']:.2f} | "
          f"{t['bits_per_token']:.3f} | {t['bits_per_note']:.3f} | {g['bits_per_note']:.3f} ({d['best_ngram']}) |")
PY
