"""Pitch names, the diatonic modes and the final-note rule, on tiny scores counted by hand."""

import numpy as np
import pytest
import symusic

from musicgpt import theory
from musicgpt.config import MODES
from musicgpt.errors import MusicGPTError


def _score(notes: list[tuple[int, int, int]], tracks: int = 1) -> symusic.Score:
    """(time, duration, pitch) notes dealt round-robin to `tracks` tracks."""
    s = symusic.Score(480)
    for _ in range(tracks):
        s.tracks.append(symusic.Track(program=16))
    for i, (t, d, p) in enumerate(notes):
        s.tracks[i % tracks].notes.append(symusic.Note(t, d, p, 80))
    return s


def test_pitch_names_spell_every_class_once_and_read_back():
    assert len(set(theory.PITCH_CLASSES)) == 12
    assert [theory.pitch_class(n) for n in theory.PITCH_CLASSES] == list(range(12))
    assert [theory.LETTERS[c] for c in "CDEFGAB"] == [0, 2, 4, 5, 7, 9, 11]


def test_pitch_class_reads_sharps_flats_and_music21_spellings():
    assert theory.pitch_class("D") == 2
    assert theory.pitch_class("F#") == theory.pitch_class("F♯") == theory.pitch_class("Gb") == 6
    assert {theory.pitch_class(n) for n in ("Bb", "A#", "B-", "b♭")} == {10}
    assert theory.pitch_class("Cb") == 11 and theory.pitch_class("B#") == 0
    for bad in ("H", "", "C4", "Dx"):
        with pytest.raises(MusicGPTError, match="not a pitch name"):
            theory.pitch_class(bad)


def test_modes_are_the_rotations_of_the_major_scale():
    assert list(theory.MODE_STEPS) == list(MODES[:7])
    assert theory.MODE_STEPS["ionian"] == (0, 2, 4, 5, 7, 9, 11)
    assert theory.MODE_STEPS["dorian"] == (0, 2, 3, 5, 7, 9, 10)
    assert theory.MODE_STEPS["aeolian"] == (0, 2, 3, 5, 7, 8, 10)
    assert theory.MODE_STEPS["locrian"] == (0, 1, 3, 5, 6, 8, 10)
    assert all(theory.MODE_SCALES[m] == frozenset(s) for m, s in theory.MODE_STEPS.items())
    # the final of each rotation, above the major tonic, has that mode's scale
    for offset, mode in theory.ROTATION.items():
        assert {(offset + s) % 12 for s in theory.MODE_STEPS[mode]} == set(theory.MODE_STEPS["ionian"])
    assert theory.MAJOR_THIRD == {"ionian", "lydian", "mixolydian"}
    assert sorted(theory.PREFERENCE) == sorted(theory.MODE_STEPS)


def test_key_signature_tonic():
    assert [theory.keysig_tonic(k) for k in (0, 3, -1, -6)] == [0, 9, 5, 6]


def test_final_bass_pc_is_the_lowest_note_sounding_at_the_last_onset():
    # a held bass D under a last melody note A: the held note counts
    s = _score([(0, 1920, 50), (0, 960, 62), (960, 960, 69)], tracks=2)
    assert theory.final_bass_pc(s) == 2
    # a bass that stopped before the last onset does not
    s = _score([(0, 480, 43), (960, 480, 64)], tracks=2)
    assert theory.final_bass_pc(s) == 4
    # a zero-length last note still sounds for the rule
    assert theory.final_bass_pc(_score([(0, 480, 60), (480, 0, 55)])) == 7
    assert theory.final_bass_pc(symusic.Score(480)) is None


def test_histogram_fits_and_the_tie_break():
    s = _score([(0, 960, 62), (960, 480, 64), (1440, 480, 65)])
    assert theory.pc_histogram(s).tolist() == [0, 0, 960, 0, 480, 480] + [0] * 6
    # a D tune without its sixth is both dorian and aeolian: the commoner (aeolian) wins
    no_sixth = np.zeros(12)
    no_sixth[[2, 4, 5, 7, 9, 0]] = 1.0
    fits = theory.scale_fits(no_sixth, 2)
    assert fits["dorian"] == fits["aeolian"] == 1.0
    assert theory.best_scale(fits) == "aeolian"
    major = np.zeros(12)
    major[list(theory.MODE_STEPS["ionian"])] = 1.0
    assert theory.best_scale(theory.scale_fits(major, 0)) == "ionian"
    assert theory.best_scale(theory.scale_fits(major, 2)) == "dorian"


def test_estimate_key_finds_scales_and_tonics():
    import numpy as np

    from musicgpt.theory import MODE_STEPS, estimate_key

    for tonic, mode in ((0, "ionian"), (2, "dorian"), (9, "aeolian"), (7, "mixolydian")):
        hist = np.zeros(12)
        for s in MODE_STEPS[mode]:
            hist[(tonic + s) % 12] += 1.0
        hist[tonic] += 3.0  # the tonic and its fifth stressed, as a tune does
        hist[(tonic + 7) % 12] += 1.5
        assert estimate_key(hist, first_bass=tonic) == (tonic, mode)
    with pytest.raises(MusicGPTError):
        estimate_key(np.zeros(12))
