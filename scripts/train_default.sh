#!/usr/bin/env bash
# Reproduce the shipped model, musicgpt/weights/default.pt, on the CPU:
#   1. build the corpora it learns from (cached: a rebuild only parses changed sources);
#   2. pre-train the language model on the train split of $CORPUS;
#   3. fit the style and key heads on the pooled hidden states with the body frozen (a linear
#      probe), so continuation keeps the pre-trained body unchanged;
#   4. export fp16 weights into the package and write the model card.
# Usage: bash scripts/train_default.sh            (settings below; each can be overridden by env)
set -euo pipefail
cd "$(dirname "$0")/.."

CORPUS=${CORPUS:-bach-chorales}      # what the language model learns from
CLF_CORPUS=${CLF_CORPUS:-all}        # what the heads learn from
STEPS=${STEPS:-1200}
CLF_PASSES=${CLF_PASSES:-2}
RUN=${RUN:-runs/default}
LM_FLAGS=${LM_FLAGS:---context 512 --layers 4 --heads 4 --d-model 256 --dropout 0.1 --batch-size 8 --lr 1e-3 --warmup 100 --eval-every 200 --eval-batches 25 --seed 0}

musicgpt corpus build "$CORPUS"
[[ "$CLF_CORPUS" == "$CORPUS" ]] || musicgpt corpus build "$CLF_CORPUS"
musicgpt train --corpus "$CORPUS" --out "$RUN/lm" --steps "$STEPS" $LM_FLAGS
OMP_NUM_THREADS=1 musicgpt train-classifier --init "$RUN/lm/best.pt" --corpus "$CLF_CORPUS" --out "$RUN/clf" \
    --freeze --passes "$CLF_PASSES" --half
python scripts/model_card.py --run "$RUN" --lm-corpus "$CORPUS" --clf-corpus "$CLF_CORPUS" \
    --install musicgpt/weights/default.pt
