"""Figures that compare a sampled continuation with the real one, on notes (onset, duration,
pitch, voice in ticks), so any Score can be measured.

Where MusPy (Dong et al., 2020) defines a metric, the definition here is MusPy's, and
tests/test_music_metrics.py checks the two agree on real scores: `groove_consistency` is
`muspy.groove_consistency`; `in_scale_rate` is `muspy.pitch_in_scale_rate` with the diatonic
modes as scales (MusPy knows only major and minor, whose rotations the modes are). The others
are not in MusPy: fully silent bars (MusPy's `empty_measure_rate` also counts a bar that a note
merely ends on as sounding), the pitch-class distance, the onset-pattern similarity of two
pieces, the MIREX cardinality score, and the copied-bar run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import symusic

from musicgpt.theory import MODE_STEPS


@dataclass(frozen=True)
class Notes:
    """Every note of a score (or of a stretch of one) as arrays, sorted by onset then pitch."""

    onset: np.ndarray
    dur: np.ndarray
    pitch: np.ndarray
    voice: np.ndarray

    def __len__(self) -> int:
        return len(self.onset)

    @classmethod
    def of(cls, score: symusic.Score, start: int = 0, end: int | None = None) -> Notes:
        """The notes whose onset lies in [start, end) ticks."""
        parts = [(t.notes.numpy(), t.program) for t in score.tracks if t.note_num() and not t.is_drum]
        if not parts:
            return cls(*(np.zeros(0, dtype=np.int64) for _ in range(4)))
        onset = np.concatenate([a["time"] for a, _ in parts]).astype(np.int64)
        dur = np.maximum(np.concatenate([a["duration"] for a, _ in parts]).astype(np.int64), 1)
        pitch = np.concatenate([a["pitch"] for a, _ in parts]).astype(np.int64)
        voice = np.concatenate([np.full(len(a["time"]), p) for a, p in parts]).astype(np.int64)
        keep = (onset >= start) & (onset < (end if end is not None else np.iinfo(np.int64).max))
        order = np.lexsort((pitch[keep], onset[keep]))
        return cls(onset[keep][order], dur[keep][order], pitch[keep][order], voice[keep][order])


def in_scale_rate(notes: Notes, tonic: int, mode: str) -> float:
    """Share of the notes whose pitch class is in `mode`'s scale on `tonic` (NaN without notes
    or for a mode that is not diatonic). MusPy's pitch_in_scale_rate, with modes."""
    if not len(notes) or mode not in MODE_STEPS:
        return float("nan")
    scale = np.zeros(12, dtype=bool)
    scale[[(tonic + s) % 12 for s in MODE_STEPS[mode]]] = True
    return float(scale[notes.pitch % 12].mean())


def pc_distribution(notes: Notes) -> np.ndarray:
    """(12,) duration-weighted pitch classes, summing to 1 (zeros without notes)."""
    hist = np.zeros(12)
    np.add.at(hist, notes.pitch % 12, notes.dur.astype(np.float64))
    return hist / hist.sum() if hist.sum() else hist


def pc_distance(a: Notes, b: Notes) -> float:
    """Total-variation distance of two pitch-class distributions: 0 same, 1 disjoint."""
    if not len(a) or not len(b):
        return float("nan")
    return float(0.5 * np.abs(pc_distribution(a) - pc_distribution(b)).sum())


def silent_bars(notes: Notes, bar_starts: Sequence[int]) -> int:
    """Bars [bar_starts[i], bar_starts[i+1]) in which no note starts or sounds."""
    ends = notes.onset + notes.dur
    count = 0
    for lo, hi in zip(bar_starts[:-1], bar_starts[1:]):
        if not np.any((notes.onset < hi) & (ends > lo)):
            count += 1
    return count


def onset_patterns(notes: Notes, bar_starts: Sequence[int], grid: int) -> np.ndarray:
    """(bars, steps) bool: which `grid`-tick steps of each bar hold an onset (bars of equal length)."""
    bar_len = int(bar_starts[1] - bar_starts[0])
    steps = max(bar_len // grid, 1)
    out = np.zeros((len(bar_starts) - 1, steps), dtype=bool)
    for k, (lo, hi) in enumerate(zip(bar_starts[:-1], bar_starts[1:])):
        inside = notes.onset[(notes.onset >= lo) & (notes.onset < hi)]
        out[k, np.minimum((inside - lo) // grid, steps - 1)] = True
    return out


def groove_consistency(patterns: np.ndarray) -> float:
    """MusPy's groove consistency: 1 - the mean Hamming distance between neighbouring bars'
    onset patterns, as a share of the steps in a bar (NaN under two bars)."""
    if len(patterns) < 2:
        return float("nan")
    changed = np.count_nonzero(patterns[:-1] != patterns[1:])
    return float(1 - changed / (patterns.shape[1] * (len(patterns) - 1)))


def groove_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two pieces' rhythms are: the weighted Jaccard index (sum of minima over sum of
    maxima) of their per-step onset frequencies across bars; 1 for the same onset grid."""
    if not len(a) or not len(b) or a.shape[1] != b.shape[1]:
        return float("nan")
    fa, fb = a.mean(axis=0), b.mean(axis=0)
    top = np.maximum(fa, fb).sum()
    return float(np.minimum(fa, fb).sum() / top) if top else 1.0


def cardinality_score(real: Notes, gen: Notes, start: int, tpq: int,
                      beats: Iterable[int] = range(2, 11)) -> dict[int, float]:
    """The MIREX Patterns-for-Prediction cardinality score: for the first n beats after
    `start`, the largest number of (onset, pitch) points of the real continuation that one
    translation in time and pitch maps onto generated ones, as an F1 of recall (over the real
    points) and precision (over the generated)."""
    out = {}
    for n in beats:
        end = start + n * tpq
        p = _points(real, start, end)
        q = _points(gen, start, end)
        if not len(p) or not len(q):
            out[n] = float("nan") if not len(p) else 0.0
            continue
        diffs = (p[:, None, :] - q[None, :, :]).reshape(-1, 2)
        _, counts = np.unique(diffs, axis=0, return_counts=True)
        best = int(counts.max())
        recall, precision = best / len(p), best / len(q)
        out[n] = 2 * recall * precision / (recall + precision)
    return out


def _points(notes: Notes, start: int, end: int) -> np.ndarray:
    """(onset, pitch) points in [start, end): two voices on one point are one point."""
    sel = (notes.onset >= start) & (notes.onset < end)
    return np.unique(np.stack([notes.onset[sel], notes.pitch[sel]], 1), axis=0)


def _bar_shapes(notes: Notes, bar_starts: Sequence[int]) -> list[tuple | None]:
    """Each bar's notes (onset in bar, duration, pitch above the bar's lowest, voice) with the
    lowest pitch, so a run of bars can be matched under one transposition; None: no onset."""
    shapes: list[tuple | None] = []
    for lo, hi in zip(bar_starts[:-1], bar_starts[1:]):
        sel = (notes.onset >= lo) & (notes.onset < hi)
        if not sel.any():
            shapes.append(None)
            continue
        base = int(notes.pitch[sel].min())
        body = tuple(zip((notes.onset[sel] - lo).tolist(), notes.dur[sel].tolist(),
                         (notes.pitch[sel] - base).tolist(), notes.voice[sel].tolist()))
        shapes.append((body, base))
    return shapes


class BarIndex:
    """Runs of bars of a set of pieces, to find how many bars in a row a new piece copies
    note for note from any of them, transposed or not (its memorisation)."""

    def __init__(self, longest: int = 16):
        self.longest = longest
        self._runs: set[int] = set()

    @staticmethod
    def _keys(shapes: list[tuple | None], i: int, longest: int) -> Iterable[tuple[int, int]]:
        """(length, hash) of the runs starting at bar i, while every bar in them has an onset."""
        h, base = 0, None
        for n in range(longest):
            if i + n >= len(shapes) or shapes[i + n] is None:
                return
            body, low = shapes[i + n]  # type: ignore[misc]
            step = 0 if base is None else low - base
            base = low
            h = hash((h, body, step))
            yield n + 1, h

    def add(self, notes: Notes, bar_starts: Sequence[int]) -> None:
        shapes = _bar_shapes(notes, bar_starts)
        for i in range(len(shapes)):
            self._runs.update(h for _, h in self._keys(shapes, i, self.longest))

    def longest_copy(self, notes: Notes, bar_starts: Sequence[int]) -> int:
        """The most bars in a row of `notes` found in a run of an indexed piece."""
        shapes = _bar_shapes(notes, bar_starts)
        best = 0
        for i in range(len(shapes)):
            for n, h in self._keys(shapes, i, self.longest):
                if h not in self._runs:
                    break
                best = max(best, n)
        return best
