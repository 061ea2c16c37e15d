"""Baselines and features, on real scores from music21's bundled corpus and tiny made-up ones."""

import numpy as np
import pytest
import symusic
from music21 import corpus

from musicgpt.config import MODES
from musicgpt.errors import MusicGPTError
from musicgpt.evaluation.baselines import (
    CHANNELS,
    KeyLR,
    SoftmaxLR,
    final_scale_rule,
    music21_key,
    pitch_profiles,
    style_features,
    style_stats,
)
from musicgpt.evaluation.metrics import accuracy
from musicgpt.scores import load_score, write_midi

MAJOR = (0, 2, 4, 5, 7, 9, 11)


@pytest.fixture(scope="module")
def chorale() -> symusic.Score:
    return load_score(corpus.getWork("bach/bwv66.6"))  # F# minor, ends on an F# chord


@pytest.fixture(scope="module")
def palestrina() -> symusic.Score:
    return load_score(sorted(corpus.getComposer("palestrina"))[5])


def melody(tonic: int, mode: str, bars: int = 4, seed: int = 0) -> symusic.Score:
    """A one-voice tune on a diatonic scale that starts and ends on its tonic."""
    rng = np.random.default_rng(seed)
    k = MODES.index(mode)
    scale = [(MAJOR[(k + i) % 7] - MAJOR[k]) % 12 for i in range(7)]
    degrees = [0] + list(rng.integers(0, 7, size=4 * bars - 2)) + [0]
    score = symusic.Score(480)
    track = symusic.Track(program=16)
    for i, d in enumerate(degrees):
        track.notes.append(symusic.Note(i * 480, 480, 60 + tonic + scale[d], 80))
    score.tracks.append(track)
    return score


def test_profiles_of_a_chorale(chorale):
    p = pitch_profiles(chorale)
    assert p.shape == (len(CHANNELS), 12)
    assert np.isclose(p[0].sum(), 1.0) and np.isclose(p[1].sum(), 1.0)
    assert p[CHANNELS.index("final")].argmax() == 6  # the final chord's bass is F#
    assert style_stats(chorale).shape == (10,)


def test_empty_score_is_a_clear_error():
    with pytest.raises(MusicGPTError, match="no pitched notes"):
        pitch_profiles(symusic.Score(480))


@pytest.mark.parametrize("shift", [6, -5, 1])
def test_final_rule_is_transposition_invariant(chorale, palestrina, shift):
    for score in (chorale, palestrina):
        t0, m0 = final_scale_rule(pitch_profiles(score)[None])
        t1, m1 = final_scale_rule(pitch_profiles(score.shift_pitch(shift))[None])
        assert m1[0] == m0[0]
        assert t1[0] == (t0[0] + shift) % 12


def test_final_rule_names_the_scale():
    t, m = final_scale_rule(pitch_profiles(melody(2, "dorian", bars=8))[None])
    assert (t[0], MODES[m[0]]) == (2, "dorian")


def test_key_lr_learns_modes_and_is_equivariant(chorale, palestrina):
    modes = ("ionian", "dorian", "mixolydian", "aeolian")
    train = [(melody(t, m, 8, seed=s), t, MODES.index(m))
             for s, (t, m) in enumerate((t, m) for t in range(12) for m in modes)]
    X = np.stack([pitch_profiles(s) for s, _, _ in train])
    lr = KeyLR().fit(X, np.array([t for _, t, _ in train]), np.array([m for _, _, m in train]))
    test = [(melody(t, m, 8, seed=100 + i), t, MODES.index(m))
            for i, (t, m) in enumerate((t, m) for t in (1, 4, 11) for m in modes)]
    P = lr.predict_proba(np.stack([pitch_profiles(s) for s, _, _ in test]))
    assert P.shape == (len(test), 12, len(MODES))
    assert accuracy([m for _, _, m in test], P.sum(1).argmax(1)) >= 0.9
    # a tritone transposition of a real score: same mode, tonic moved by 6, same probabilities
    for score in (chorale, palestrina):
        p0 = lr.predict_proba(pitch_profiles(score)[None])[0]
        p6 = lr.predict_proba(pitch_profiles(score.shift_pitch(6))[None])[0]
        assert p6.sum(0).argmax() == p0.sum(0).argmax()
        assert p6.sum(1).argmax() == (p0.sum(1).argmax() + 6) % 12
        assert np.allclose(np.roll(p0, 6, axis=0), p6, atol=1e-9)


def test_style_lr_separates_textures(chorale, palestrina):
    scores = [chorale, palestrina, melody(0, "ionian", 8), melody(5, "dorian", 8, seed=3)]
    prof = np.stack([pitch_profiles(s) for s in scores])
    X = style_features(prof, np.stack([style_stats(s) for s in scores]), np.zeros(4, dtype=int))
    y = np.array([0, 0, 1, 1])
    lr = SoftmaxLR(2).fit(X, y)
    assert accuracy(y, lr.predict_proba(X).argmax(1)) == 1.0


def test_music21_key_on_midi(chorale, tmp_path):
    path = tmp_path / "chorale.mid"
    write_midi(chorale, path)
    assert music21_key(path) == (6, MODES.index("aeolian"))
