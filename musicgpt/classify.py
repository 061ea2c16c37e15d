"""Style and key (tonic + mode) prediction with heads on the pretrained causal transformer.

Input: `[BOS] + music tokens` (never the style/mode control tokens, which would give the answer).
A piece longer than the context is cut at bar lines into windows, each led by BOS, as the LM saw
them in pre-training. Hidden states are mean-pooled over every music position of every window:
in a causal model the last position's state is dominated by the last few bars it predicts from,
while the mean gathers evidence from the whole piece (and for a short prefix, from what is there).

Two heads read the pooled vector (GPT.style_head, GPT.mode_head):
- style: one logit per style label;
- key: one logit per (tonic, mode) pair, 12 x 8 = 96. Mode and tonic probabilities are its
  marginals. A joint head is used instead of separate mode and tonic heads because the mode of a
  piece is only defined relative to its tonic (the hard part, see DATA_NOTES), and because it
  answers "tonic + mode" directly with one calibrated distribution.

Transposition invariance is taught, not built in: training shifts every pitch token by a random
-6..+5 semitones and moves the tonic label with it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic
import torch
import torch.nn.functional as F

from musicgpt.baselines import PITCH_CLASSES, tonic_index
from musicgpt.checkpoint import load_checkpoint, save_checkpoint
from musicgpt.config import MODES, ModelConfig, from_dict, to_dict
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT
from musicgpt.tokenizer import MusicTokenizer

log = logging.getLogger(__name__)

KEY_LABELS: tuple[str, ...] = tuple(f"{t} {m}" for t in PITCH_CLASSES for m in MODES)  # t * 8 + m


def key_index(tonic: int, mode: int) -> int:
    return tonic * len(MODES) + mode


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """Fine-tuning settings for `musicgpt train-classifier`."""

    steps: int = 400
    batch_size: int = 16
    lr: float = 3e-4  # the body's learning rate when it is unfrozen
    head_lr: float = 3e-3
    weight_decay: float = 0.01
    warmup: int = 20
    freeze: bool = False  # True: linear probe, the body keeps its pre-trained weights
    scratch: bool = False  # True: same network and steps from random weights (the control)
    window: int = 256  # tokens per training crop, BOS included
    transpose: bool = True  # random -6..+5 semitone shift of pitch tokens, tonic label moved
    derived_mode_weight: float = 0.3  # key-loss weight of a derived (not human) mode label
    derived_style_weight: float = 1.0
    calib_fraction: float = 0.1  # train groups held out to fit the temperatures
    calib_max: int = 600  # at most this many of their pieces are scored (whole pieces are slow)
    probe_iters: int = 500  # full-batch head updates on the cached features of a frozen body
    seed: int = 0


# ---- token windows ---------------------------------------------------------------------------
def first_bars_ids(ids: np.ndarray, bar_id: int, bars: int | None) -> np.ndarray:
    """The tokens of the first `bars` bars (all of them for None)."""
    if bars is None:
        return ids
    starts = np.flatnonzero(ids == bar_id)
    return ids[: starts[bars]] if len(starts) > bars else ids


def windows(ids: np.ndarray, bar_id: int, size: int) -> list[np.ndarray]:
    """Cut a piece at bar lines into chunks of at most size tokens (a longer bar is split)."""
    cuts = [int(c) for c in np.flatnonzero(ids == bar_id) if c > 0] + [len(ids)]
    out, start = [], 0
    for prev, c in zip([0] + cuts, cuts):
        if c - start > size and prev > start:
            out.append(ids[start:prev])
            start = prev
        while c - start > size:
            out.append(ids[start : start + size])
            start += size
    if start < len(ids):
        out.append(ids[start:])
    return out


def pooled(model: GPT, chunks: Sequence[np.ndarray], owner: Sequence[int], n: int,
           bos_id: int, pad_id: int) -> torch.Tensor:
    """(n, C) mean hidden state over the music positions of all chunks owned by each of n pieces.

    chunks are music ids without BOS; owner[i] says which piece chunk i belongs to."""
    device = next(model.parameters()).device
    T = max(len(c) for c in chunks) + 1
    x = torch.full((len(chunks), T), pad_id, dtype=torch.long)
    for i, c in enumerate(chunks):
        x[i, 0] = bos_id
        x[i, 1 : len(c) + 1] = torch.as_tensor(c.astype(np.int64))
    lengths = torch.tensor([len(c) for c in chunks])
    # right padding needs no attention mask: a causal position never sees what follows it
    h = model.hidden_states(x.to(device))  # (B, T, C)
    pos = torch.arange(T, device=device)[None, :]
    valid = (pos >= 1) & (pos <= lengths.to(device)[:, None])  # music positions, BOS left out
    sums = (h * valid[..., None]).sum(1)  # (B, C)
    own = torch.as_tensor(list(owner), device=device)
    total = torch.zeros(n, h.size(-1), device=device, dtype=h.dtype).index_add_(0, own, sums)
    count = torch.zeros(n, device=device).index_add_(0, own, lengths.to(device).float())
    return total / count.clamp(min=1)[:, None]


# ---- a trained classifier --------------------------------------------------------------------
@dataclass
class Classifier:
    """A body with heads, its tokenizer, label vocabularies and calibration temperatures."""

    model: GPT
    tok: MusicTokenizer
    styles: tuple[str, ...]
    temperature: dict[str, float]
    meta: dict

    @property
    def bar_id(self) -> int:
        return self.tok.base.vocab["Bar_None"]

    @torch.no_grad()
    def logits_ids(self, pieces: Sequence[np.ndarray], batch_windows: int = 16
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """((P, n_style), (P, 96)) uncalibrated logits for pieces given as music token ids."""
        self.model.eval()
        size = self.model.cfg.context - 1
        chunks, owner = [], []
        for p, ids in enumerate(pieces):
            for c in windows(np.asarray(ids), self.bar_id, size):
                chunks.append(c)
                owner.append(p)
        C = self.model.cfg.d_model
        sums = torch.zeros(len(pieces), C)
        counts = torch.zeros(len(pieces))
        order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))  # less padding
        for s in range(0, len(order), batch_windows):
            sel = order[s : s + batch_windows]
            uniq = sorted({owner[i] for i in sel})
            local = [uniq.index(owner[i]) for i in sel]
            mean = pooled(self.model, [chunks[i] for i in sel], local, len(uniq),
                          self.tok.bos_id, self.tok.pad_id).cpu()
            n_tok = torch.zeros(len(uniq)).index_add_(
                0, torch.tensor(local), torch.tensor([float(len(chunks[i])) for i in sel]))
            idx = torch.tensor(uniq)
            sums.index_add_(0, idx, mean * n_tok[:, None])
            counts.index_add_(0, idx, n_tok)
        h = (sums / counts.clamp(min=1)[:, None]).to(next(self.model.parameters()).device)
        return self.model.style_head(h).cpu(), self.model.mode_head(h).cpu()

    def probabilities(self, pieces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """((P, n_style), (P, 12, 8)) calibrated probabilities."""
        s, k = self.logits_ids(pieces)
        ps = torch.softmax(s / self.temperature.get("style", 1.0), -1).numpy()
        pk = torch.softmax(k / self.temperature.get("key", 1.0), -1).numpy()
        return ps, pk.reshape(len(pieces), 12, len(MODES))

    def encode(self, score: symusic.Score, bars: int | None = None) -> np.ndarray:
        from musicgpt.midi_io import assign_voice_programs

        ids = np.asarray(self.tok.encode(assign_voice_programs(score)), dtype=np.int64)
        ids = first_bars_ids(ids, self.bar_id, bars)
        if len(ids) == 0:
            raise MusicGPTError("the score gives no tokens to classify")
        return ids

    def classify_score(self, score: symusic.Score, bars: int | None = None, top: int = 3) -> dict:
        """Top labels with probabilities for style, mode, tonic and tonic + mode."""
        ps, pk = self.probabilities([self.encode(score, bars)])
        return describe(ps[0], pk[0], self.styles, top)


def describe(ps: np.ndarray, pk: np.ndarray, styles: Sequence[str], top: int = 3) -> dict:
    """{"style": [[label, p], ...], "mode": ..., "tonic": ..., "key": ...}, best first."""
    def best(p: np.ndarray, names: Sequence[str]) -> list[list]:
        order = np.argsort(-p)[:top]
        return [[names[i], round(float(p[i]), 4)] for i in order]

    return {"style": best(ps, styles), "mode": best(pk.sum(0), MODES),
            "tonic": best(pk.sum(1), PITCH_CLASSES), "key": best(pk.reshape(-1), KEY_LABELS)}


def load_classifier(path: Path, device: str = "cpu") -> Classifier:
    model, meta, _ = load_checkpoint(path, device=device)
    info = meta.get("classifier")
    if not info or model.style_head is None or model.mode_head is None:
        raise MusicGPTError(f"{path} has no classification heads; train them with "
                            "`musicgpt train-classifier --init LM.pt`")
    if model.mode_head.out_features != len(KEY_LABELS):
        raise MusicGPTError(f"{path}: its key head has {model.mode_head.out_features} outputs, "
                            f"expected {len(KEY_LABELS)} (12 tonics x 8 modes)")
    return Classifier(model, MusicTokenizer.from_dict(meta["tokenizer"]), tuple(info["styles"]),
                      dict(info.get("temperature", {})), meta)


def save_classifier(path: Path, clf: Classifier, extra_meta: dict | None = None, half: bool = False) -> None:
    meta = {**clf.meta, **(extra_meta or {})}
    meta["tokenizer"] = clf.tok.to_dict()
    meta["classifier"] = {**meta.get("classifier", {}), "styles": list(clf.styles),
                          "modes": list(MODES), "tonics": list(PITCH_CLASSES),
                          "key_labels": list(KEY_LABELS), "temperature": clf.temperature,
                          "pooling": "mean over music positions of all windows"}
    save_checkpoint(path, clf.model, meta, half=half)


def with_heads(model: GPT, n_style: int, seed: int = 0) -> GPT:
    """A copy of `model`'s body with fresh style and key heads."""
    cfg = dataclasses.replace(model.cfg, n_style=n_style, n_mode=len(KEY_LABELS))
    torch.manual_seed(seed)
    new = GPT(cfg)
    body = {k: v for k, v in model.state_dict().items() if not k.startswith(("style_head", "mode_head"))}
    missing, unexpected = new.load_state_dict(body, strict=False)
    assert not unexpected and all(k.startswith(("style_head", "mode_head")) for k in missing)
    return new


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

    def subset(self, idx: Sequence[int]) -> Labelled:
        idx = list(idx)
        return Labelled([self.ids[i] for i in idx], self.style[idx], self.tonic[idx], self.mode[idx],
                        self.human_mode[idx], self.human_style[idx],
                        [self.group[i] for i in idx], [self.piece_ids[i] for i in idx])

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
    )


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
        # macro-F1 needs the rare styles seen; full balancing would replay a 2-piece style to death
        _, inv, counts = np.unique(data.style, return_inverse=True, return_counts=True)
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


def _losses(model: GPT, h: torch.Tensor, b: dict) -> torch.Tensor:
    return (_weighted_ce(model.style_head(h), b["style"], b["w_style"])
            + _weighted_ce(model.mode_head(h), b["key"], b["w_key"]))


def _lr_factor(step: int, cfg: ClassifierTrainConfig) -> float:
    """Linear warmup, then cosine decay to a tenth."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return 0.1 + 0.45 * (1 + math.cos(math.pi * frac))


def _fine_tune(model: GPT, batches: Batches, cfg: ClassifierTrainConfig, gen: torch.Generator,
               on_log: Callable[[dict], None] | None) -> None:
    """Body and heads trained together, one batch of crops per step."""
    heads = [p for n, p in model.named_parameters() if n.startswith(("style_head", "mode_head"))]
    body = [p for n, p in model.named_parameters() if not n.startswith(("style_head", "mode_head"))]
    opt = torch.optim.AdamW([{"params": heads, "lr": cfg.head_lr, "base": cfg.head_lr},
                             {"params": body, "lr": cfg.lr, "base": cfg.lr}],
                            weight_decay=cfg.weight_decay)
    model.train()
    t0 = time.time()
    for step in range(cfg.steps):
        for g in opt.param_groups:
            g["lr"] = g["base"] * _lr_factor(step, cfg)
        b = batches(gen)
        n = len(b["chunks"])
        loss = _losses(model, pooled(model, b["chunks"], range(n), n, batches.tok.bos_id,
                                     batches.tok.pad_id), b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if on_log and (step % 20 == 0 or step == cfg.steps - 1):
            on_log({"step": step, "loss": float(loss.detach()), "s": round(time.time() - t0, 1)})


def _probe(model: GPT, batches: Batches, cfg: ClassifierTrainConfig, gen: torch.Generator,
           on_log: Callable[[dict], None] | None) -> None:
    """Linear probe. The frozen body (eval mode: no dropout) reads the same `steps` batches of
    crops a fine-tuning run would; their pooled states are kept and the heads are then fitted on
    them to convergence (full-batch AdamW), which costs nothing next to the body's passes.
    One small step per batch, as in fine-tuning, would leave a 96-way head far from its optimum."""
    model.eval()
    t0 = time.time()
    feats, parts = [], []
    with torch.no_grad():
        for step in range(cfg.steps):
            b = batches(gen)
            n = len(b["chunks"])
            feats.append(pooled(model, b["chunks"], range(n), n, batches.tok.bos_id, batches.tok.pad_id))
            parts.append(b)
            if on_log and (step % 20 == 0 or step == cfg.steps - 1):
                on_log({"step": step, "features": "pooled", "s": round(time.time() - t0, 1)})
    h = torch.cat(feats)
    b = {k: torch.cat([p[k] for p in parts]) for k in ("style", "key", "w_style", "w_key")}
    heads = [p for n, p in model.named_parameters() if n.startswith(("style_head", "mode_head"))]
    opt = torch.optim.AdamW(heads, lr=cfg.head_lr * 3, weight_decay=cfg.weight_decay)
    for it in range(cfg.probe_iters):
        loss = _losses(model, h, b)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if on_log and (it % 100 == 0 or it == cfg.probe_iters - 1):
            on_log({"probe_iter": it, "loss": float(loss.detach()), "s": round(time.time() - t0, 1)})


def train_heads(model: GPT, tok: MusicTokenizer, styles: Sequence[str], data: Labelled,
                cfg: ClassifierTrainConfig, meta: dict | None = None,
                on_log: Callable[[dict], None] | None = None) -> Classifier:
    """Fine-tune style and key heads on `model` (an LM body, or random weights with cfg.scratch)."""
    torch.manual_seed(cfg.seed)
    if cfg.window > model.cfg.context:  # a crop must fit the position table
        cfg = dataclasses.replace(cfg, window=model.cfg.context)
    if cfg.scratch:
        model = GPT(model.cfg)
    model = with_heads(model, len(styles), cfg.seed)
    fit, cal = hold_out(data, cfg.calib_fraction, cfg.seed)
    if not len(fit):
        raise MusicGPTError("no training pieces left after the calibration hold-out")
    batches = Batches(fit, tok, cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    t0 = time.time()
    if cfg.freeze:
        _probe(model, batches, cfg, gen, on_log)
    else:
        _fine_tune(model, batches, cfg, gen, on_log)
    for p in model.parameters():
        p.requires_grad_(True)
    model.eval()
    clf = Classifier(model, tok, tuple(styles), {"style": 1.0, "key": 1.0},
                     {**(meta or {}), "classifier_train_config": dataclasses.asdict(cfg)})
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
    from musicgpt.lm import split_rows, token_sets

    splits = split_rows(corpus, root)
    if styles is None:
        styles = sorted({r["style"] for r in splits["train"] if r.get("style")})
    train_ts, test_ts = token_sets(tok, corpus, root)
    return (labelled(train_ts, splits["train"], styles), labelled(test_ts, splits["test"], styles),
            tuple(styles))


def train_classifier(init: Path, corpus: str, cfg: ClassifierTrainConfig, root: Path | None = None,
                     on_log: Callable[[dict], None] | None = None) -> tuple[Classifier, Labelled]:
    """Heads fine-tuned from the LM checkpoint `init` on `corpus`'s train split; (clf, test)."""
    lm, meta, _ = load_checkpoint(init)
    if "tokenizer" not in meta:
        raise MusicGPTError(f"{init} holds no tokenizer; is it a musicgpt language model?")
    tok = MusicTokenizer.from_dict(meta["tokenizer"])
    if tok.pitch_shift_table() is None and cfg.transpose:
        log.warning("the tokenizer uses BPE: no token-level transposition")
        cfg = dataclasses.replace(cfg, transpose=False)
    train, test, styles = corpus_data(tok, corpus, None, root)
    keep = {k: meta[k] for k in ("corpus", "train_config", "metrics", "labels") if k in meta}
    clf = train_heads(lm, tok, styles, train, cfg,
                      {**keep, "init": str(init), "classifier_corpus": corpus}, on_log)
    return clf, test


def evaluate(clf: Classifier, data: Labelled, bars: int | None = None) -> dict:
    """Accuracy, macro-F1, confusion and calibration on labelled pieces (all and human-labelled)."""
    from musicgpt.baselines import accuracy, confusion, expected_calibration_error, macro_f1

    t0 = time.time()
    ids = [first_bars_ids(i, clf.bar_id, bars) for i in data.ids]
    s_logits, k_logits = clf.logits_ids(ids)
    seconds = time.time() - t0
    out: dict = {"pieces": len(data), "bars": bars or "all",
                 "seconds_per_piece": seconds / max(len(data), 1)}
    ts, tk = clf.temperature.get("style", 1.0), clf.temperature.get("key", 1.0)
    ps = torch.softmax(s_logits / ts, -1).numpy()
    pk = torch.softmax(k_logits / tk, -1).numpy().reshape(len(data), 12, len(MODES))
    pk_raw = torch.softmax(k_logits, -1).numpy().reshape(len(data), 12, len(MODES))
    sv = data.style >= 0
    if sv.any():
        pred = ps.argmax(1)
        out["style"] = {
            "accuracy": accuracy(data.style[sv], pred[sv]),
            "macro_f1": macro_f1(data.style[sv], pred[sv], len(clf.styles)),
            "labels": list(clf.styles),
            "confusion": confusion(data.style[sv], pred[sv], len(clf.styles)).tolist(),
            "ece": expected_calibration_error(ps[sv], data.style[sv]),
            "ece_uncalibrated": expected_calibration_error(
                torch.softmax(s_logits, -1).numpy()[sv], data.style[sv]),
        }
    out["key"] = key_metrics(pk, data, pk_raw)
    return out


def key_metrics(pk: np.ndarray, data: Labelled, pk_raw: np.ndarray | None = None) -> dict:
    """Mode, tonic and tonic+mode accuracy from (P, 12, 8) probabilities, all and human-labelled."""
    from musicgpt.baselines import accuracy, confusion, expected_calibration_error

    mode_p, tonic_p = pk.sum(1), pk.sum(2)
    flat = pk.reshape(len(pk), -1)
    out = {}
    for name, sel in (("all", data.mode >= 0), ("human", (data.mode >= 0) & data.human_mode)):
        if not sel.any():
            continue
        keys = np.array([key_index(t, m) for t, m in zip(data.tonic[sel], data.mode[sel])])
        tv = data.tonic[sel] >= 0
        r = {"pieces": int(sel.sum()),
             "mode_accuracy": accuracy(data.mode[sel], mode_p[sel].argmax(1)),
             "tonic_accuracy": accuracy(data.tonic[sel][tv], tonic_p[sel][tv].argmax(1)),
             "key_accuracy": accuracy(keys[tv], flat[sel][tv].argmax(1)),
             "mode_confusion": confusion(data.mode[sel], mode_p[sel].argmax(1), len(MODES)).tolist(),
             "mode_ece": expected_calibration_error(mode_p[sel], data.mode[sel]),
             "key_ece": expected_calibration_error(flat[sel][tv], keys[tv])}
        if pk_raw is not None:
            r["key_ece_uncalibrated"] = expected_calibration_error(
                pk_raw.reshape(len(pk), -1)[sel][tv], keys[tv])
        out[name] = r
    return out
