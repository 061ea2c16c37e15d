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
    # pitch 67 is the top note: hi = 69, so its band starts 2 semitones down, below the bar numbers
    top, left = pianoroll.STRIP, pianoroll.LEFT
    y67, y60 = top + (69 - 67) * 4 + 1, top + (69 - 60) * 4 + 1
    assert tuple(back[y67, left + 10]) == tuple(pianoroll.PALETTE[1])   # track 1, first quarter
    assert tuple(back[y60, left + 30]) == tuple(pianoroll.PALETTE[0])   # track 0, from quarter 1
    assert tuple(back[y60, left + 5]) != tuple(pianoroll.PALETTE[0])    # before its onset: no note
    assert (back[top:, left + 20 - 1:left + 20 + 1] == 0).any()        # the dashed mark at tick 480


def _label(img: np.ndarray, y: int, x: int, text: str, grey: int) -> bool:
    """Whether `text` is drawn in `grey` with its top-left corner at (y, x)."""
    for k, ch in enumerate(text):
        cell = img[y:y + pianoroll.GLYPH_H, x + k * pianoroll.GLYPH_W:x + k * pianoroll.GLYPH_W + 5, 0]
        if not ((cell == grey) == pianoroll.GLYPHS[ch]).all():
            return False
    return True


def test_every_pitch_is_named_at_the_left_and_each_c_stands_out():
    img = pianoroll.piano_roll(_one_note(61), px_per_semitone=10)  # rows for pitches 63 down to 59
    top = pianoroll.STRIP
    for row, name in enumerate(["Eb4", "D4", "C#4", "C4", "B3"]):  # the package's spellings
        grey = pianoroll.C_LABEL if name == "C4" else pianoroll.LABEL
        assert _label(img, top + row * 10 + 1, 2, name, grey), name
    small = pianoroll.piano_roll(_one_note(61), px_per_semitone=5)  # too small for every name
    c4 = top + (63 - 60) * 5 + 5 - pianoroll.GLYPH_H  # bottom-aligned in its row
    assert _label(small, c4, 2, "C4", pianoroll.C_LABEL)
    assert (small[top:, :pianoroll.LEFT] == pianoroll.LABEL).sum() == 0  # no other name


def test_bar_lines_and_numbers_follow_time_signature_changes():
    s = _one_note(48, quarters=11.0)  # pitch 48: the note's band is the bottom rows
    s.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    s.time_signatures.append(symusic.TimeSignature(480 * 4, 3, 4))
    img = pianoroll.piano_roll(s, px_per_quarter=10, px_per_semitone=4)
    top, left = pianoroll.STRIP, pianoroll.LEFT
    grey = [x for x in range(img.shape[1]) if tuple(img[top, x]) == (170, 170, 170)]
    assert grey == [left + 10 * q for q in (0, 4, 7, 10)]  # 4/4, then 3/4 bars
    for number, q in enumerate((0, 4, 7, 10), start=1):  # each bar's number above its line
        assert _label(img, 1, left + 10 * q + 2, str(number), pianoroll.C_LABEL)


@pytest.fixture(scope="module")
def credo() -> symusic.Score:
    """Palestrina's Credo from music21's corpus: 125 bars of 4/2, 1,000 quarter notes."""
    return load_score(corpus.getWork("palestrina/Credo_00"))


def test_a_long_piece_wraps_into_systems_of_whole_bars(credo):
    from miditok.utils import get_bars_ticks

    img = pianoroll.piano_roll(credo)
    assert img.shape[1] <= 2000 and img.shape[0] <= 12000  # not a strip 24,000 px wide
    bars = get_bars_ticks(credo)
    content = 2000 - pianoroll.LEFT - pianoroll.RIGHT - 1
    rows = pianoroll.systems(bars, credo.end(), credo.ticks_per_quarter, 24, content)
    assert len(rows) == 13  # 125 bars of 192 px: ten to a system
    assert all(t0 in bars for t0, _ in rows) and rows[-1][1] == credo.end()
    blocks = img.shape[0] - (len(rows) - 1) * pianoroll.GAP
    assert blocks % len(rows) == 0  # the systems, one under another, each as high as the others
    # the first system's bar numbers are 1 to 10, the second's begin at 11
    second = blocks // len(rows) + pianoroll.GAP
    assert _label(img, second + 1, pianoroll.LEFT + 2, "11", pianoroll.C_LABEL)
    # a huge piece still fits: px_per_quarter shrinks instead of the image growing without end
    huge = pianoroll.piano_roll(credo, max_height=3000)
    assert huge.shape[0] <= 3000 and huge.shape[1] <= 2000


def test_a_note_held_across_a_system_break_is_drawn_in_both():
    s = _one_note(60, start_q=6.0, quarters=4.0)  # from bar 2 into bar 3 (4/4)
    width = pianoroll.LEFT + pianoroll.RIGHT + 1 + 8 * 20  # two bars at 20 px a quarter
    img = pianoroll.piano_roll(s, px_per_quarter=20, max_width=width)
    assert img.shape[1] == width
    block = (img.shape[0] - pianoroll.GAP) // 2  # two systems: bars 1-2, and bar 3
    blue = (img == pianoroll.PALETTE[0]).all(axis=2)
    ys, xs = np.nonzero(blue)
    assert ys.min() < block and ys.max() >= block + pianoroll.GAP  # in both systems' rows
    assert xs[ys < block].max() >= width - pianoroll.RIGHT - 3  # to the first system's end


def test_header_notes_are_pale_and_the_model_notes_full_colour():
    s = _one_note(60, quarters=1.0)
    s.tracks[0].notes.append(symusic.Note(480, 480, 62, 100))  # the model's note, from tick 480
    img = pianoroll.piano_roll(s, px_per_quarter=20, header_end=480, marks=[480])
    top, left = pianoroll.STRIP, pianoroll.LEFT
    hi = 62 + 2
    header = tuple(img[top + (hi - 60) * 10 + 4, left + 10])
    model = tuple(img[top + (hi - 62) * 10 + 4, left + 30])
    assert model == tuple(pianoroll.PALETTE[0])
    assert header != model and min(header) > min(model)  # the same blue, paler
    plain = pianoroll.piano_roll(s, px_per_quarter=20)  # no header: both in full colour
    assert tuple(plain[top + (hi - 60) * 10 + 4, left + 10]) == model


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
    assert img.shape[1] == pianoroll.LEFT + pianoroll.RIGHT + 2 * 4 * 24 + 1  # two 4/4 bars, 24 px a quarter
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
