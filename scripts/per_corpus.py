"""Test bits/note of one or more language models on each corpus's test split, beside a modified
Kneser-Ney n-gram fitted on that corpus's train split (the same tokens: each model's own).

    python scripts/per_corpus.py --model musicgpt/weights/default.pt --model runs/chorale/best.pt \\
        --corpus bach-chorales palestrina folk --out docs/per_corpus.json

Each model is scored without control tokens (the figure comparable with the n-gram) and with the
piece's controls. The n-gram is fitted per corpus and per tokenizer, so a model trained on a
union is compared with a baseline that saw only that corpus's train split (its own training data
includes the other corpora too; that is the point of one model for every style).
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from pathlib import Path

from musicgpt.atomic import write_text_atomic
from musicgpt.data.batches import eval_windows, make_evaluator
from musicgpt.data.splits import token_sets
from musicgpt.evaluation.kneser_ney import KneserNey
from musicgpt.lm import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", required=True, help="a checkpoint (repeatable)")
    ap.add_argument("--label", action="append", default=[],
                    help="a name for each --model in the tables, in the same order (default: its path)")
    ap.add_argument("--corpus", nargs="+", required=True, help="built corpora to score on")
    ap.add_argument("--order", type=int, default=8, help="Kneser-Ney order")
    ap.add_argument("--kn-max-tokens", type=int, default=0, help="skip the n-gram on corpora whose "
                    "train split has more tokens than this (pure-Python counting of millions of "
                    "8-grams takes long); 0: never skip")
    ap.add_argument("--out", type=Path, help="write the results as JSON here")
    args = ap.parse_args()
    if len(args.label) > len(args.model):
        ap.error("more --label than --model")
    results: dict[str, dict] = {}
    models = {str(p): load_model(p) for p in args.model}
    kn_cache: dict[tuple[str, str], dict] = {}
    for corpus in args.corpus:
        row: dict[str, dict] = {}
        for name, (model, tok, _) in models.items():
            t0 = time.perf_counter()
            sets = token_sets(tok, corpus)
            test, train = sets["test"], sets["train"]
            ctx = model.cfg.context
            bare = make_evaluator(test, tok, ctx, with_controls=False)(model)
            led = make_evaluator(test, tok, ctx)(model)
            key = (corpus, json.dumps(tok.to_dict()["config"], sort_keys=True) + str(tok.vocab_size))
            skip = args.kn_max_tokens and len(train.ids) > args.kn_max_tokens
            if key not in kn_cache and not skip:
                kn = KneserNey(args.order, tok.vocab_size).fit(eval_windows(train, tok, ctx, False))
                kn_cache[key] = kn.score(eval_windows(test, tok, ctx, False), tok.notes_per_id())
            kn_bits = kn_cache[key]["bits_per_note"] if key in kn_cache else None
            row[name] = {"bits_per_note": bare["bits_per_note"], "with_controls": led["bits_per_note"],
                         "kn_bits_per_note": kn_bits,
                         "ratio_to_kn": bare["bits_per_note"] / kn_bits if kn_bits else None,
                         "train_tokens": int(len(train.ids)), "test_pieces": len(test),
                         "seconds": round(time.perf_counter() - t0, 1)}
            kn_text = (f"KN-{args.order} {kn_bits:.3f}, ratio {row[name]['ratio_to_kn']:.3f}" if kn_bits
                       else f"KN-{args.order} not fitted ({len(train.ids)} train tokens)")
            print(f"{corpus:<14} {name}: {bare['bits_per_note']:.3f} bits/note (with controls "
                  f"{led['bits_per_note']:.3f}), {kn_text}", flush=True)
        results[corpus] = row
    if args.out:
        meta = {"date": str(datetime.date.today()), "machine": f"{platform.machine()}, {platform.node()}",
                "command": "python scripts/per_corpus.py " + " ".join(
                    [f"--model {m}" for m in args.model] + [f"--label '{lab}'" for lab in args.label]
                    + ["--corpus", *args.corpus]
                    + [f"--order {args.order}", f"--kn-max-tokens {args.kn_max_tokens}"]),
                "kn_order": args.order,
                "labels": {str(m): lab for m, lab in zip(args.model, args.label)}}
        write_text_atomic(args.out, json.dumps({"meta": meta, "results": results}, indent=2))


if __name__ == "__main__":
    main()
