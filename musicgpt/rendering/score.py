"""A score for notation programs (MusicXML) of a score, by music21.

music21 reads our MIDI (quantising onsets and durations, splitting overlapping notes into
voices) and writes MusicXML, which MuseScore, Finale, Sibelius and Dorico open, and which
engrave.py draws as SVG pages (verovio).

A MIDI file says little about notation, so three things are put back here: the key signature
on every staff (music21 gives it to the first part only; a note string has none, so the key
`theory.score_key` hears is used), the spelling of each note in that key (MIDI has only pitch
numbers; music21 spells every pitch class the same way, as C# Eb F# G# Bb), and the accidentals
that the key signature does not already give.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import symusic

from musicgpt.atomic import write_bytes_atomic
from musicgpt.errors import MusicGPTError
from musicgpt.scores import one_line
from musicgpt.theory import DIATONIC, MAJOR_STEPS, score_key

# what music21 writes as the composer of a score that names none
MUSIC21_COMPOSER = b'<creator type="composer">Music21</creator>'


def fifths_of(tonic: int, mode: str) -> int:
    """Sharps (negative: flats) of the key signature of `mode` on pitch class `tonic`, -5 to 6."""
    major = (tonic - MAJOR_STEPS[DIATONIC.index(mode)]) % 12 if mode in DIATONIC else tonic
    f = 7 * major % 12  # 7 is its own inverse mod 12: keysig_tonic's inverse
    return f if f <= 6 else f - 12


def key_signatures(score: symusic.Score) -> list[tuple[float, int]]:
    """(quarter-note offset, sharps) of each key signature; the key heard in the notes when the
    score has none."""
    tpq = score.ticks_per_quarter
    marks = sorted((k.time / tpq, int(k.key)) for k in score.key_signatures)
    if not marks or marks[0][0] > 0:
        try:
            marks.insert(0, (0.0, fifths_of(*score_key(score)) if not marks else marks[0][1]))
        except MusicGPTError:  # no pitched notes: no key to hear
            marks.insert(0, (0.0, 0))
    return marks


def spellings(fifths: int) -> dict[int, str]:
    """Pitch class -> music21 name in the key of this signature: each pitch class spelled as the
    one of its names (at most one sharp or flat) nearest the key on the line of fifths, leaning a
    fifth to the sharp side, where minor keys raise their leading notes; a tie goes to the sharp.
    So the key's own seven notes are spelled as its scale, and the others C# and G# in D minor,
    E# in F# minor, C# D# F# G# Bb in C major. On 180 Bach chorales (20,585 notes, 4 flats to 4 sharps) read
    back from MIDI this spells 20,563 notes as Bach did; music21's own spelling (C# Eb
    F# G# Bb whatever the key), 20,088."""
    centre = fifths + 3  # the middle of the key's seven notes (D in C major), a fifth sharper
    out = {}
    for place in sorted(range(-8, 13), key=lambda q: (abs(q - centre), -q)):  # Fb (-8) to B# (12)
        pc = 7 * place % 12
        if pc not in out:
            alter = (place + 1) // 7  # -1 for Fb..Bb, 0 for F..B, 1 for F#..B#
            out[pc] = "FCGDAEB"[(place + 1) % 7] + {-1: "-", 0: "", 1: "#"}[alter]
    return out


def spell(pitch, names: dict[int, str]) -> None:
    """Respell a music21 Pitch in place as `names` (from `spellings`) spells its pitch class."""
    want = names[pitch.pitchClass]
    if pitch.name != want:
        midi = pitch.midi
        pitch.name = want
        pitch.octave += (midi - pitch.midi) // 12  # B#3 -> C4: the same key of the keyboard


def notate_keys(m21, marks: list[tuple[float, int]]) -> None:
    """Give every part the key signatures `marks`, each at the start of its bar, then spell the
    notes in them and mark the accidentals the signature does not give."""
    from music21 import key

    for part in m21.parts:
        for ks in list(part.recurse().getElementsByClass("KeySignature")):
            ks.activeSite.remove(ks)
        measures = list(part.getElementsByClass("Measure"))
        fifths, k = marks[0][1], 0
        for i, m in enumerate(measures):
            end = measures[i + 1].offset if i + 1 < len(measures) else float("inf")
            changed = i == 0
            while k < len(marks) and marks[k][0] < end:
                changed, fifths, k = changed or marks[k][1] != fifths, marks[k][1], k + 1
            if changed:
                m.insert(0, key.KeySignature(fifths))
            names = spellings(fifths)
            for n in m.recurse().notes:
                for p in n.pitches:
                    spell(p, names)
        part.makeAccidentals(inPlace=True, overrideStatus=True)


def to_music21(score: symusic.Score):
    """A music21 Score of `score`: music21 reads our MIDI, quantising and splitting voices."""
    from music21 import converter

    with tempfile.TemporaryDirectory() as d:
        mid = Path(d) / "score.mid"
        mid.write_bytes(score.dumps_midi())  # raises on a full disk, as dump_midi does not
        try:
            m21 = converter.parse(str(mid), format="midi", forceSource=True)
        except Exception as exc:  # music21 raises many types on MIDI it cannot notate
            raise MusicGPTError(f"music21 could not notate this score ({one_line(exc)}); "
                                "the audio and piano roll do not need it (--wav --roll)") from exc
    names = [t.name for t in score.tracks if not t.is_drum and len(t.notes)]
    for k, part in enumerate(m21.parts):
        name = names[k] if k < len(names) and names[k] else f"Voice {k + 1}"
        part.partName = name
        part.partAbbreviation = name[:3] + "."
    notate_keys(m21, key_signatures(score))
    return m21


def musicxml_bytes(score: symusic.Score, title: str) -> bytes:
    """The MusicXML document of `score`, titled `title`."""
    from music21 import metadata
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    m21 = to_music21(score)
    m21.metadata = m21.metadata or metadata.Metadata()
    m21.metadata.title = title
    try:
        data = GeneralObjectExporter(m21).parse()  # what m21.write("musicxml") writes
    except Exception as exc:  # music21's MusicXML exporter refuses some streams
        raise MusicGPTError(f"music21 could not write MusicXML for this score ({one_line(exc)}); "
                            "the audio and piano roll do not need it (--wav --roll)") from exc
    # music21 names itself the composer when none is known; an engraving would print it
    return data.replace(MUSIC21_COMPOSER, b"")


def write_musicxml(score: symusic.Score, path: str | Path, title: str | None = None) -> None:
    """MusicXML for notation programs, written atomically; titled `title` (default: the file's stem)."""
    write_bytes_atomic(path, musicxml_bytes(score, title or Path(path).stem))
