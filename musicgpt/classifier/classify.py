"""Style and key (tonic + mode) prediction with heads on the pretrained causal transformer.

Input: `[BOS] + music tokens` (never the style/mode control tokens, which would give the answer).
A piece longer than the context is cut at bar lines into windows, each led by BOS, as the LM saw
them in pre-training. Two heads read the final hidden states:
- style (GPT.style_head): one logit per style, on the mean state over every music position of
  every window. In a causal model the last position's state is dominated by the last few bars;
  the mean gathers texture and rhythm from the whole piece (or from what a prefix gives).
- key (keyhead.KeyHead): one logit per (tonic, mode) pair, 12 x 8 = 96, on the states pooled by
  note role and pitch class and read under all 12 rotations (see keyhead.py). Mode and tonic
  probabilities are its marginals: the mode of a piece is only defined relative to its tonic
  (the hard part, see DATA_NOTES), and one joint distribution answers "tonic + mode" directly.

Training shifts pitch tokens by a random -6..+5 semitones and moves the tonic label with it; the
key head's rotations make the pitch-class part of the answer exactly equivariant.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import symusic
import torch

from musicgpt.evaluation.baselines import PITCH_CLASSES
from musicgpt.checkpoint import load_checkpoint, save_checkpoint
from musicgpt.config import MODES
from musicgpt.errors import MusicGPTError
from musicgpt.classifier.keyhead import KeyHead, TokenTables, pitch_class_pool, read_notes, token_tables
from musicgpt.model import GPT
from musicgpt.tokens.tokenizer import MusicTokenizer

if TYPE_CHECKING:
    from musicgpt.classifier.training import Labelled

KEY_LABELS: tuple[str, ...] = tuple(f"{t} {m}" for t in PITCH_CLASSES for m in MODES)  # t * 8 + m


def key_index(tonic: int, mode: int) -> int:
    return tonic * len(MODES) + mode


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


def piece_states(model: GPT, pieces: Sequence[np.ndarray], bar_id: int, bos_id: int, pad_id: int,
                 batch_windows: int = 16) -> list[torch.Tensor]:
    """[(L_i, C)] final hidden states at every music position of each piece (no BOS).

    A piece longer than the context is cut at bar lines into windows, each led by BOS; windows of
    all pieces are batched by length. Gradients flow when they are enabled."""
    device = next(model.parameters()).device
    size = model.cfg.context - 1
    chunks, owner = [], []
    for p, ids in enumerate(pieces):
        for c in windows(np.asarray(ids), bar_id, size):
            chunks.append(c)
            owner.append(p)
    out: list[list[torch.Tensor]] = [[] for _ in pieces]
    states: list[torch.Tensor | None] = [None] * len(chunks)
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))  # less padding
    for s in range(0, len(order), batch_windows):
        sel = order[s : s + batch_windows]
        T = max(len(chunks[i]) for i in sel) + 1
        x = torch.full((len(sel), T), pad_id, dtype=torch.long)
        for r, i in enumerate(sel):
            x[r, 0] = bos_id
            x[r, 1 : len(chunks[i]) + 1] = torch.as_tensor(chunks[i].astype(np.int64))
        # right padding needs no attention mask: a causal position never sees what follows it
        h = model.hidden_states(x.to(device))
        for r, i in enumerate(sel):
            states[i] = h[r, 1 : len(chunks[i]) + 1]
    for i, p in enumerate(owner):
        out[p].append(states[i])
    C = model.cfg.d_model
    return [torch.cat(o) if o else torch.zeros(0, C, device=device) for o in out]


def piece_features(states: Sequence[torch.Tensor], pieces: Sequence[np.ndarray], tables: TokenTables
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean (P, C), mass (P, K, 12), state (P, K, 12, C)) from each piece's states and ids."""
    means, masses, pooled = [], [], []
    for h, ids in zip(states, pieces):
        means.append(h.mean(0) if len(h) else h.new_zeros(h.size(-1)))
        mass, st = pitch_class_pool(h, read_notes(np.asarray(ids), tables), tables.res)
        masses.append(mass)
        pooled.append(st)
    return torch.stack(means), torch.stack(masses), torch.stack(pooled)


# ---- a trained classifier --------------------------------------------------------------------
@dataclass
class Classifier:
    """A body with heads, its tokenizer, label vocabularies and calibration temperatures."""

    model: GPT
    key_head: KeyHead
    tok: MusicTokenizer
    styles: tuple[str, ...]
    temperature: dict[str, float]
    meta: dict

    def __post_init__(self) -> None:
        self.tables = token_tables(self.tok.base.vocab, self.tok.vocab_size)

    @property
    def bar_id(self) -> int:
        return self.tok.base.vocab["Bar_None"]

    def features(self, pieces: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """piece_features of pieces given as music token ids (gradients flow when enabled)."""
        states = piece_states(self.model, pieces, self.bar_id, self.tok.bos_id, self.tok.pad_id)
        return piece_features(states, pieces, self.tables)

    @torch.no_grad()
    def logits_ids(self, pieces: Sequence[np.ndarray], group: int = 64, progress: bool = False
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """((P, n_style), (P, 96)) uncalibrated logits for pieces given as music token ids."""
        from tqdm import tqdm

        self.model.eval()
        self.key_head.eval()
        style, key = [], []
        bar = tqdm(total=len(pieces), desc="classify", unit="piece", disable=not progress, leave=False)
        for s in range(0, len(pieces), group):  # bounded memory: states of `group` pieces at once
            mean, mass, state = self.features(pieces[s : s + group])
            s_logits = self.model.style_head(mean)
            style.append(s_logits.cpu())
            key.append(self.key_logits(s_logits, mass, state).cpu())
            bar.update(len(pieces[s : s + group]))
        bar.close()
        return torch.cat(style), torch.cat(key)

    def key_logits(self, style_logits: torch.Tensor, mass: torch.Tensor, state: torch.Tensor
                   ) -> torch.Tensor:
        """The key head's logits; a head built with n_context reads the style head's
        probabilities (detached: the key loss does not train the style head through them)."""
        if not self.key_head.n_context:
            return self.key_head(mass, state)
        return self.key_head(mass, state, torch.softmax(style_logits.detach().float(), -1))

    def probabilities(self, pieces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """((P, n_style), (P, 12, 8)) calibrated probabilities."""
        s, k = self.logits_ids(pieces)
        ps = torch.softmax(s / self.temperature.get("style", 1.0), -1).numpy()
        pk = torch.softmax(k / self.temperature.get("key", 1.0), -1).numpy()
        return ps, pk.reshape(len(pieces), 12, len(MODES))

    def encode(self, score: symusic.Score, bars: int | None = None) -> np.ndarray:
        from musicgpt.scores import assign_voice_programs

        ids = np.asarray(self.tok.encode(assign_voice_programs(score)), dtype=np.int64)
        ids = first_bars_ids(ids, self.bar_id, bars)
        if len(ids) == 0:
            raise MusicGPTError("the score gives no tokens to classify")
        return ids

    def classify_score(self, score: symusic.Score, bars: int | None = None, top: int = 3) -> dict:
        """Top labels with probabilities for style, mode, tonic and tonic + mode."""
        ps, pk = self.probabilities([self.encode(score, bars)])
        return describe(ps[0], pk[0], self.styles, top)

    def classify_work(self, scores: Sequence[symusic.Score], bars: int | None = None, top: int = 3
                      ) -> dict:
        """One answer for several files that make one work (the sections of a mass): combine."""
        ps, pk = self.probabilities([self.encode(s, bars) for s in scores])
        return describe(combine(ps), combine(pk), self.styles, top)


def combine(p: np.ndarray) -> np.ndarray:
    """One distribution from N pieces' distributions (N, ...) of one work: the normalised
    geometric mean.

    Each section is evidence about the work; the geometric mean is the product of that evidence
    tempered by 1/N (sections of one work are far from independent), so a section that is sure
    counts for more than one that hesitates, and N copies of one section give that section's
    answer back."""
    lp = np.log(np.clip(p, 1e-12, None)).mean(0)
    q = np.exp(lp - lp.max())
    return q / q.sum()


def describe(ps: np.ndarray, pk: np.ndarray, styles: Sequence[str], top: int = 3) -> dict:
    """{"style": [[label, p], ...], "mode": ..., "tonic": ..., "key": ...}, best first."""
    def best(p: np.ndarray, names: Sequence[str]) -> list[list]:
        order = np.argsort(-p)[:top]
        return [[names[i], round(float(p[i]), 4)] for i in order]

    return {"style": best(ps, styles), "mode": best(pk.sum(0), MODES),
            "tonic": best(pk.sum(1), PITCH_CLASSES), "key": best(pk.reshape(-1), KEY_LABELS)}


def load_classifier(path: Path, device: str = "cpu") -> Classifier:
    model, meta, extra = load_checkpoint(path, device=device)
    info = meta.get("classifier")
    if not info or model.style_head is None or not extra.get("heads") or "key_head" not in info:
        raise MusicGPTError(f"{path} has no classification heads; train them with "
                            "`musicgpt train-classifier --init LM.pt`")
    head = KeyHead(**info["key_head"])
    try:
        head.load_state_dict({k: v.float() for k, v in extra["heads"].items()})
    except RuntimeError as e:
        raise MusicGPTError(f"{path}: the key head's weights do not fit its config: "
                            f"{str(e).splitlines()[0]}") from e
    return Classifier(model, head.to(device).eval(), MusicTokenizer.from_dict(meta["tokenizer"]),
                      tuple(info["styles"]), dict(info.get("temperature", {})), meta)


def save_classifier(path: Path, clf: Classifier, extra_meta: dict | None = None, half: bool = False) -> None:
    meta = {**clf.meta, **(extra_meta or {})}
    meta["tokenizer"] = clf.tok.to_dict()
    meta["classifier"] = {**meta.get("classifier", {}), "styles": list(clf.styles),
                          "modes": list(MODES), "tonics": list(PITCH_CLASSES),
                          "key_labels": list(KEY_LABELS), "temperature": clf.temperature,
                          "key_head": clf.key_head.config(),
                          "pooling": "style: mean over music positions of all windows; key: "
                                     "per note role and pitch class (keyhead.CHANNELS)"}
    save_checkpoint(path, clf.model, meta, half=half, heads=clf.key_head.state_dict())


def evaluate(clf: Classifier, data: Labelled, bars: int | None = None, progress: bool = False) -> dict:
    """Accuracy, macro-F1, confusion and calibration on labelled pieces (all and human-labelled)."""
    from musicgpt.evaluation.baselines import accuracy, confusion, expected_calibration_error, macro_f1

    t0 = time.time()
    ids = [first_bars_ids(i, clf.bar_id, bars) for i in data.ids]
    s_logits, k_logits = clf.logits_ids(ids, progress=progress)
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
    from musicgpt.evaluation.baselines import accuracy, confusion, expected_calibration_error

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
    if data.work is not None:  # a multi-file work (a mass) answered once, from all its files
        human = np.flatnonzero((data.mode >= 0) & data.human_mode & (data.tonic >= 0))
        works: dict[str, list[int]] = {}
        for i in human:
            works.setdefault(data.work[i], []).append(int(i))
        if works:
            got = np.stack([combine(pk[idx]) for idx in works.values()])
            first = [idx[0] for idx in works.values()]  # a work's sections share its label
            pred_mode = got.sum(1).argmax(1)
            out["human_work"] = {
                "works": len(works), "pieces": len(human),
                "mode_accuracy": accuracy(data.mode[first], pred_mode),
                "key_accuracy": accuracy(np.array([key_index(data.tonic[i], data.mode[i]) for i in first]),
                                         got.reshape(len(got), -1).argmax(1)),
                "mode_confusion": confusion(data.mode[first], pred_mode, len(MODES)).tolist()}
            multi = [n for n, idx in enumerate(works.values()) if len(idx) > 1]
            if multi:  # works of several files: how well calibrated the combined answer is
                y = data.mode[[first[n] for n in multi]]
                out["human_work"]["multi_file"] = {
                    "works": len(multi),
                    "mode_accuracy": accuracy(y, pred_mode[multi]),
                    "mode_confidence": float(got[multi].sum(1).max(1).mean()),
                    "mode_ece": expected_calibration_error(got[multi].sum(1), y)}
    return out
