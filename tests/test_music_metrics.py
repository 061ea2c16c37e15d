"""The continuation figures on real scores: MusPy's definitions where MusPy has the metric
(checked against MusPy itself), and the others on cases whose answer is known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import symusic

from musicgpt.evaluation.music import (
    BarIndex,
    Notes,
    cardinality_score,
    groove_consistency,
    groove_similarity,
    in_scale_rate,
    onset_patterns,
    pc_distance,
    silent_bars,
)
from musicgpt.scores import load_score, normalize, write_midi

SRC = Path(__file__).parent / "fixtures" / "golden" / "src"
SCORES = [SRC / "chorales" / "bwv66.6.mxl", SRC / "Agnus_01.krn", SRC / "AmateurHornpipe.abc"]


@pytest.fixture(scope="module", params=SCORES, ids=lambda p: p.name)
def real(request, tmp_path_factory) -> tuple[symusic.Score, Path]:
    score = normalize(load_score(request.param))
    path = tmp_path_factory.mktemp("m") / "piece.mid"
    write_midi(score, path)
    return symusic.Score(str(path)), path


def test_in_scale_rate_and_groove_consistency_are_muspys(real):
    muspy = pytest.importorskip("muspy")
    score, path = real
    music = muspy.read_midi(str(path))
    notes = Notes.of(score)
    for root in range(12):
        assert in_scale_rate(notes, root, "ionian") == pytest.approx(
            muspy.pitch_in_scale_rate(music, root, "major"))
        assert in_scale_rate(notes, root, "aeolian") == pytest.approx(
            muspy.pitch_in_scale_rate(music, root, "minor"))
    bar = 4 * score.ticks_per_quarter
    n = int((notes.onset + notes.dur).max()) // bar + 1
    patterns = onset_patterns(notes, list(range(0, (n + 1) * bar, bar)), grid=1)
    assert groove_consistency(patterns) == pytest.approx(muspy.groove_consistency(music, bar))


def test_a_piece_against_itself_and_against_its_transposition(real):
    score, _ = real
    notes = Notes.of(score)
    bar = 4 * score.ticks_per_quarter
    starts = list(range(0, 9 * bar, bar))
    up = Notes(notes.onset, notes.dur, notes.pitch + 2, notes.voice)
    assert pc_distance(notes, notes) == 0.0 and pc_distance(notes, up) > 0.1
    pat = onset_patterns(notes, starts, grid=40)
    assert groove_similarity(pat, pat) == 1.0
    late = Notes(notes.onset + 40 * 3, notes.dur, notes.pitch, notes.voice)  # an eighth later
    assert groove_similarity(pat, onset_patterns(late, starts, grid=40)) < 0.9
    tpq = score.ticks_per_quarter
    scores = [v for v in cardinality_score(notes, notes, 0, tpq).values() if not np.isnan(v)]
    assert len(scores) >= 6 and all(v == pytest.approx(1.0) for v in scores)  # NaN: no notes yet
    # the cardinality score forgives one translation in time and pitch
    moved = Notes(notes.onset + tpq, notes.dur, notes.pitch + 5, notes.voice)
    shifted = cardinality_score(notes, moved, 0, tpq, beats=[8])[8]
    scrambled = Notes(notes.onset, notes.dur, notes.pitch[::-1].copy(), notes.voice)
    assert shifted > 0.6 and cardinality_score(notes, scrambled, 0, tpq, beats=[8])[8] < shifted
    index = BarIndex()
    index.add(notes, starts)
    assert index.longest_copy(notes, starts) == sum(1 for _ in _runs_with_onsets(notes, starts))
    assert index.longest_copy(up, starts) == index.longest_copy(notes, starts)  # transposed
    assert index.longest_copy(scrambled, starts) < index.longest_copy(notes, starts)


def _runs_with_onsets(notes: Notes, starts: list[int]):
    """The leading bars of `starts` that hold an onset (a copied run stops at an empty bar)."""
    for lo, hi in zip(starts[:-1], starts[1:]):
        if not np.any((notes.onset >= lo) & (notes.onset < hi)):
            return
        yield lo


def test_silent_bars_count_bars_nothing_sounds_in():
    tpq = 480
    bar = 4 * tpq
    # a whole note in bar 0 held into bar 1, nothing in bar 2, a note in bar 3
    notes = Notes(np.array([0, 3 * bar]), np.array([bar + tpq, tpq]), np.array([60, 62]), np.array([16, 16]))
    assert silent_bars(notes, [0, bar, 2 * bar, 3 * bar, 4 * bar]) == 1
    assert in_scale_rate(notes, 0, "ionian") == 1.0 and np.isnan(in_scale_rate(notes, 0, "other"))
