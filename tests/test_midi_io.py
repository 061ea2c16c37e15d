"""midi_io: reading any score, clean export (MIDI notes equal the score's notes), errors."""

from __future__ import annotations

import pytest
import symusic

from musicgpt import midi_io
from musicgpt.cli import main
from musicgpt.config import VOICE_PROGRAMS
from musicgpt.errors import MusicGPTError


def _score(tracks: list[tuple[bool, list[tuple[int, int, int]]]]) -> symusic.Score:
    s = symusic.Score(480)
    for is_drum, notes in tracks:
        t = symusic.Track(program=0, is_drum=is_drum)
        for time, dur, pitch in notes:
            t.notes.append(symusic.Note(time, dur, pitch, 80))
        s.tracks.append(t)
    return s


def test_missing_file(tmp_path):
    with pytest.raises(MusicGPTError, match="no such file"):
        midi_io.load_score(tmp_path / "nope.mid")


def test_text_named_mid(tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_text("this is not MIDI\n" * 10)
    with pytest.raises(MusicGPTError, match="not a readable MIDI file"):
        midi_io.load_score(bad)


def test_unknown_extension(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("C D E")
    with pytest.raises(MusicGPTError, match="unknown file type"):
        midi_io.load_score(f)


def test_empty_and_drum_only_midi(tmp_path):
    empty, drums = tmp_path / "empty.mid", tmp_path / "drums.mid"
    midi_io.write_midi(_score([]), empty)
    midi_io.write_midi(_score([(True, [(0, 480, 36), (480, 480, 38)])]), drums)
    for path in (empty, drums):
        with pytest.raises(MusicGPTError, match="no pitched notes"):
            midi_io.load_score(path)


def test_drums_dropped_and_programs_assigned(tmp_path):
    s = _score([
        (False, [(0, 480, 48), (480, 480, 50)]),  # low voice first in the file
        (True, [(0, 480, 36)]),
        (False, [(0, 960, 72)]),
    ])
    path = tmp_path / "mix.mid"
    midi_io.write_midi(s, path)
    loaded = midi_io.load_score(path)
    assert len(loaded.tracks) == 2
    voiced = midi_io.assign_voice_programs(loaded)
    assert [t.program for t in voiced.tracks] == list(VOICE_PROGRAMS[:2])
    assert voiced.tracks[0].notes[0].pitch == 72  # top voice first


def test_more_tracks_than_programs_merge_into_last():
    n = len(VOICE_PROGRAMS) + 2
    s = _score([(False, [(0, 480, 90 - 3 * i)]) for i in range(n)])
    voiced = midi_io.assign_voice_programs(s)
    assert len(voiced.tracks) == len(VOICE_PROGRAMS)
    assert voiced.note_num() == n
    assert len(voiced.tracks[-1].notes) == 3


def test_cli_error_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.mid"
    bad.write_text("not midi")
    # any CLI command that reads a score goes through load_score; exercise it via corpus build --from
    # (covered in test_corpora); here check the library message is a single line
    with pytest.raises(MusicGPTError) as err:
        midi_io.load_score(bad)
    assert "\n" not in str(err.value)
