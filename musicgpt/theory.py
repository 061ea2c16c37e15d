"""Music theory written once: pitch-class names, letter spellings, the diatonic modes, the final-note rule.

Stdlib and numpy only. A score here is anything with `tracks` whose `notes.numpy()` gives
"time", "duration" and "pitch" arrays (a `symusic.Score`), so this module needs no MIDI library.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from musicgpt.config import MODES
from musicgpt.errors import MusicGPTError

TICKS_PER_QUARTER = 480  # every Score musicgpt builds or resamples uses this resolution
VELOCITY = 80  # the corpora carry no dynamics; one velocity for every note musicgpt writes

# One spelling per pitch class: sharps for C# and F#, flats for Eb, Ab and Bb (the usual keys).
PITCH_CLASSES: tuple[str, ...] = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
LETTERS: dict[str, int] = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SHARPS, FLATS = "#♯", "b-♭"  # "-" is music21's and kern's flat

MAJOR_STEPS: tuple[int, ...] = (0, 2, 4, 5, 7, 9, 11)
DIATONIC: tuple[str, ...] = MODES[:7]  # the seven rotations of the major scale, ionian first
# Steps above the final of each diatonic mode: mode k starts on degree k of the major scale.
MODE_STEPS: dict[str, tuple[int, ...]] = {
    m: tuple(sorted((p - MAJOR_STEPS[k]) % 12 for p in MAJOR_STEPS)) for k, m in enumerate(DIATONIC)
}
MODE_SCALES: dict[str, frozenset[int]] = {m: frozenset(s) for m, s in MODE_STEPS.items()}
# Semitones from a major key's tonic to the final of each rotation: 2 -> dorian, 9 -> aeolian...
ROTATION: dict[int, str] = {MAJOR_STEPS[k]: m for k, m in enumerate(DIATONIC)}
MAJOR_THIRD: frozenset[str] = frozenset(m for m, s in MODE_STEPS.items() if 4 in s)
# Which mode wins when several fit a histogram equally well (a tune without its sixth is both
# dorian and aeolian): the commoner first. The committed corpus labels were made with this order.
PREFERENCE: tuple[str, ...] = ("ionian", "aeolian", "dorian", "mixolydian", "phrygian", "lydian", "locrian")


def sounds_mode(pcs: set[int], tonic: int, mode: str) -> bool:
    """Whether notes of these pitch classes, ending on `tonic`, are heard in `mode` rather than in a
    commoner one (PREFERENCE) on the same final: each commoner mode's scale leaves one of them out.
    A dorian line needs its major sixth (else it is aeolian) and a minor third or seventh (else it
    is ionian); a line with no third at all is heard as ionian. The final-note + scale rule's
    verdict on a line kept inside `mode`'s scale."""
    rel = {(p - tonic) % 12 for p in pcs}
    commoner = PREFERENCE[: PREFERENCE.index(mode)] if mode in PREFERENCE else ()
    return all(not rel <= MODE_SCALES[m] for m in commoner)


def pitch_class(name: str) -> int:
    """Pitch class of a spelled name: 'D', 'F#', 'Bb', 'E-' (music21's flat), 'c' -> 0..11."""
    text = name.strip()
    if not text or text[0].upper() not in LETTERS:
        raise MusicGPTError(f"not a pitch name: {name!r}")
    pc = LETTERS[text[0].upper()]
    for ch in text[1:]:
        if ch in SHARPS:
            pc += 1
        elif ch in FLATS:
            pc -= 1
        else:
            raise MusicGPTError(f"not a pitch name: {name!r}")
    return pc % 12


def keysig_tonic(sharps: int) -> int:
    """Pitch class of the major tonic of a key signature with `sharps` sharps (negative: flats)."""
    return (7 * int(sharps)) % 12


def pc_histogram(score: Any) -> np.ndarray:
    """(12,) duration-weighted pitch-class histogram of every note."""
    hist = np.zeros(12)
    for t in score.tracks:
        a = t.notes.numpy()
        np.add.at(hist, a["pitch"].astype(np.int64) % 12, a["duration"].astype(np.float64))
    return hist


def final_bass_pc(score: Any) -> int | None:
    """The final-note rule: pitch class of the lowest note sounding at the last onset (None
    for a score without pitched notes). A note held over from before the last onset counts; a
    zero-length note lasts one tick, so the last onset always has a note sounding."""
    arrays = [t.notes.numpy() for t in score.tracks if len(t.notes) and not getattr(t, "is_drum", False)]
    if not arrays:
        return None
    time = np.concatenate([a["time"] for a in arrays]).astype(np.int64)
    end = time + np.maximum(np.concatenate([a["duration"] for a in arrays]), 1)
    pitch = np.concatenate([a["pitch"] for a in arrays]).astype(np.int64)
    last = time.max()
    sounding = (time <= last) & (end > last)
    return int(pitch[sounding].min() % 12)


def scale_fits(hist: np.ndarray, tonic: int) -> dict[str, float]:
    """Share of the histogram's weight inside each diatonic mode's scale on `tonic`."""
    total = hist.sum() or 1.0
    return {m: float(sum(hist[(tonic + s) % 12] for s in steps) / total) for m, steps in MODE_STEPS.items()}


def best_scale(fits: dict[str, float]) -> str:
    """The best-fitting mode of `scale_fits`, ties broken by PREFERENCE."""
    top = max(fits.values())
    return next(m for m in PREFERENCE if fits[m] >= top - 1e-9)



def estimate_key(hist: np.ndarray, first_bass: int | None = None) -> tuple[int, str]:
    """(tonic pc, diatonic mode) a header is most likely in, from its duration-weighted
    pitch-class histogram and, when known, the pitch class of its first bass note.

    Each of the 84 (tonic, mode) pairs scores the share of the weight inside its scale, plus half
    the weight on its tonic and half that on its fifth, plus 0.1 when the passage begins on the
    tonic; ties go to PREFERENCE's commoner mode. The weights were chosen on the first 4 bars of
    train and validation pieces (a header's last note is no evidence, so the final is not used);
    the accuracy is in docs/benchmarks.md. A rule, not a model."""
    scores = key_scores(hist, first_bass)
    best, best_score = (0, "ionian"), -np.inf
    for tonic in range(12):
        for mode in PREFERENCE:
            if scores[mode][tonic] > best_score + 1e-9:
                best, best_score = (tonic, mode), scores[mode][tonic]
    return best


def key_scores(hist: np.ndarray, first_bass: int | None = None) -> dict[str, np.ndarray]:
    """estimate_key's score of every tonic (12,) for each diatonic mode."""
    total = float(np.sum(hist))
    if total <= 0:
        raise MusicGPTError("no notes to find a key in")
    h = np.asarray(hist, dtype=np.float64) / total
    base = np.array([0.5 * h[t] + 0.5 * h[(t + 7) % 12] + 0.1 * (first_bass == t) for t in range(12)])
    return {mode: base + np.array([sum(h[(t + s) % 12] for s in steps) for t in range(12)])
            for mode, steps in MODE_STEPS.items()}


def score_key(score: Any) -> tuple[int, str]:
    """`estimate_key` of a score's notes."""
    arrays = [t.notes.numpy() for t in score.tracks if len(t.notes) and not getattr(t, "is_drum", False)]
    if not arrays:
        raise MusicGPTError("no notes to find a key in")
    time = np.concatenate([a["time"] for a in arrays]).astype(np.int64)
    pitch = np.concatenate([a["pitch"] for a in arrays]).astype(np.int64)
    first = int(pitch[time == time.min()].min() % 12)
    return estimate_key(pc_histogram(score), first)
