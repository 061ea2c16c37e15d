"""The language-model pipeline: corpus -> tokenizer and token sets -> train / evaluate.

Glue between corpora, tokenizer, data, model and the music-agnostic trainer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from musicgpt.corpus import corpora
from musicgpt.checkpoint import load_checkpoint
from musicgpt.config import MODES, ModelConfig, TokenizerConfig, TrainConfig, from_dict, to_dict
from musicgpt.data.tokens import LMBatches, TokenSet, encode_rows, eval_windows, make_evaluator
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT
from musicgpt.evaluation.ngram import NGram
from musicgpt.tokens.tokenizer import MusicTokenizer
from musicgpt.trainer import train

log = logging.getLogger(__name__)


def split_rows(corpus: str, root: Path | None = None) -> dict[str, list[dict]]:
    rows = corpora.load_manifest(corpus, root)
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for r in rows:
        out.setdefault(r["split"], []).append(r)
    if not out["train"] or not out["test"]:
        raise MusicGPTError(f"corpus {corpus} needs pieces in both splits; rebuild it")
    return out


def token_sets(tok: MusicTokenizer, corpus: str, root: Path | None = None) -> tuple[TokenSet, TokenSet]:
    """(train, test) token sets, encoded once and cached beside the corpus."""
    root = root or corpora.corpora_root()
    splits = split_rows(corpus, root)
    cache = root / corpus / ".cache" / "tokens"
    midi_of = lambda row: corpora.midi_path(corpus, row, root)  # noqa: E731
    return (encode_rows(tok, splits["train"], midi_of, cache),
            encode_rows(tok, splits["test"], midi_of, cache))


def make_tokenizer(cfg: TokenizerConfig, corpus: str, root: Path | None = None) -> MusicTokenizer:
    """A tokenizer whose control tokens name the corpus's styles and the eight modes."""
    splits = split_rows(corpus, root)
    styles = sorted({r["style"] for r in splits["train"] if r.get("style")})
    tok = MusicTokenizer.create(cfg, styles, MODES)
    if cfg.bpe_vocab_size:
        files = [corpora.midi_path(corpus, r, root) for r in splits["train"]]
        tok.train_bpe(cfg.bpe_vocab_size, files)
    return tok


def train_lm(corpus: str, out_dir: Path, model_cfg: dict, train_cfg: TrainConfig,
             tok_cfg: TokenizerConfig, resume: bool = False, progress: bool = True,
             root: Path | None = None) -> dict:
    """Train a model on `corpus`'s train split, evaluating on its test split."""
    if resume:
        _, meta, _ = load_checkpoint(out_dir / "last.pt")
        tok = MusicTokenizer.from_dict(meta["tokenizer"])
        mcfg = from_dict(ModelConfig, meta["model_config"])
    else:
        tok = make_tokenizer(tok_cfg, corpus, root)
        mcfg = ModelConfig(vocab_size=tok.vocab_size, **model_cfg)
    train_ts, test_ts = token_sets(tok, corpus, root)
    log.info("corpus %s: %d train pieces (%d tokens), %d test pieces (%d tokens)", corpus,
             len(train_ts), len(train_ts.ids), len(test_ts), len(test_ts.ids))
    batches = LMBatches(train_ts, tok, mcfg.context, train_cfg.batch_size,
                        transpose=train_cfg.transpose, control_drop=train_cfg.control_drop)
    evaluate = make_evaluator(test_ts, tok, mcfg.context, batch_size=train_cfg.batch_size,
                              max_batches=train_cfg.eval_batches)
    meta = {
        "model_config": to_dict(mcfg),
        "tokenizer": tok.to_dict(),
        "train_config": to_dict(train_cfg),
        "corpus": corpus,
        "train_pieces": len(train_ts),
        "train_tokens": int(len(train_ts.ids)),
        "labels": {"styles": list(tok.styles), "modes": list(tok.modes)},
    }
    torch.manual_seed(train_cfg.seed)
    model = GPT(mcfg)
    return train(model, train_cfg, batches, evaluate, out_dir, meta, resume=resume, progress=progress)


def load_model(path: Path, device: str = "cpu") -> tuple[torch.nn.Module, MusicTokenizer, dict]:
    """Model, tokenizer and metadata from one checkpoint file."""
    model, meta, _ = load_checkpoint(path, device=device)
    if "tokenizer" not in meta:
        raise MusicGPTError(f"{path} holds no tokenizer; is it a musicgpt language model?")
    return model, MusicTokenizer.from_dict(meta["tokenizer"]), meta


def evaluate_lm(model_path: Path, corpus: str, root: Path | None = None,
                ngram_orders: tuple[int, ...] = (2, 3, 4, 6, 8), batch_size: int = 16) -> dict:
    """Test-split figures for the model and for n-gram baselines on the very same windows."""
    model, tok, meta = load_model(model_path)
    train_ts, test_ts = token_sets(tok, corpus, root)
    context = model.cfg.context
    result = {"model": str(model_path), "corpus": corpus, "test_pieces": len(test_ts),
              "transformer": make_evaluator(test_ts, tok, context, batch_size)(model)}
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
    return result

