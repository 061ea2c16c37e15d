"""The language-model pipeline: corpus -> tokenizer and token sets -> train / evaluate.

Glue between corpora, tokenizer, data, model and the music-agnostic trainer.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from musicgpt import corpus as corpora
from musicgpt.checkpoint import load_checkpoint
from musicgpt.config import (
    MODES,
    SHIPPED_MODEL,
    ModelConfig,
    TokenizerConfig,
    TrainConfig,
    from_dict,
    shipped,
    to_dict,
)
from musicgpt.data.batches import LMBatches, make_evaluator
from musicgpt.data.splits import split_rows, token_sets
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT
from musicgpt.tokens.tokenizer import MusicTokenizer
from musicgpt.trainer import train

log = logging.getLogger(__name__)


def make_tokenizer(cfg: TokenizerConfig, corpus: str, root: Path | None = None) -> MusicTokenizer:
    """A tokenizer whose control tokens name the corpus's styles and the eight modes (and, with
    `cfg.texture_controls`, the twelve tonics and one to eight voices)."""
    splits = split_rows(corpus, root)
    styles = sorted({r["style"] for r in splits["train"] if r.get("style")})
    tok = MusicTokenizer.create(cfg, styles, MODES, texture_controls=cfg.texture_controls)
    if cfg.bpe_vocab_size:
        files = [corpora.midi_path(corpus, r, root) for r in splits["train"]]
        tok.train_bpe(cfg.bpe_vocab_size, files)
    return tok


def train_lm(corpus: str, out_dir: Path, model_cfg: dict, train_cfg: TrainConfig,
             tok_cfg: TokenizerConfig, resume: bool = False, progress: bool = True,
             root: Path | None = None) -> dict:
    """Train a model on `corpus`'s train split, keeping the checkpoint best on validation."""
    if resume:
        _, meta, _ = load_checkpoint(out_dir / "last.pt")
        tok = MusicTokenizer.from_dict(meta["tokenizer"])
        mcfg = from_dict(ModelConfig, meta["model_config"])
    else:
        tok = make_tokenizer(tok_cfg, corpus, root)
        mcfg = ModelConfig(vocab_size=tok.vocab_size, **model_cfg)
    sets = token_sets(tok, corpus, root, valid_share=train_cfg.valid_share)
    train_ts, valid_ts = sets["train"], sets["valid"]
    log.info("corpus %s: %d train pieces (%d tokens), %d validation pieces (%d tokens); test not read",
             corpus, len(train_ts), len(train_ts.ids), len(valid_ts), len(valid_ts.ids))
    batches = LMBatches(train_ts, tok, mcfg.context, train_cfg.batch_size, transpose=train_cfg.transpose,
                        control_drop=train_cfg.control_drop, windows=train_cfg.windows,
                        balance=train_cfg.balance)
    # checkpoints are chosen on validation; `evaluate` reports on test, which training never reads
    evaluate = make_evaluator(valid_ts, tok, mcfg.context, batch_size=train_cfg.batch_size,
                              max_batches=train_cfg.eval_batches)
    meta = {
        "model_config": to_dict(mcfg),
        "tokenizer": tok.to_dict(),
        "train_config": to_dict(train_cfg),
        "corpus": corpus,
        "train_pieces": len(train_ts),
        "valid_pieces": len(valid_ts),
        "train_tokens": int(len(train_ts.ids)),
        "labels": {"styles": list(tok.styles), "modes": list(tok.modes)},
    }
    torch.manual_seed(train_cfg.seed)
    model = GPT(mcfg)
    return train(model, train_cfg, batches, evaluate, out_dir, meta, resume=resume, progress=progress)


def load_model(path: str | Path | None = None, device: str = "cpu"
               ) -> tuple[torch.nn.Module, MusicTokenizer, dict]:
    """Model, tokenizer and metadata from one checkpoint file; by default the shipped model."""
    path = shipped(SHIPPED_MODEL) if path is None else Path(path)
    model, meta, extra = load_checkpoint(path, device=device)
    if "tokenizer" not in meta:
        raise MusicGPTError(f"{path} holds no tokenizer; is it a musicgpt language model?")
    tok = checked_tokenizer(meta["tokenizer"], model.cfg.vocab_size, path)
    # heads stored beside the body (the shipped default.pt has them): continuation reads the
    # header's key with its key head (steering.model_key_finder)
    model.stored_heads = (meta.get("classifier"), extra.get("heads"))
    return model, tok, meta


def checked_tokenizer(data: object, vocab_size: int, path: str | Path) -> MusicTokenizer:
    """The tokenizer a checkpoint carries, refused with one line when it cannot be built or its
    vocabulary is not the model's (the model would read every id as another token)."""
    try:
        tok = MusicTokenizer.from_dict(data)  # type: ignore[arg-type]
    except MusicGPTError:
        raise
    except Exception as e:  # an unknown kind, a missing or mistyped field
        raise MusicGPTError(f"{path} is a damaged musicgpt checkpoint: its tokenizer cannot be built "
                            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})") from None
    if tok.vocab_size != vocab_size:
        raise MusicGPTError(f"{path} is a damaged musicgpt checkpoint: its tokenizer has {tok.vocab_size} "
                            f"tokens but its model reads {vocab_size}")
    return tok
