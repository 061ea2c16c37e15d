import pytest

from musicgpt.errors import MusicGPTError
from musicgpt.notestring import looks_like_notes, parse_notes
from musicgpt.theory import TICKS_PER_QUARTER as TPQ


def notes(score):
    return [(n.time, n.duration, n.pitch) for t in score.tracks for n in t.notes]


def test_default_quarters_then_half():
    s = parse_notes("C4 D4 E4 F4 G4:h")
    q = TPQ
    assert notes(s) == [(0, q, 60), (q, q, 62), (2 * q, q, 64), (3 * q, q, 65), (4 * q, 2 * q, 67)]


def test_durations_stick_and_dots_chords_rests_meter():
    s = parse_notes("3/4 G4:q. A4:e B4 R:q C#5+Eb5:1.5")
    ts = s.time_signatures[0]
    assert (ts.numerator, ts.denominator) == (3, 4)
    q = TPQ
    assert notes(s) == [(0, q * 3 // 2, 67), (q * 3 // 2, q // 2, 69), (2 * q, q // 2, 71),
                        (7 * q // 2, q * 3 // 2, 73), (7 * q // 2, q * 3 // 2, 75)]


@pytest.mark.parametrize("bad", ["X4", "C4:x", "C4:0", "R R", "", "C99"])
def test_bad_strings_raise_clear_errors(bad):
    with pytest.raises(MusicGPTError):
        parse_notes(bad)


def test_a_note_too_short_to_write_and_a_broken_chord_are_named():
    with pytest.raises(MusicGPTError, match="too short"):
        parse_notes("C4:0.001 D4")  # under one tick: it would vanish from the output
    with pytest.raises(MusicGPTError, match="bad chord 'C4\\+'"):
        parse_notes("C4+ D4")


def test_note_strings_are_told_from_file_names():
    assert looks_like_notes("C4 D4 E4")
    assert looks_like_notes("3/4 G4")
    assert looks_like_notes("C4,D4,E4") and looks_like_notes("C4, D4, E4")
    assert not looks_like_notes("chorale.mid")
    assert not looks_like_notes("my_theme.xml")


def test_german_h_is_b_natural_and_bar_lines_are_checked_against_the_meter():
    assert [p for _, _, p in notes(parse_notes("H3 C4 H4"))] == [59, 60, 71]
    s = parse_notes("3/4 C4 D4 E4 | F4:h. |: G4 A4 H4 :| C5:h.||")
    assert [p for _, _, p in notes(s)] == [60, 62, 64, 65, 67, 69, 71, 72]
    assert parse_notes("C4 D4 E4 F4|G4:w").tracks[0].notes[-1].time == 4 * TPQ
    with pytest.raises(MusicGPTError, match="bar line falls 3 quarter notes into a bar of 4/4"):
        parse_notes("C4 D4 E4 | F4")


def test_a_mistyped_note_string_is_called_a_note_string_not_a_missing_file():
    assert looks_like_notes("C D E F G") and looks_like_notes("H4 D4") and looks_like_notes("| C4")
    with pytest.raises(MusicGPTError, match="not a note: C \\(it has no octave\\)"):
        parse_notes("C D E F G")
    with pytest.raises(MusicGPTError, match="not a note: X4"):
        parse_notes("C4 X4")
