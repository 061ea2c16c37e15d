"""An engraved score (MusicXML) of a score, by music21.

music21 reads our MIDI (quantising onsets and durations, splitting overlapping notes into
voices) and writes MusicXML, which MuseScore, Finale, Sibelius and Dorico open. Rendering the
notation to an image needs one of those, or LilyPond.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import symusic

from musicgpt.atomic import atomic_path
from musicgpt.errors import MusicGPTError
from musicgpt.scores import one_line


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
    return m21


def write_musicxml(score: symusic.Score, path: str | Path, title: str | None = None) -> None:
    """MusicXML for notation programs, written atomically."""
    from music21 import metadata

    m21 = to_music21(score)
    m21.metadata = m21.metadata or metadata.Metadata()
    m21.metadata.title = title or Path(path).stem
    with atomic_path(path) as tmp:
        try:
            m21.write("musicxml", fp=str(tmp))
        except Exception as exc:  # music21's MusicXML exporter refuses some streams
            raise MusicGPTError(f"music21 could not write MusicXML for this score ({one_line(exc)}); "
                                "the audio and piano roll do not need it (--wav --roll)") from exc
