"""render: audio that has the right pitch and timing, a PNG that decodes to what was drawn, a
MusicXML score that keeps every note of a real chorale, and the `musicgpt render` command."""

from __future__ import annotations

import collections
import struct
import wave
import zlib

import numpy as np
import pytest
import symusic
from music21 import converter, corpus

from musicgpt.cli import main
from musicgpt.rendering import audio as sound
from musicgpt.rendering import pianoroll
from musicgpt.rendering.score import write_musicxml
from musicgpt.scores import load_score, write_midi


def _one_note(pitch: int = 69, start_q: float = 0.0, quarters: float = 2.0, qpm: float = 120.0
              ) -> symusic.Score:
    s = symusic.Score(480)
    s.tempos.append(symusic.Tempo(0, qpm))
    t = symusic.Track(program=16)
    t.notes.append(symusic.Note(int(start_q * 480), int(quarters * 480), pitch, 100))
    s.tracks.append(t)
    return s


@pytest.fixture(scope="module")
def chorale() -> symusic.Score:
    return load_score(corpus.getWork("bach/bwv66.6"))


def decode_png(data: bytes) -> np.ndarray:
    """A minimal PNG reader for what encode_png writes (8-bit RGB, filter 0), checking CRCs."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        (crc,) = struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])
        assert crc == zlib.crc32(tag + body), tag
        chunks[tag] = body
        pos += 12 + n
    w, h, depth, colour, _, _, _ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2)
    raw = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + 3 * w)
    assert (raw[:, 0] == 0).all()
    return raw[:, 1:].reshape(h, w, 3)


def test_a4_sounds_at_440_hz_and_starts_and_ends_silent():
    sr = 16000
    audio = sound.synthesize(_one_note(69, quarters=2.0, qpm=120.0), sr)  # 2 quarters = 1 s
    assert len(audio) == pytest.approx((1.0 + sound.RELEASE_S) * sr, abs=3)
    assert np.abs(audio).max() == pytest.approx(0.9, abs=1e-3)
    assert abs(audio[0]) < 0.01 and abs(audio[-1]) < 0.01  # attack and release: no clicks
    spectrum = np.abs(np.fft.rfft(audio[:sr]))
    assert np.fft.rfftfreq(sr, 1 / sr)[spectrum.argmax()] == pytest.approx(440, abs=2)


def test_the_tempo_map_places_notes_in_seconds():
    sr = 8000
    audio = sound.synthesize(_one_note(60, start_q=4.0, quarters=1.0, qpm=60.0), sr)  # starts at 4 s
    loud = np.flatnonzero(np.abs(audio) > 0.05)
    assert loud[0] / sr == pytest.approx(4.0, abs=0.02)
    assert loud[-1] / sr == pytest.approx(5.0 + sound.RELEASE_S, abs=0.05)


def test_wav_of_a_chorale_parses(tmp_path, chorale):
    path = tmp_path / "c.wav"
    sound.write_wav(sound.synthesize(chorale, 8000), path, 8000)
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        seconds = w.getnframes() / 8000
    assert seconds == pytest.approx(chorale.to("second").end() + sound.RELEASE_S, abs=0.01)


def test_piano_roll_png_decodes_to_the_notes_drawn(tmp_path):
    s = _one_note(60, start_q=1.0, quarters=2.0)
    s.tracks.append(symusic.Track(program=17))
    s.tracks[1].notes.append(symusic.Note(0, 480, 67, 100))
    img = pianoroll.piano_roll(s, px_per_quarter=20, px_per_semitone=4, marks=[480])
    path = tmp_path / "r.png"
    pianoroll.write_png(img, path)
    back = decode_png(path.read_bytes())
    assert (back == img).all()
    # pitch 67 is the top note: hi = 69, so its band starts 2 semitones down; the margin is 10 px
    y67, y60 = (69 - 67) * 4 + 1, (69 - 60) * 4 + 1
    assert tuple(back[y67, 10 + 10]) == tuple(pianoroll.PALETTE[1])   # track 1, first quarter
    assert tuple(back[y60, 10 + 30]) == tuple(pianoroll.PALETTE[0])   # track 0, from quarter 1
    assert tuple(back[y60, 10 + 5]) != tuple(pianoroll.PALETTE[0])    # before its onset: no note
    assert (back[:, 10 + 20 - 1:10 + 20 + 1] == 0).any()            # the dashed mark at tick 480


def test_each_c_is_named_in_the_margin():
    img = pianoroll.piano_roll(_one_note(60), px_per_semitone=5)  # rows for pitches 62 down to 58
    band = img[(62 - 60) * 5:(62 - 60) * 5 + 5]                  # the C4 row
    assert ((band[:, 1:4, 0] == 60) == pianoroll.GLYPHS["C"]).all()
    assert ((band[:, 5:8, 0] == 60) == pianoroll.GLYPHS["4"]).all()
    assert not (img[:(62 - 60) * 5, :9] == 60).any()             # no other label


def test_bar_lines_follow_time_signature_changes():
    s = _one_note(48, quarters=11.0)  # pitch 48: the note's band is the bottom rows
    s.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    s.time_signatures.append(symusic.TimeSignature(480 * 4, 3, 4))
    img = pianoroll.piano_roll(s, px_per_quarter=10, px_per_semitone=4)
    grey = [x for x in range(img.shape[1]) if tuple(img[0, x]) == (170, 170, 170)]
    assert grey == [10 + 10 * q for q in (0, 4, 7, 10)]  # 4/4, then 3/4 bars; 10 px margin


def test_musicxml_keeps_every_note_of_a_chorale(tmp_path, chorale):
    path = tmp_path / "c.musicxml"
    write_musicxml(chorale, path)
    m = converter.parse(str(path)).stripTies()
    assert [p.partName for p in m.parts] == ["Soprano", "Alto", "Tenor", "Bass"]
    tpq = chorale.ticks_per_quarter
    want = collections.Counter((n.time / tpq, n.pitch) for t in chorale.tracks for n in t.notes)
    got = collections.Counter((float(n.getOffsetInHierarchy(m)), p.midi)
                              for n in m.recurse().notes for p in n.pitches)
    assert got == want


def test_render_command_writes_all_three_and_reports_bad_files(tmp_path, chorale, capsys):
    midi = tmp_path / "bwv66.mid"
    write_midi(chorale, midi)
    bad = tmp_path / "text.mid"
    bad.write_text("not a MIDI file\n")
    out = tmp_path / "out"
    code = main(["render", str(midi), str(bad), str(tmp_path / "missing.mid"), "--out-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 1
    assert sorted(p.name for p in out.iterdir()) == ["bwv66.musicxml", "bwv66.png", "bwv66.wav"]
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("musicgpt: error:") for e in errors)
    assert "not a readable MIDI" in errors[0] and "no such file" in errors[1]
    assert "Traceback" not in captured.err
    assert "s of audio" in captured.out


def test_render_one_kind_and_never_over_the_input(tmp_path, chorale, capsys):
    xml = tmp_path / "c.musicxml"
    write_musicxml(chorale, xml)
    before = xml.read_bytes()
    assert main(["render", str(xml), "--score"]) == 1
    assert "would overwrite" in capsys.readouterr().err
    assert xml.read_bytes() == before
    assert main(["render", str(xml), "--wav", "--sample-rate", "100"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["render", str(xml), "--wav", "--sample-rate", "10000000"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert main(["render", str(xml), "--roll", "--bars", "2"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.musicxml", "c.png"]
    img = decode_png((tmp_path / "c.png").read_bytes())
    assert img.shape[1] == 2 * 10 + 2 * 4 * 24 + 1  # two 4/4 bars at 24 px a quarter, margins
    # every kind asked for: the audio and the roll are written, the score is not, and it says so
    assert main(["render", str(xml), "--bars", "2"]) == 0
    assert "not writing " + str(xml) in capsys.readouterr().err
    assert xml.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.musicxml", "c.png", "c.wav"]


def test_render_refuses_music_too_long_or_too_large_before_making_anything(tmp_path, capsys):
    import symusic

    from musicgpt.scores import write_midi

    score = symusic.Score(480)
    track = symusic.Track(program=0)
    track.notes.append(symusic.Note(0, 480 * 200_000, 60, 80))  # one note of about 28 hours
    score.tracks.append(track)
    write_midi(score, tmp_path / "long.mid")
    assert main(["render", str(tmp_path / "long.mid"), "--wav"]) == 1
    assert "more than the 3600 s of audio one render makes" in capsys.readouterr().err
    assert main(["render", str(tmp_path / "long.mid"), "--score", "--max-notes", "0"]) == 1
    assert "raise --max-notes" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.mid"]


def test_two_files_with_one_name_are_not_rendered_over_each_other(tmp_path, chorale, capsys):
    from musicgpt.scores import write_midi

    write_midi(chorale, tmp_path / "song.mid")
    write_midi(chorale, tmp_path / "song.midi")
    assert main(["render", str(tmp_path / "song.mid"), str(tmp_path / "song.midi"), "--roll"]) == 1
    assert "would overwrite those of" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["song.mid", "song.midi", "song.png"]
