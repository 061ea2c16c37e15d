"""Pitch names, the diatonic modes and the final-note rule, on tiny scores counted by hand."""

import numpy as np
import pytest
import symusic

from musicgpt.config import MODES
from musicgpt.errors import MusicGPTError
from musicgpt.theory import (
    LETTERS,
    MAJOR_THIRD,
    MODE_SCALES,
    MODE_STEPS,
    PITCH_CLASSES,
    PREFERENCE,
    ROTATION,
    best_scale,
    final_bass_pc,
    keysig_tonic,
    pc_histogram,
    pitch_class,
    scale_fits,
)


def _score(notes: list[tuple[int, int, int]], tracks: int = 1) -> symusic.Score:
    """(time, duration, pitch) notes dealt round-robin to `tracks` tracks."""
    s = symusic.Score(480)
    for _ in range(tracks):
        s.tracks.append(symusic.Track(program=16))
    for i, (t, d, p) in enumerate(notes):
        s.tracks[i % tracks].notes.append(symusic.Note(t, d, p, 80))
    return s


def test_pitch_names_spell_every_class_once_and_read_back():
    assert len(set(PITCH_CLASSES)) == 12
    assert [pitch_class(n) for n in PITCH_CLASSES] == list(range(12))
    assert [LETTERS[c] for c in "CDEFGAB"] == [0, 2, 4, 5, 7, 9, 11]


def test_pitch_class_reads_sharps_flats_and_music21_spellings():
    assert pitch_class("D") == 2
    assert pitch_class("F#") == pitch_class("F♯") == pitch_class("Gb") == 6
    assert pitch_class("Bb") == pitch_class("A#") == pitch_class("B-") == pitch_class("b♭") == 10
    assert pitch_class("Cb") == 11 and pitch_class("B#") == 0
    for bad in ("H", "", "C4", "Dx"):
        with pytest.raises(MusicGPTError, match="not a pitch name"):
            pitch_class(bad)


def test_modes_are_the_rotations_of_the_major_scale():
    assert list(MODE_STEPS) == list(MODES[:7])
    assert MODE_STEPS["ionian"] == (0, 2, 4, 5, 7, 9, 11)
    assert MODE_STEPS["dorian"] == (0, 2, 3, 5, 7, 9, 10)
    assert MODE_STEPS["aeolian"] == (0, 2, 3, 5, 7, 8, 10)
    assert MODE_STEPS["locrian"] == (0, 1, 3, 5, 6, 8, 10)
    assert all(MODE_SCALES[m] == frozenset(s) for m, s in MODE_STEPS.items())
    # the final of each rotation, above the major tonic, has that mode's scale
    for offset, mode in ROTATION.items():
        assert {(offset + s) % 12 for s in MODE_STEPS[mode]} == set(MODE_STEPS["ionian"])
    assert MAJOR_THIRD == {"ionian", "lydian", "mixolydian"}
    assert sorted(PREFERENCE) == sorted(MODE_STEPS)


def test_key_signature_tonic():
    assert keysig_tonic(0) == 0 and keysig_tonic(3) == 9 and keysig_tonic(-1) == 5 and keysig_tonic(-6) == 6


def test_final_bass_pc_is_the_lowest_note_sounding_at_the_last_onset():
    # a held bass D under a last melody note A: the held note counts
    s = _score([(0, 1920, 50), (0, 960, 62), (960, 960, 69)], tracks=2)
    assert final_bass_pc(s) == 2
    # a bass that stopped before the last onset does not
    s = _score([(0, 480, 43), (960, 480, 64)], tracks=2)
    assert final_bass_pc(s) == 4
    # a zero-length last note still sounds for the rule
    assert final_bass_pc(_score([(0, 480, 60), (480, 0, 55)])) == 7
    assert final_bass_pc(symusic.Score(480)) is None


def test_histogram_fits_and_the_tie_break():
    s = _score([(0, 960, 62), (960, 480, 64), (1440, 480, 65)])
    assert pc_histogram(s).tolist() == [0, 0, 960, 0, 480, 480] + [0] * 6
    # a D tune without its sixth is both dorian and aeolian: the commoner (aeolian) wins
    no_sixth = np.zeros(12)
    no_sixth[[2, 4, 5, 7, 9, 0]] = 1.0
    fits = scale_fits(no_sixth, 2)
    assert fits["dorian"] == fits["aeolian"] == 1.0
    assert best_scale(fits) == "aeolian"
    major = np.zeros(12)
    major[list(MODE_STEPS["ionian"])] = 1.0
    assert best_scale(scale_fits(major, 0)) == "ionian"
    assert best_scale(scale_fits(major, 2)) == "dorian"
