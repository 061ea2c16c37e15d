"""engrave: verovio's SVG of the MusicXML we write holds every note, on one staff per voice, with the
title, key signature and meter; a long piece is paged; `render --svg` and `continue --svg`."""

from __future__ import annotations

import concurrent.futures
import re
import struct
import sys
import zlib
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
import symusic
from music21 import converter, corpus

from musicgpt.cli import main
from musicgpt.errors import MusicGPTError
from musicgpt.notestring import parse_notes
from musicgpt.rendering import engrave, pianoroll
from musicgpt.rendering.score import write_musicxml
from musicgpt.scores import load_score, write_midi

FLAT, SHARP = "E260", "E262"  # SMuFL's accidental glyphs, as verovio names them
ROOT = Path(__file__).resolve().parent.parent
SVG, XLINK = "{http://www.w3.org/2000/svg}", "{http://www.w3.org/1999/xlink}href"


@pytest.fixture(scope="module")
def chorale() -> symusic.Score:
    return load_score(corpus.getWork("bach/bwv66.6"))


def count(svg: str, cls: str) -> int:
    return svg.count(f'class="{cls}"')


def notes_in(xml_path) -> tuple[int, int]:
    """(written notes, tied ones counted once) of a MusicXML file, chord notes each."""
    m = converter.parse(str(xml_path))
    written = sum(len(n.pitches) for n in m.recurse().notes)
    return written, sum(len(n.pitches) for n in m.stripTies().recurse().notes)


def key_accidentals(svg: str) -> list[list[str]]:
    """The accidental glyphs (SMuFL code points) of each key signature drawn."""
    root = ElementTree.fromstring(svg)
    return [[use.get(XLINK).split("-")[0].lstrip("#") for use in g.iter(SVG + "use")]
            for g in root.iter(SVG + "g") if g.get("class") == "keySig"]


def test_a_chorale_engraves_every_note_on_four_staves_with_title_key_and_meter(tmp_path, chorale):
    xml = tmp_path / "c.musicxml"
    write_musicxml(chorale, xml, title="Christ unser Herr")
    pages = engrave.svg_pages(xml)
    assert len(pages) == 1
    svg = pages[0]
    written, tied_once = notes_in(xml)
    assert tied_once == chorale.note_num()  # the MusicXML keeps every note (test_render too)
    assert count(svg, "note") == written     # and verovio draws every written note
    assert count(svg, "measure") == 10
    assert count(svg, "staff") == 4 * count(svg, "measure")  # soprano, alto, tenor, bass
    assert ">Christ unser Herr<" in svg
    sigs = key_accidentals(svg)
    assert len(sigs) == 4 * count(svg, "system")  # A major's three sharps on every staff's line
    assert all(s == [SHARP] * 3 for s in sigs)
    assert count(svg, "meterSig") == 4  # 4/4 at the start of each staff


@pytest.mark.parametrize("notes, fifths, glyphs", [
    ("C4 D4 E4 F4 | G4:h", 0, []),
    ("D4 F4 G4 A4 | Bb4:h A4:h", -1, [FLAT]),  # heard in D minor: one flat, and B flat, not A sharp
])
def test_a_note_string_gets_its_title_and_the_key_it_is_heard_in(tmp_path, notes, fifths, glyphs):
    score = parse_notes(notes)
    xml = tmp_path / "theme.musicxml"
    write_musicxml(score, xml)
    text = xml.read_text()
    assert f"<fifths>{fifths}</fifths>" in text and "Music21" not in text
    assert "<alter>1</alter>" not in text  # no sharps spelled where the key has flats
    (svg,) = engrave.svg_pages(xml)
    assert count(svg, "note") == score.note_num()
    assert ">theme<" in svg  # the title: the file's stem
    assert key_accidentals(svg)[0] == glyphs
    assert count(svg, "meterSig") == 1


@pytest.mark.parametrize("source", ["examples/bwv101.7.mxl", "bach/bwv66.6"])
def test_notes_are_spelled_in_the_key_as_bach_spelled_them(tmp_path, source):
    """MIDI keeps only pitch numbers: D minor's C# and G#, F# minor's E#, come back as written."""
    path = ROOT / source if source.startswith("examples/") else corpus.getWork(source)
    xml = tmp_path / "s.musicxml"
    write_musicxml(load_score(path), xml)

    def names(m) -> list[list[tuple[int, str]]]:
        return [[(p.midi, p.name) for n in part.stripTies().recurse().notes for p in n.pitches]
                for part in m.parts]

    want, got = names(converter.parse(str(path))), names(converter.parse(str(xml)))
    assert [[midi for midi, _ in part] for part in got] == [[midi for midi, _ in part] for part in want]
    assert got == want


def read_png(data: bytes) -> np.ndarray:
    """(H, W, 3) pixels of a PNG that pianoroll.encode_png wrote (one IDAT, filter 0 rows)."""
    w, h = struct.unpack(">II", data[16:24])
    at = data.index(b"IDAT")
    (n,) = struct.unpack(">I", data[at - 4:at])
    raw = np.frombuffer(zlib.decompress(data[at + 4:at + 4 + n]), np.uint8).reshape(h, 1 + 3 * w)
    return raw[:, 1:].reshape(h, w, 3)


def repeated(score: symusic.Score, times: int) -> symusic.Score:
    out = score.copy()
    for k in range(1, times):
        shifted = score.shift_time(k * score.end())
        for track, more in zip(out.tracks, shifted.tracks):
            track.notes.extend(more.notes)
    return out


def test_a_long_piece_is_paged_and_each_page_written(tmp_path, chorale):
    long = repeated(chorale, 3)
    xml = tmp_path / "long.musicxml"
    write_musicxml(long, xml)
    paths = engrave.write_svg(xml, tmp_path / "long")
    assert len(paths) > 1
    assert [p.name for p in paths] == [f"long-{k}.svg" for k in range(1, len(paths) + 1)]
    pages = [p.read_text() for p in paths]
    assert all(p.startswith("<svg") and p.rstrip().endswith("</svg>") for p in pages)
    assert sum(count(p, "note") for p in pages) == notes_in(xml)[0]  # no note lost between pages
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["long.musicxml", *(p.name for p in paths)])
    one = tmp_path / "one.musicxml"
    write_musicxml(chorale, one)
    assert [p.name for p in engrave.write_svg(one, tmp_path / "short")] == ["short.svg"]


def test_a_page_is_engraved_on_any_thread(tmp_path, chorale):
    """verovio's import points its fonts out to the importing thread only (a web app's worker)."""
    import verovio  # noqa: F401 (imported here, on this thread)

    xml = tmp_path / "c.musicxml"
    write_musicxml(chorale, xml)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        (svg,) = pool.submit(engrave.svg_pages, xml).result()
    assert count(svg, "note") == notes_in(xml)[0]


def test_bad_input_is_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(MusicGPTError, match="no such file"):
        engrave.svg_pages(tmp_path / "missing.musicxml")
    (tmp_path / "x.musicxml").write_text("not music\n")
    with pytest.raises(MusicGPTError, match="could not read"):
        engrave.svg_pages(tmp_path / "x.musicxml")
    with pytest.raises(MusicGPTError, match="out of range"):
        engrave.svg_pages(tmp_path / "x.musicxml", page_width=10)
    monkeypatch.setitem(sys.modules, "verovio", None)  # as if it were not installed
    with pytest.raises(MusicGPTError, match=re.escape("pip install -e '.[engrave]'")):
        engrave.svg_pages(tmp_path / "x.musicxml")


def test_render_svg_writes_the_engraving_and_says_so(tmp_path, chorale, capsys, monkeypatch):
    midi = tmp_path / "bwv66.mid"
    write_midi(chorale, midi)
    assert main(["render", str(midi), "--svg"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bwv66.mid", "bwv66.svg"]
    assert f"wrote {tmp_path / 'bwv66.svg'}" in out
    svg = (tmp_path / "bwv66.svg").read_text()
    assert count(svg, "note") >= chorale.note_num() and ">bwv66<" in svg
    assert main(["render", str(midi), "--svg", "--score", "--out-dir", str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["bwv66.musicxml", "bwv66.svg"]
    # without verovio: one line saying how to get it, and nothing written
    monkeypatch.setitem(sys.modules, "verovio", None)
    capsys.readouterr()
    assert main(["render", str(midi), "--svg", "--roll", "--out-dir", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install -e '.[engrave]'" in err
    assert not (tmp_path / "none").exists()


@pytest.mark.slow
def test_continue_render_svg_engraves_it_and_tells_header_from_model_on_the_roll(tmp_path, capsys):
    out = tmp_path / "theme.mid"
    assert main(["continue", "C4 D4 E4 F4 G4:h", "--length", "2bars", "--seed", "1", "--out", str(out),
                 "--render", "--svg"]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["theme.json", "theme.mid", "theme.musicxml", "theme.png", "theme.svg", "theme.wav"]
    assert count((tmp_path / "theme.svg").read_text(), "note") >= 5
    img = read_png((tmp_path / "theme.png").read_bytes())
    blue = pianoroll.PALETTE[0].astype(float)
    pale = tuple((255 - pianoroll.HEADER_SHARE * (255 - blue)).astype("uint8"))
    pixels = {tuple(p) for p in img.reshape(-1, 3)}
    assert pale in pixels and tuple(pianoroll.PALETTE[0]) in pixels  # header pale, model in colour
    # a second run may replace what the first wrote; a foreign page beside it needs --force
    (tmp_path / "theme-2.svg").write_text("<svg/>")
    (tmp_path / "theme.json").write_text("{}")
    capsys.readouterr()
    assert main(["continue", "C4 D4 E4 F4 G4:h", "--length", "1bars", "--out", str(out), "--svg"]) == 2
    assert "theme-2.svg" in capsys.readouterr().err
