"""Training the classifier's heads: labelled pieces, batches of transposed crops, the frozen-body
probe and full fine-tuning, calibration. `classify.py` holds what a trained classifier needs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from musicgpt.theory import pitch_class as tonic_index
from musicgpt.checkpoint import load_checkpoint
from musicgpt.classifier.classify import (
    Classifier, first_bars_ids, key_index, piece_features, piece_states,
)
from musicgpt.config import MODES, ClassifierTrainConfig
from musicgpt.corpus.corpora import work_of
from musicgpt.errors import MusicGPTError
from musicgpt.classifier.keyhead import KeyHead
from musicgpt.model import GPT
from musicgpt.tokens.tokenizer import MusicTokenizer
from musicgpt.trainer import resolve_device


def with_heads(model: GPT, n_style: int, cfg: ClassifierTrainConfig) -> tuple[GPT, KeyHead]:
    """A copy of `model`'s body with a fresh style head (or its own, with cfg.keep_style_head),
    and a fresh key head."""
    mcfg = dataclasses.replace(model.cfg, n_style=n_style, n_mode=0)
    torch.manual_seed(cfg.seed)
    new = GPT(mcfg)
    drop = ("mode_head",) if cfg.keep_style_head else ("style_head", "mode_head")
    if cfg.keep_style_head and model.cfg.n_style != n_style:
        raise MusicGPTError(f"--keep-style-head: the checkpoint's style head has {model.cfg.n_style} "
                            f"outputs, the corpus has {n_style} styles")
    body = {k: v for k, v in model.state_dict().items() if not k.startswith(drop)}
    missing, unexpected = new.load_state_dict(body, strict=False)
    assert not unexpected and all(k.startswith("style_head") for k in missing)
    head = KeyHead(mcfg.d_model, proj=cfg.key_proj, hidden=cfg.key_hidden, dropout=cfg.key_dropout,
                   n_context=n_style if cfg.key_style_input else 0)
    return new, head


# ---- labelled data ---------------------------------------------------------------------------
@dataclass
class Labelled:
    """Pieces as music token ids with their labels and how much each label is trusted."""

    ids: list[np.ndarray]
    style: np.ndarray  # (P,) index into styles, -1 unknown
    tonic: np.ndarray  # (P,) 0..11, -1 unknown
    mode: np.ndarray  # (P,) index into MODES, -1 unknown
    human_mode: np.ndarray  # (P,) bool: the mode label came from a person
    human_style: np.ndarray
    group: list[str]
    piece_ids: list[str]
    work: list[str] | None = None  # the work each piece belongs to (corpora.work_of); None: itself

    def subset(self, idx: Sequence[int]) -> Labelled:
        idx = list(idx)
        return Labelled([self.ids[i] for i in idx], self.style[idx], self.tonic[idx], self.mode[idx],
                        self.human_mode[idx], self.human_style[idx],
                        [self.group[i] for i in idx], [self.piece_ids[i] for i in idx],
                        None if self.work is None else [self.work[i] for i in idx])

    def __len__(self) -> int:
        return len(self.ids)


def labelled(ts, rows: Sequence[dict], styles: Sequence[str]) -> Labelled:
    """Join a data.TokenSet with its manifest rows (encode_rows may skip empty pieces)."""
    by_id = {r["id"]: r for r in rows}
    kept = [by_id[i] for i in ts.piece_ids]

    def tonic(r: dict) -> int:
        try:
            return tonic_index(r.get("tonic") or "")
        except MusicGPTError:
            return -1

    return Labelled(
        ids=[ts.piece(i).astype(np.int64) for i in range(len(ts))],
        style=np.array([styles.index(r["style"]) if r.get("style") in styles else -1 for r in kept]),
        tonic=np.array([tonic(r) for r in kept]),
        mode=np.array([MODES.index(r["mode"]) if r.get("mode") in MODES else -1 for r in kept]),
        human_mode=np.array([r.get("mode_source") == "human" for r in kept]),
        human_style=np.array([r.get("style_source") == "human" for r in kept]),
        group=[str(r.get("group") or r["id"]) for r in kept],
        piece_ids=[r["id"] for r in kept],
        work=[work_of(r) for r in kept],
    )


def source_of(piece_id: str) -> str:
    """The collection a piece comes from: the first part of its id."""
    return piece_id.split("/", 1)[0]


def hold_out(data: Labelled, fraction: float, seed: int) -> tuple[Labelled, Labelled]:
    """(fit, calibration): whole groups (tune families, masses) go to one side only."""
    groups = sorted(set(data.group))
    rng = np.random.default_rng(seed)
    rng.shuffle(groups)
    cal = set(groups[: max(1, int(round(fraction * len(groups))))]) if fraction > 0 else set()
    fit = [i for i, g in enumerate(data.group) if g not in cal]
    held = [i for i, g in enumerate(data.group) if g in cal]
    return data.subset(fit), data.subset(held)


class Batches:
    """Random crops of labelled pieces, transposed at token level, with loss weights."""

    def __init__(self, data: Labelled, tok: MusicTokenizer, cfg: ClassifierTrainConfig):
        self.data, self.tok, self.cfg = data, tok, cfg
        self.bar_id = tok.base.vocab["Bar_None"]
        self.starts = [np.flatnonzero(ids == self.bar_id) for ids in data.ids]
        table = tok.pitch_shift_table() if cfg.transpose else None
        self.table = None if table is None else (torch.from_numpy(table[0]), torch.from_numpy(table[1]))
        lo, hi = tok.cfg.pitch_range
        self.lo, self.hi = lo, hi - 1
        # pieces drawn with weight count(style) ** -0.5: folk tunes outnumber cacce 1000 to 1, and
        # macro-F1 needs the rare styles seen; full balancing would replay a 2-piece style to death.
        # With style_balance "style+source", the count is of (style, collection) cells, so that a
        # style's small repertoire (trecento mass movements beside Palestrina's masses) is seen too.
        if cfg.style_balance not in ("style", "style+source"):
            raise MusicGPTError(f"style_balance is 'style' or 'style+source', not {cfg.style_balance!r}")
        cells = data.style if cfg.style_balance == "style" else np.array(
            [f"{s}|{source_of(p)}" for s, p in zip(data.style, data.piece_ids)])
        _, inv, counts = np.unique(cells, return_inverse=True, return_counts=True)
        self.weights = torch.from_numpy(counts[inv] ** -0.5)

    def _shift(self, ids: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, int]:
        """Transpose by k in -6..5 (or k +- 12 when that stays in range); (ids, k)."""
        pitch_of_id, id_of_pitch = self.table
        pitch = pitch_of_id[ids]
        played = pitch[pitch >= 0]
        if not len(played):
            return ids, 0
        k = int(torch.randint(-6, 6, (1,), generator=gen))
        for cand in (k, k - 12, k + 12, 0):
            if played.min() + cand >= self.lo and played.max() + cand <= self.hi:
                k = cand
                break
        moved = id_of_pitch[(pitch + k).clamp(0, 127)]
        return torch.where(pitch >= 0, moved, ids), k

    def __call__(self, gen: torch.Generator) -> dict[str, torch.Tensor | list]:
        pick = torch.multinomial(self.weights, self.cfg.batch_size, replacement=True,
                                 generator=gen).tolist()
        chunks, style, key, ws, wk = [], [], [], [], []
        for i in pick:
            ids = torch.from_numpy(self.data.ids[i])
            st = self.starts[i]
            s = int(st[torch.randint(len(st), (1,), generator=gen)]) if len(st) else 0
            # a crop that starts at bar 1 half the time, so openings (the --bars use) are seen
            if torch.rand(1, generator=gen) < 0.5:
                s = 0
            crop = ids[s : s + self.cfg.window - 1]
            k = 0
            if self.table is not None:
                crop, k = self._shift(crop, gen)
            chunks.append(crop.numpy())
            d = self.data
            style.append(int(d.style[i]))
            t, m = int(d.tonic[i]), int(d.mode[i])
            key.append(key_index((t + k) % 12, m) if t >= 0 and m >= 0 else -1)
            ws.append(1.0 if d.human_style[i] else self.cfg.derived_style_weight)
            wk.append(1.0 if d.human_mode[i] else self.cfg.derived_mode_weight)
        return {"chunks": chunks, "style": torch.tensor(style), "key": torch.tensor(key),
                "w_style": torch.tensor(ws), "w_key": torch.tensor(wk)}


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
    style = clf.model.style_head(mean)
    return (_weighted_ce(style, b["style"], b["w_style"])
            + _weighted_ce(clf.key_logits(style, mass, state), b["key"], b["w_key"]))


def _lr_factor(step: int, cfg: ClassifierTrainConfig) -> float:
    """Linear warmup, then cosine decay to a tenth."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * frac))


def _on(device: torch.device, b: dict) -> dict:
    """The batch's label and weight tensors on `device` (the crops stay numpy ids)."""
    return {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}


def _fine_tune(clf: Classifier, batches: Batches, cfg: ClassifierTrainConfig, gen: torch.Generator,
               on_log: Callable[[dict], None] | None) -> None:
    """Body and heads trained together, one batch of crops (one window each) per step."""
    device = next(clf.model.parameters()).device
    heads = [p for n, p in clf.model.named_parameters() if n.startswith("style_head")]
    heads += list(clf.key_head.parameters())
    body = [p for n, p in clf.model.named_parameters() if not n.startswith("style_head")]
    opt = torch.optim.AdamW([{"params": heads, "lr": cfg.head_lr, "base": cfg.head_lr},
                             {"params": body, "lr": cfg.lr, "base": cfg.lr}],
                            weight_decay=cfg.weight_decay)
    clf.model.train()
    clf.key_head.train()
    t0 = time.time()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = g["base"] * _lr_factor(step, cfg)
        b = _on(device, batches(gen))
        loss = _losses(clf, *clf.features(b["chunks"]), b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(heads + body, 1.0)
        opt.step()
        if on_log and (step % 20 == 0 or step == cfg.steps - 1):
            on_log({"step": step, "loss": float(loss.detach()), "s": round(time.time() - t0, 1)})


def probe_pieces(data: Labelled, cfg: ClassifierTrainConfig) -> list[int]:
    """Every piece with a human mode label, plus up to probe_per_style others of each style."""
    rng = np.random.default_rng(cfg.seed)
    human = data.human_mode & (data.mode >= 0)
    keep = set(np.flatnonzero(human).tolist())
    for st in np.unique(data.style):
        rest = np.flatnonzero((data.style == st) & ~human)
        keep.update(rng.permutation(rest)[: cfg.probe_per_style].tolist())
    return sorted(keep)


def _probe(clf: Classifier, batches: Batches, cfg: ClassifierTrainConfig, gen: torch.Generator,
           on_log: Callable[[dict], None] | None) -> None:
    """Heads on a frozen body. The body (eval mode, no dropout) reads whole pieces, each pass
    under a new random transposition. From one pass over a piece come two samples: the whole
    piece, and its first 4, 8 or 16 bars (a causal body's states for a prefix are the first
    states of the whole). The heads are then fitted on these cached features."""
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
                on_log({"pieces": n, "of": total, "features": "whole pieces", "s": round(time.time() - t0, 1)})
    device = next(clf.model.parameters()).device
    X = {k: torch.stack(v) if k in ("mean", "mass", "state") else torch.tensor(v, device=device)
         for k, v in feats.items()}
    # rare styles weigh more, as count ** -0.5 (Batches draws pieces the same way)
    _, inv, counts = np.unique(X["style"].cpu().numpy(), return_inverse=True, return_counts=True)
    X["w_style"] = X["w_style"] * torch.from_numpy(counts[inv] ** -0.5).float().to(device)
    heads = [p for n, p in clf.model.named_parameters() if n.startswith("style_head")]
    heads += list(clf.key_head.parameters())
    opt = torch.optim.AdamW(heads, lr=cfg.head_lr, weight_decay=0.05)
    clf.key_head.train()
    N = len(X["key"])
    for it in range(cfg.probe_iters):
        for g in opt.param_groups:
            g["lr"] = cfg.head_lr * 0.5 * (1 + math.cos(math.pi * it / cfg.probe_iters))
        b = torch.randint(N, (min(cfg.probe_batch, N),), generator=gen).to(device)
        loss = _losses(clf, X["mean"][b], X["mass"][b], X["state"][b].float(),
                       {k: X[k][b] for k in ("style", "key", "w_style", "w_key")})
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_log and (it % 100 == 0 or it == cfg.probe_iters - 1):
            on_log({"probe_iter": it, "loss": float(loss.detach()), "s": round(time.time() - t0, 1)})
    clf.key_head.eval()


def train_heads(model: GPT, tok: MusicTokenizer, styles: Sequence[str], data: Labelled,
                cfg: ClassifierTrainConfig, meta: dict | None = None,
                on_log: Callable[[dict], None] | None = None) -> Classifier:
    """Fine-tune style and key heads on `model` (an LM body, or random weights with cfg.scratch)."""
    torch.manual_seed(cfg.seed)
    if cfg.window > model.cfg.context:  # a crop must fit the position table
        cfg = dataclasses.replace(cfg, window=model.cfg.context)
    if cfg.scratch:
        model = GPT(model.cfg)
    model, key_head = with_heads(model, len(styles), cfg)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MusicGPTError("--device cuda: no CUDA device is available; use --device cpu")
    model.to(device)
    key_head.to(device)
    fit, cal = hold_out(data, cfg.calib_fraction, cfg.seed)
    if not len(fit):
        raise MusicGPTError("no training pieces left after the calibration hold-out")
    batches = Batches(fit, tok, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    clf = Classifier(model, key_head, tok, tuple(styles), {"style": 1.0, "key": 1.0},
                     {**(meta or {}), "classifier_train_config": dataclasses.asdict(cfg)})
    t0 = time.time()
    if cfg.freeze:
        for name, p in model.named_parameters():  # the body only: the style head still learns
            p.requires_grad_(name.startswith("style_head") and not cfg.keep_style_head)
        _probe(clf, batches, cfg, gen, on_log)
    else:
        _fine_tune(clf, batches, cfg, gen, on_log)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    key_head.eval()
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


# ---- corpus pipeline -------------------------------------------------------------------------
def corpus_data(tok: MusicTokenizer, corpus: str, styles: Sequence[str] | None = None,
                root: Path | None = None) -> tuple[Labelled, Labelled, tuple[str, ...]]:
    """(train, test, styles) for a built corpus, through the LM's token caches."""
    from musicgpt.data.splits import split_rows, token_sets

    splits = split_rows(corpus, root)
    if styles is None:
        styles = sorted({r["style"] for r in splits["train"] if r.get("style")})
    train_ts, test_ts = map(token_sets(tok, corpus, root).get, ("train", "test"))
    return (labelled(train_ts, splits["train"], styles), labelled(test_ts, splits["test"], styles),
            tuple(styles))


def train_classifier(init: Path, corpus: str, cfg: ClassifierTrainConfig, root: Path | None = None,
                     on_log: Callable[[dict], None] | None = None) -> tuple[Classifier, Labelled]:
    """Heads fine-tuned from the LM checkpoint `init` on `corpus`'s train split; (clf, test)."""
    lm, meta, _ = load_checkpoint(init)
    if "tokenizer" not in meta:
        raise MusicGPTError(f"{init} holds no tokenizer; is it a musicgpt language model?")
    tok = MusicTokenizer.from_dict(meta["tokenizer"])
    if tok.uses_bpe:  # merged tokens hide the notes the key head reads back
        raise MusicGPTError(f"{init} uses a BPE tokenizer; the key head needs plain REMI or TSD "
                            "tokens: train the LM without --bpe")
    train, test, styles = corpus_data(tok, corpus, None, root)
    if cfg.keep_style_head:
        if not cfg.freeze:
            raise MusicGPTError("--keep-style-head goes with --freeze (only the key head is fitted)")
        had = tuple(meta.get("classifier", {}).get("styles", ()))
        if had != tuple(styles):
            raise MusicGPTError(f"--keep-style-head: {init} has no style head for this corpus's styles "
                                f"({', '.join(styles)}); train one with --unfreeze first")
    keep = {k: meta[k] for k in ("corpus", "train_config", "metrics", "labels") if k in meta}
    clf = train_heads(lm, tok, styles, train, cfg,
                      {**keep, "init": str(init), "classifier_corpus": corpus}, on_log)
    return clf, test
