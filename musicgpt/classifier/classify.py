"""A trained classifier: the pretrained causal transformer (GPT) as body, style and key heads on
its pooled final hidden states (heads.py, features.py), tokenizer, labels and calibration.

Input: `[BOS] + music tokens` (never the style/mode control tokens, which would give the answer).
The style head reads the mean state; the key head, one logit per (tonic, mode) pair, 12 x 8 = 96,
reads states pooled by note role and pitch class under all 12 rotations. Mode and tonic
probabilities are its marginals: the mode of a piece is only defined relative to its tonic (the
hard part, see DATA_NOTES), and one joint distribution answers "tonic + mode" directly.

Training (training.py) shifts pitch tokens by a random -6..+5 semitones and moves the tonic label
with it; the key head's rotations make the pitch-class part of the answer exactly equivariant.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import symusic
import torch

from musicgpt.checkpoint import load_checkpoint, save_checkpoint
from musicgpt.classifier.features import first_bars_ids, piece_features, piece_states
from musicgpt.classifier.heads import KEY_LABELS, Heads
from musicgpt.config import MODES, SHIPPED_CLASSIFIER, UNSURE_BELOW, shipped
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT
from musicgpt.theory import PITCH_CLASSES
from musicgpt.tokens.tables import token_tables
from musicgpt.tokens.tokenizer import MusicTokenizer


# ---- a trained classifier --------------------------------------------------------------------
@dataclass
class Classifier:
    """A body with heads, its tokenizer, label vocabularies and calibration temperatures."""

    model: GPT
    heads: Heads
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
        self.heads.eval()
        style, key = [], []
        bar = tqdm(total=len(pieces), desc="classify", unit="piece", disable=not progress, leave=False)
        for s in range(0, len(pieces), group):  # bounded memory: states of `group` pieces at once
            s_logits, k_logits = self.heads(*self.features(pieces[s : s + group]))
            style.append(s_logits.cpu())
            key.append(k_logits.cpu())
            bar.update(len(pieces[s : s + group]))
        bar.close()
        return torch.cat(style), torch.cat(key)

    def probabilities(self, pieces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """((P, n_style), (P, 12, 8)) calibrated probabilities."""
        s, k = self.logits_ids(pieces)
        ps = torch.softmax(s / self.temperature.get("style", 1.0), -1).numpy()
        pk = torch.softmax(k / self.temperature.get("key", 1.0), -1).numpy()
        return ps, pk.reshape(len(pieces), 12, len(MODES))

    def encode(self, score: symusic.Score, bars: int | None = None) -> np.ndarray:
        from musicgpt.scores import normalize

        ids = np.asarray(self.tok.encode(normalize(score)), dtype=np.int64)
        ids = first_bars_ids(ids, self.bar_id, bars)
        if len(ids) == 0 or not np.any(self.tables.pitch[ids] >= 0):
            raise MusicGPTError("the score has no notes to classify in A0-C8 (MIDI 21-108), the "
                                "range the model reads")
        return ids

    def classify_score(self, score: symusic.Score, bars: int | None = None, top: int = 3,
                       unsure_below: float = UNSURE_BELOW) -> dict:
        """Top labels with probabilities for style, mode, tonic and tonic + mode (describe)."""
        ps, pk = self.probabilities([self.encode(score, bars)])
        return describe(ps[0], pk[0], self.styles, top, unsure_below)

    def classify_work(self, scores: Sequence[symusic.Score], bars: int | None = None, top: int = 3,
                      unsure_below: float = UNSURE_BELOW) -> dict:
        """One answer for several files that make one work (the sections of a mass): combine."""
        ps, pk = self.probabilities([self.encode(s, bars) for s in scores])
        return describe(combine(ps), combine(pk), self.styles, top, unsure_below)


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


def describe(ps: np.ndarray, pk: np.ndarray, styles: Sequence[str], top: int = 3,
             unsure_below: float = UNSURE_BELOW) -> dict:
    """{"style": [[label, p], ...], "mode": ..., "tonic": ..., "key": ..., "answer": {...}}, best
    first. "answer" gives each question's best label, or "unsure" when its calibrated
    probability is below `unsure_below`."""
    def best(p: np.ndarray, names: Sequence[str]) -> list[list]:
        order = np.argsort(-p)[:top]
        return [[names[i], round(float(p[i]), 4)] for i in order]

    out = {"style": best(ps, styles), "mode": best(pk.sum(0), MODES),
           "tonic": best(pk.sum(1), PITCH_CLASSES), "key": best(pk.reshape(-1), KEY_LABELS)}
    out["answer"] = {q: (out[q][0][0] if out[q][0][1] >= unsure_below else "unsure")
                     for q in ("style", "mode", "tonic", "key")}
    out["unsure_below"] = unsure_below
    return out


def load_classifier(path: str | Path | None = None, device: str = "cpu") -> Classifier:
    """A classifier from one checkpoint file; by default the shipped one."""
    path = shipped(SHIPPED_CLASSIFIER) if path is None else Path(path)
    from musicgpt.lm import checked_tokenizer

    model, meta, extra = load_checkpoint(path, device=device)
    info = meta.get("classifier")
    if not info or not extra.get("heads") or "key_head" not in info:
        raise MusicGPTError(f"{path} has no classification heads; train them with "
                            "`musicgpt train-classifier --init LM.pt`")
    if "tokenizer" not in meta:
        raise MusicGPTError(f"{path} holds no tokenizer, so it cannot read a score")
    tok = checked_tokenizer(meta["tokenizer"], model.cfg.vocab_size, path)
    styles = info.get("styles")
    if not isinstance(styles, list) or not styles or not all(isinstance(x, str) for x in styles):
        raise MusicGPTError(f"{path} is a damaged classifier: its list of styles is {styles!r}")
    heads = _stored_heads(info, extra["heads"], path)
    return Classifier(model, heads.to(device).eval(), tok, tuple(styles),
                      dict(info.get("temperature", {})), meta)


def _stored_heads(info: dict, state: dict, path: str | Path) -> Heads:
    """The heads a checkpoint's meta["classifier"] (`info`) describes, with their stored weights;
    one MusicGPTError naming `path` when they do not fit or are not finite."""
    try:
        heads = Heads(len(info["styles"]), info["key_head"])
        heads.load_state_dict({k: v.float() for k, v in state.items()})
    except (RuntimeError, TypeError, KeyError, ValueError) as e:
        raise MusicGPTError(f"{path}: the heads' weights do not fit their config: "
                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
    bad = next((n for n, p in heads.named_parameters() if not torch.isfinite(p).all()), None)
    if bad is not None:
        raise MusicGPTError(f"{path} is damaged: its heads hold NaN or infinite values ({bad})")
    return heads.eval()


def header_key_finder(model: GPT, tok: MusicTokenizer, info: dict | None, state: dict | None):
    """A function score -> (tonic pitch class, diatonic mode) that reads a header's key with the
    key head stored beside `model`'s body (the shipped default.pt carries one: `info` is its
    meta["classifier"], `state` the heads' weights), sharing that body; None without heads. On
    4-bar headers of the validation carve it finds the labelled tonic far more often than the
    profile rule in theory.estimate_key (docs/benchmarks.md, scripts/bench_header_key.py)."""
    if not info or not state or "key_head" not in info or "styles" not in info:
        return None
    try:
        heads = _stored_heads(info, state, "the model's checkpoint")
    except MusicGPTError:  # heads that do not fit: continuation falls back to the profile rule
        return None
    clf = Classifier(model, heads.to(next(model.parameters()).device), tok, tuple(info["styles"]),
                     dict(info.get("temperature", {})), {"classifier": info})
    diatonic = [i for i, m in enumerate(MODES) if m != "other"]

    def find(score: symusic.Score) -> tuple[int, str]:
        _, pk = clf.probabilities([clf.encode(score)])
        tonic = int(np.argmax(pk[0].sum(1)))
        return tonic, MODES[diatonic[int(np.argmax(pk[0][tonic, diatonic]))]]

    return find


def save_classifier(path: Path, clf: Classifier, extra_meta: dict | None = None, half: bool = False) -> None:
    meta = {**clf.meta, **(extra_meta or {})}
    meta["tokenizer"] = clf.tok.to_dict()
    meta["classifier"] = {**meta.get("classifier", {}), "styles": list(clf.styles),
                          "modes": list(MODES), "tonics": list(PITCH_CLASSES),
                          "key_labels": list(KEY_LABELS), "temperature": clf.temperature,
                          "key_head": clf.heads.key_head.config(),
                          "pooling": "style: mean over music positions of all windows; key: "
                                     "per note role and pitch class (features.CHANNELS)"}
    save_checkpoint(path, clf.model, meta, half=half, heads=clf.heads.state_dict())
