"""Non-neural baselines for style and mode, and the pitch features they read.

Every key baseline answers a (tonic, mode) pair. Features are pitch-class profiles, so the key
models are built to be transposition equivariant: a (tonic, mode) candidate is scored on the
profiles rotated so that the candidate tonic sits at index 0. Transposing a piece rotates its
profiles, moves the best tonic with it and leaves the mode alone, by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import symusic

from musicgpt.config import MODES
from musicgpt.errors import MusicGPTError
from musicgpt.theory import best_scale, final_bass_pc, scale_fits

# Profile channels, each (12,) over pitch classes; see `pitch_profiles`.
CHANNELS: tuple[str, ...] = ("hist", "bass", "final", "first")


# ---- features --------------------------------------------------------------------------------
def _notes(score: symusic.Score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, duration, pitch) of every pitched note, sorted by start then pitch."""
    parts = [t.notes.numpy() for t in score.tracks if not t.is_drum and t.note_num()]
    if not parts:
        raise MusicGPTError("the score holds no pitched notes")
    start = np.concatenate([p["time"] for p in parts]).astype(np.int64)
    dur = np.concatenate([p["duration"] for p in parts]).astype(np.int64)
    pitch = np.concatenate([p["pitch"] for p in parts]).astype(np.int64)
    order = np.lexsort((pitch, start))
    return start[order], np.maximum(dur[order], 1), pitch[order]


def pitch_profiles(score: symusic.Score) -> np.ndarray:
    """(4, 12) profiles in CHANNELS order: duration-weighted pitch classes; the same for the
    lowest note of each onset (the bass line); one-hot of the final (theory.final_bass_pc);
    one-hot of the lowest pitch of the first onset."""
    start, dur, pitch = _notes(score)
    out = np.zeros((len(CHANNELS), 12))
    np.add.at(out[0], pitch % 12, dur)
    onsets, first_of = np.unique(start, return_index=True)
    bass = np.minimum.reduceat(pitch, first_of)  # notes are sorted by pitch within an onset
    bass_dur = np.maximum.reduceat(dur, first_of)
    np.add.at(out[1], bass % 12, bass_dur)
    out[2, final_bass_pc(score)] = 1.0
    out[3, bass[0] % 12] = 1.0
    out[:2] /= out[:2].sum(axis=1, keepdims=True)
    return out


def style_stats(score: symusic.Score) -> np.ndarray:
    """(10,) transposition-free texture figures that tell corpora apart."""
    start, dur, pitch = _notes(score)
    tpq = max(score.ticks_per_quarter, 1)
    voices = sum(1 for t in score.tracks if not t.is_drum and t.note_num())
    span_q = max((start + dur).max() - start.min(), 1) / tpq
    num, den = 4, 4
    if len(score.time_signatures):
        num, den = score.time_signatures[0].numerator, score.time_signatures[0].denominator
    beat = tpq * 4 // den
    return np.array([
        voices / 4.0,
        np.log1p(len(pitch) / span_q),  # notes per quarter
        (pitch.max() - pitch.min()) / 24.0,
        np.log2(np.median(dur) / tpq + 1e-3),
        np.mean(start % beat != 0),  # off-beat onsets
        np.mean(dur < tpq / 2),  # short notes
        np.mean(np.abs(np.diff(pitch)) > 7) if len(pitch) > 1 else 0.0,
        float(num % 3 == 0),  # compound or triple meter
        float(den == 2),
        np.log1p(span_q) / 5.0,
    ])


# ---- models ----------------------------------------------------------------------------------
def _adam(params: list[np.ndarray], grad_fn, iters: int, lr: float) -> None:
    """Minimise in place with Adam; grad_fn() returns one gradient per parameter."""
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t in range(1, iters + 1):
        for p, g, mi, vi in zip(params, grad_fn(), m, v):
            mi *= 0.9
            mi += 0.1 * g
            vi *= 0.999
            vi += 0.001 * g * g
            p -= lr * (mi / (1 - 0.9**t)) / (np.sqrt(vi / (1 - 0.999**t)) + 1e-8)


def _softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    z = z - z.max(axis=axis, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=axis, keepdims=True)


def rotations(profiles: np.ndarray) -> np.ndarray:
    """(N, C, 12) -> (N, 12, C*12): for each candidate tonic t, the profiles rolled so t is at 0."""
    rolled = np.stack([np.roll(profiles, -t, axis=-1) for t in range(12)], axis=1)
    return rolled.reshape(len(profiles), 12, -1)


@dataclass
class KeyLR:
    """Logistic regression over the 12 x 8 (tonic, mode) pairs on rotated pitch-class profiles.

    logit(t, m) = w_m . rotate(profiles, t) + b_m: one weight vector per mode, shared by all
    tonics, which makes the model transposition equivariant and lets every piece teach all keys.
    """

    channels: tuple[str, ...] = CHANNELS
    l2: float = 1e-3
    iters: int = 400
    lr: float = 0.05
    W: np.ndarray = field(default=None, repr=False)  # (C*12, 8)
    b: np.ndarray = field(default=None, repr=False)  # (8,)

    def _x(self, profiles: np.ndarray) -> np.ndarray:
        sel = [CHANNELS.index(c) for c in self.channels]
        return rotations(profiles[:, sel])

    def fit(self, profiles: np.ndarray, tonic: np.ndarray, mode: np.ndarray,
            weight: np.ndarray | None = None) -> KeyLR:
        R = self._x(profiles)  # (N, 12, D)
        n = len(R)
        w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
        w = w / w.sum()
        Y = np.zeros((n, 12, len(MODES)))
        Y[np.arange(n), tonic, mode] = 1.0
        self.W = np.zeros((R.shape[2], len(MODES)))
        self.b = np.zeros(len(MODES))

        def grads():
            P = self.predict_proba_rotated(R)
            G = (P - Y) * w[:, None, None]
            return [np.einsum("ntd,ntm->dm", R, G) + self.l2 * self.W, G.sum(axis=(0, 1))]

        _adam([self.W, self.b], grads, self.iters, self.lr)
        return self

    def predict_proba_rotated(self, R: np.ndarray) -> np.ndarray:
        logits = R @ self.W + self.b  # (N, 12, 8)
        return _softmax(logits.reshape(len(R), -1)).reshape(logits.shape)

    def predict_proba(self, profiles: np.ndarray) -> np.ndarray:
        """(N, 12, 8) joint probabilities of (tonic, mode)."""
        return self.predict_proba_rotated(self._x(profiles))


@dataclass
class SoftmaxLR:
    """Plain multinomial logistic regression on standardised features (used for style)."""

    n_classes: int
    l2: float = 1e-3
    iters: int = 500
    lr: float = 0.05
    W: np.ndarray = field(default=None, repr=False)
    b: np.ndarray = field(default=None, repr=False)
    mu: np.ndarray = field(default=None, repr=False)
    sd: np.ndarray = field(default=None, repr=False)

    def fit(self, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None) -> SoftmaxLR:
        self.mu, self.sd = X.mean(axis=0), X.std(axis=0) + 1e-6
        Z = (X - self.mu) / self.sd
        n = len(Z)
        w = np.ones(n) if weight is None else np.asarray(weight, dtype=float)
        w = w / w.sum()
        Y = np.eye(self.n_classes)[y]
        self.W = np.zeros((Z.shape[1], self.n_classes))
        self.b = np.zeros(self.n_classes)

        def grads():
            G = (_softmax(Z @ self.W + self.b) - Y) * w[:, None]
            return [Z.T @ G + self.l2 * self.W, G.sum(axis=0)]

        _adam([self.W, self.b], grads, self.iters, self.lr)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return _softmax(((X - self.mu) / self.sd) @ self.W + self.b)


def style_features(profiles: np.ndarray, stats: np.ndarray, tonic: np.ndarray) -> np.ndarray:
    """(N, 24 + S): pitch and bass profiles rotated to a tonic estimate, then texture stats."""
    rolled = np.stack([np.roll(p[:2], -t, axis=-1).reshape(-1) for p, t in zip(profiles, tonic)])
    return np.concatenate([rolled, stats], axis=1)


def final_scale_rule(profiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tonic = the lowest final pitch; mode = the diatonic scale on it holding most of the notes
    (theory.best_scale: ties go to the commoner mode, as in the corpus labels)."""
    tonic = profiles[:, CHANNELS.index("final")].argmax(axis=1)
    hist = profiles[:, CHANNELS.index("hist")]
    mode = np.array([MODES.index(best_scale(scale_fits(h, int(t)))) for h, t in zip(hist, tonic)],
                    dtype=np.int64)
    return tonic, mode


def music21_key(path: Path) -> tuple[int, int]:
    """(tonic pc, mode index) from music21's Krumhansl-style key analysis of a MIDI file.

    It knows only major and minor, so it answers ionian or aeolian."""
    import music21

    try:
        key = music21.converter.parse(str(path)).analyze("key")
    except Exception as exc:  # music21 raises many types on bad input
        raise MusicGPTError(f"{path}: music21 could not analyse it ({exc})") from exc
    mode = MODES.index("ionian" if key.mode == "major" else "aeolian")
    return key.tonic.pitchClass, mode
