"""Training the classifier's heads on an LM body: full fine-tuning on batches of transposed crops,
or the frozen-body probe on cached features of whole pieces; then calibration. Both drive the
trainer's one loop (musicgpt.trainer.run_steps).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from musicgpt.checkpoint import load_checkpoint
from musicgpt.classifier.classify import Classifier
from musicgpt.classifier.data import Batches, Labelled, corpus_data, hold_out, probe_pieces
from musicgpt.classifier.features import first_bars_ids, piece_features, piece_states
from musicgpt.classifier.heads import Heads, key_index
from musicgpt.config import ClassifierTrainConfig
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT
from musicgpt.tokens.tokenizer import MusicTokenizer
from musicgpt.trainer import Schedule, resolve_device, run_steps

STYLE_HEAD = "style_head."


def new_heads(model: GPT, n_style: int, cfg: ClassifierTrainConfig,
              heads_state: dict[str, torch.Tensor] | None = None) -> tuple[GPT, Heads]:
    """A copy of `model`'s body and fresh heads; with cfg.keep_style_head, the style head is the
    one in `heads_state` (a trained classifier's)."""
    torch.manual_seed(cfg.seed)
    body = GPT(model.cfg)
    body.load_state_dict(model.state_dict())
    heads = Heads(n_style, {"d_model": model.cfg.d_model, "proj": cfg.key_proj, "hidden": cfg.key_hidden,
                            "dropout": cfg.key_dropout, "n_context": n_style if cfg.key_style_input else 0})
    if cfg.keep_style_head:
        kept = {k[len(STYLE_HEAD):]: v.float() for k, v in (heads_state or {}).items()
                if k.startswith(STYLE_HEAD)}
        if not kept:
            raise MusicGPTError("`keep_style_head`: the checkpoint has no style head to keep")
        if kept["weight"].size(0) != n_style:
            raise MusicGPTError(f"`keep_style_head`: the checkpoint's style head has "
                                f"{kept['weight'].size(0)} outputs, the corpus has {n_style} styles")
        heads.style_head.load_state_dict(kept)
    return body, heads


def _weighted_ce(logits: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    valid = y >= 0
    if not valid.any():
        return logits.sum() * 0.0
    loss = F.cross_entropy(logits[valid], y[valid], reduction="none")
    return (loss * w[valid]).sum() / w[valid].sum()


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature minimising NLL on held-out pieces (grid search on a log scale)."""
    valid = y >= 0
    if valid.sum() < 2:
        return 1.0
    z, y = torch.as_tensor(logits[valid]).double(), torch.as_tensor(y[valid])
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))
    nll = [float(F.cross_entropy(z / t, y)) for t in grid]
    return float(grid[int(np.argmin(nll))])


def _losses(clf: Classifier, mean: torch.Tensor, mass: torch.Tensor, state: torch.Tensor,
            b: dict) -> torch.Tensor:
    style, key = clf.heads(mean, mass, state)
    return _weighted_ce(style, b["style"], b["w_style"]) + _weighted_ce(key, b["key"], b["w_key"])


def _on(device: torch.device, b: dict) -> dict:
    """The batch's label and weight tensors on `device` (the crops stay numpy ids)."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}


def _fine_tune(clf: Classifier, batches: Batches, cfg: ClassifierTrainConfig, gen: torch.Generator,
               on_log: Callable[[dict], None] | None) -> None:
    """Body and heads trained together, one batch of crops (one window each) per step; both
    learning rates decay to a tenth."""
    device = next(clf.model.parameters()).device
    heads, body = list(clf.heads.parameters()), list(clf.model.parameters())
    opt = torch.optim.AdamW([{"params": heads, "lr": cfg.head_lr}, {"params": body, "lr": cfg.lr}],
                            weight_decay=cfg.weight_decay)
    schedule = Schedule(cfg.steps, cfg.warmup, ((cfg.head_lr, cfg.head_lr / 10), (cfg.lr, cfg.lr / 10)))
    clf.model.train()
    clf.heads.train()
    t0 = time.time()

    def loss_at(_: int) -> torch.Tensor:
        b = _on(device, batches(gen))
        return _losses(clf, *clf.features(b["chunks"]), b)

    def log(done: int, _: float, loss: torch.Tensor) -> None:
        if on_log and ((done - 1) % 20 == 0 or done == cfg.steps):
            on_log({"step": done - 1, "loss": float(loss), "s": round(time.time() - t0, 1)})

    run_steps(opt, schedule, loss_at, heads + body, grad_clip=1.0, after=log)


def _probe(clf: Classifier, batches: Batches, cfg: ClassifierTrainConfig, gen: torch.Generator,
           on_log: Callable[[dict], None] | None) -> None:
    """Heads on a frozen body, fitted on cached features (_probe_features); the heads' learning
    rate decays from head_lr to 0 by a cosine, without warmup."""
    fit_cached(clf, _probe_features(clf, batches, cfg, gen, on_log), cfg, gen, on_log)


def fit_cached(clf: Classifier, X: dict[str, torch.Tensor], cfg: ClassifierTrainConfig,
               gen: torch.Generator, on_log: Callable[[dict], None] | None = None) -> None:
    """Fit clf's heads (those whose parameters require grad) on cached features `X`: "mean",
    "mass", "state" and the labels "style", "key" with their weights "w_style", "w_key", as
    _probe_features makes them; cfg.probe_iters AdamW steps of cfg.probe_batch pieces."""
    t0 = time.time()
    device = next(clf.model.parameters()).device
    heads = list(clf.heads.parameters())
    opt = torch.optim.AdamW(heads, lr=cfg.head_lr, weight_decay=0.05)
    clf.heads.train()
    N = len(X["key"])

    def loss_at(_: int) -> torch.Tensor:
        b = torch.randint(N, (min(cfg.probe_batch, N),), generator=gen).to(device)
        return _losses(clf, X["mean"][b], X["mass"][b], X["state"][b].float(),
                       {k: X[k][b] for k in ("style", "key", "w_style", "w_key")})

    def log(done: int, _: float, loss: torch.Tensor) -> None:
        if on_log and ((done - 1) % 100 == 0 or done == cfg.probe_iters):
            on_log({"probe_iter": done - 1, "loss": float(loss), "s": round(time.time() - t0, 1)})

    run_steps(opt, Schedule(cfg.probe_iters, 0, ((cfg.head_lr, 0.0),)), loss_at, heads,
              grad_clip=0.0, after=log)
    clf.heads.eval()


def _probe_features(clf: Classifier, batches: Batches, cfg: ClassifierTrainConfig,
                    gen: torch.Generator, on_log: Callable[[dict], None] | None) -> dict[str, torch.Tensor]:
    """Features and labels from the frozen body (eval mode, no dropout) reading whole pieces, each
    pass under a new random transposition. From one pass over a piece come two samples: the whole
    piece, and its first 4, 8 or 16 bars (a causal body's states for a prefix are the first
    states of the whole)."""
    clf.model.eval()
    data = batches.data
    pick = probe_pieces(data, cfg)
    rng = np.random.default_rng(cfg.seed)
    t0 = time.time()
    feats: dict[str, list] = {k: [] for k in ("mean", "mass", "state", "style", "key", "w_style", "w_key")}
    total = cfg.probe_passes * len(pick)
    with torch.no_grad():
        for n in range(0, total, 8):
            idx = [pick[j % len(pick)] for j in range(n, min(n + 8, total))]
            pieces, shifts = [], []
            for i in idx:
                ids, k = torch.from_numpy(data.ids[i]), 0
                if batches.table is not None:
                    ids, k = batches._shift(ids, gen)
                pieces.append(ids.numpy())
                shifts.append(k)
            states = piece_states(clf.model, pieces, clf.bar_id, clf.tok.bos_id, clf.tok.pad_id)
            for i, ids, h, k in zip(idx, pieces, states, shifts):
                prefix = first_bars_ids(ids, clf.bar_id, int(rng.choice([4, 8, 16])))
                for part in ([ids, prefix] if len(prefix) < len(ids) else [ids]):
                    mean, mass, state = piece_features([h[: len(part)]], [part], clf.tables)
                    feats["mean"].append(mean[0])
                    feats["mass"].append(mass[0])
                    feats["state"].append(state[0].half())  # fp16 halves the cache
                    t, m = int(data.tonic[i]), int(data.mode[i])
                    feats["key"].append(key_index((t + k) % 12, m) if t >= 0 and m >= 0 else -1)
                    feats["style"].append(int(data.style[i]))
                    feats["w_style"].append(1.0 if data.human_style[i] else cfg.derived_style_weight)
                    feats["w_key"].append(1.0 if data.human_mode[i] else cfg.derived_mode_weight)
            if on_log and (n // 8) % 25 == 0:
                on_log({"pieces": n, "of": total, "features": "whole pieces",
                        "s": round(time.time() - t0, 1)})
    device = next(clf.model.parameters()).device
    X = {k: torch.stack(v) if k in ("mean", "mass", "state") else torch.tensor(v, device=device)
         for k, v in feats.items()}
    # rare styles weigh more, as count ** -0.5 (Batches draws pieces the same way)
    _, inv, counts = np.unique(X["style"].cpu().numpy(), return_inverse=True, return_counts=True)
    X["w_style"] = X["w_style"] * torch.from_numpy(counts[inv] ** -0.5).float().to(device)
    return X


def train_heads(model: GPT, tok: MusicTokenizer, styles: Sequence[str], data: Labelled,
                cfg: ClassifierTrainConfig, meta: dict | None = None,
                on_log: Callable[[dict], None] | None = None,
                heads_state: dict[str, torch.Tensor] | None = None) -> Classifier:
    """Fine-tune style and key heads on `model` (an LM body, or random weights with cfg.scratch);
    `heads_state` holds the style head that cfg.keep_style_head keeps."""
    torch.manual_seed(cfg.seed)
    if cfg.window > model.cfg.context:  # a crop must fit the position table
        cfg = dataclasses.replace(cfg, window=model.cfg.context)
    if cfg.scratch:
        model = GPT(model.cfg)
    model, heads = new_heads(model, len(styles), cfg, heads_state)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MusicGPTError("`device` cuda: no CUDA device is available; use `device` cpu")
    model.to(device)
    heads.to(device)
    fit, cal = hold_out(data, cfg.calib_fraction, cfg.seed)
    if not len(fit):
        raise MusicGPTError("no training pieces left after the calibration hold-out")
    batches = Batches(fit, tok, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    clf = Classifier(model, heads, tok, tuple(styles), {"style": 1.0, "key": 1.0},
                     {**(meta or {}), "classifier_train_config": dataclasses.asdict(cfg)})
    t0 = time.time()
    if cfg.freeze:
        for p in model.parameters():
            p.requires_grad_(False)
        heads.style_head.requires_grad_(not cfg.keep_style_head)
        _probe(clf, batches, cfg, gen, on_log)
    else:
        _fine_tune(clf, batches, cfg, gen, on_log)
    model.requires_grad_(True)
    heads.requires_grad_(True)
    model.eval()
    heads.eval()
    if len(cal) > cfg.calib_max:
        cal = cal.subset(np.sort(np.random.default_rng(cfg.seed).permutation(len(cal))[: cfg.calib_max]))
    if len(cal):
        s, k = clf.logits_ids(cal.ids)
        keys = np.array([key_index(t, m) if t >= 0 and m >= 0 else -1
                         for t, m in zip(cal.tonic, cal.mode)])
        clf.temperature = {"style": fit_temperature(s.numpy(), cal.style),
                           "key": fit_temperature(k.numpy(), keys)}
    clf.meta["classifier"] = {"calibration_pieces": len(cal), "train_pieces": len(fit),
                              "train_seconds": round(time.time() - t0, 1)}
    return clf


def train_classifier(init: Path, corpus: str, cfg: ClassifierTrainConfig, root: Path | None = None,
                     on_log: Callable[[dict], None] | None = None) -> tuple[Classifier, Labelled]:
    """Heads fine-tuned from the LM checkpoint `init` on `corpus`'s train split; (clf, test)."""
    lm, meta, extra = load_checkpoint(init)
    if "tokenizer" not in meta:
        raise MusicGPTError(f"{init} holds no tokenizer; is it a musicgpt language model?")
    tok = MusicTokenizer.from_dict(meta["tokenizer"])
    if tok.uses_bpe:  # merged tokens hide the notes the key head reads back
        raise MusicGPTError(f"{init} uses a BPE tokenizer; the key head needs plain REMI or TSD "
                            "tokens: train the LM without --bpe")
    train, test, styles = corpus_data(tok, corpus, None, root)
    if cfg.keep_style_head:
        if not cfg.freeze:
            raise MusicGPTError("`keep_style_head` goes with `freeze` (only the key head is fitted)")
        had = tuple(meta.get("classifier", {}).get("styles", ()))
        if had != tuple(styles):
            raise MusicGPTError(f"`keep_style_head`: {init} has no style head for this corpus's styles "
                                f"({', '.join(styles)}); train one with --unfreeze first")
    keep = {k: meta[k] for k in ("corpus", "train_config", "metrics", "labels") if k in meta}
    clf = train_heads(lm, tok, styles, train, cfg,
                      {**keep, "init": str(init), "classifier_corpus": corpus}, on_log, extra["heads"])
    return clf, test
