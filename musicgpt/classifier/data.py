"""The classifier's data: labelled pieces as music token ids, the calibration hold-out, batches
of transposed crops, and a built corpus's splits through the LM's token caches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from musicgpt.classifier.heads import key_index
from musicgpt.config import MODES, ClassifierTrainConfig
from musicgpt.corpus.recipes import work_of
from musicgpt.data.splits import split_rows, token_sets
from musicgpt.data.tokens import TokenSet
from musicgpt.errors import MusicGPTError
from musicgpt.theory import pitch_class
from musicgpt.tokens.tokenizer import MusicTokenizer


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


def labelled(ts: TokenSet, rows: Sequence[dict], styles: Sequence[str]) -> Labelled:
    """Join a data.TokenSet with its manifest rows (encode_rows may skip empty pieces)."""
    by_id = {r["id"]: r for r in rows}
    kept = [by_id[i] for i in ts.piece_ids]

    def tonic(r: dict) -> int:
        try:
            return pitch_class(r.get("tonic") or "")
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


def probe_pieces(data: Labelled, cfg: ClassifierTrainConfig) -> list[int]:
    """Every piece with a human mode label, plus up to probe_per_style others of each style."""
    rng = np.random.default_rng(cfg.seed)
    human = data.human_mode & (data.mode >= 0)
    keep = set(np.flatnonzero(human).tolist())
    for st in np.unique(data.style):
        rest = np.flatnonzero((data.style == st) & ~human)
        keep.update(rng.permutation(rest)[: cfg.probe_per_style].tolist())
    return sorted(keep)


def corpus_data(tok: MusicTokenizer, corpus: str, styles: Sequence[str] | None = None,
                root: Path | None = None) -> tuple[Labelled, Labelled, tuple[str, ...]]:
    """(train, test, styles) for a built corpus, through the LM's token caches."""
    splits = split_rows(corpus, root)
    if styles is None:
        styles = sorted({r["style"] for r in splits["train"] if r.get("style")})
    train_ts, test_ts = map(token_sets(tok, corpus, root).get, ("train", "test"))
    return (labelled(train_ts, splits["train"], styles), labelled(test_ts, splits["test"], styles),
            tuple(styles))
