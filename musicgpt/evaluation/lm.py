"""Test-split figures for a language model, beside n-gram baselines scored on the very same windows."""

from __future__ import annotations

from pathlib import Path

from musicgpt.data.batches import eval_windows, make_evaluator
from musicgpt.data.splits import token_sets
from musicgpt.evaluation.kneser_ney import KneserNey
from musicgpt.evaluation.ngram import NGram
from musicgpt.lm import load_model

KN_ORDER = 8


def evaluate_lm(model_path: Path, corpus: str, root: Path | None = None,
                ngram_orders: tuple[int, ...] = (2, 3, 4, 6, 8), batch_size: int = 16,
                kn_order: int = KN_ORDER) -> dict:
    """The model on the test split, with Witten-Bell n-grams of `ngram_orders` and a modified
    Kneser-Ney `kn_order`-gram fitted on the (whole manifest) train split."""
    model, tok, meta = load_model(model_path)
    sets = token_sets(tok, corpus, root)
    train_ts, test_ts = sets["train"], sets["test"]
    context = model.cfg.context
    result = {"model": str(model_path), "corpus": corpus, "test_pieces": len(test_ts),
              "transformer": make_evaluator(test_ts, tok, context, batch_size)(model),
              # the figure comparable with models that read no control tokens (the n-grams read them)
              "transformer_no_controls": make_evaluator(test_ts, tok, context, batch_size,
                                                        with_controls=False)(model)}
    test_windows = list(eval_windows(test_ts, tok, context))
    train_windows = list(eval_windows(train_ts, tok, context))
    notes = tok.notes_per_id()
    baselines = {}
    for n in ngram_orders:
        baselines[f"{n}-gram"] = NGram(n, tok.vocab_size).fit(train_windows).score(test_windows, notes)
    best = min(baselines, key=lambda k: baselines[k]["bits_per_note"])
    result["ngram"] = baselines
    result["best_ngram"] = best
    result["ratio_to_best_ngram"] = (result["transformer"]["bits_per_note"]
                                     / baselines[best]["bits_per_note"])
    if kn_order:
        kn = KneserNey(kn_order, tok.vocab_size).fit(train_windows).score(test_windows, notes)
        result["kneser_ney"] = {"order": kn_order, **kn}
        result["ratio_to_kneser_ney"] = result["transformer"]["bits_per_note"] / kn["bits_per_note"]
    return result
