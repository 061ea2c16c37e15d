"""Read any score into one type (`symusic.Score`) and write clean MIDI.

music21's own MIDI writer expands repeats and turns chord symbols and grace notes into
zero-length notes that swallow the next real note (see /work/shared/DATA_NOTES.md), so scores
parsed by music21 are converted here note by note from their offsets instead.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import symusic

from musicgpt.atomic import atomic_path
from musicgpt.config import VOICE_PROGRAMS
from musicgpt.errors import MusicGPTError

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
M21_SUFFIXES = (".xml", ".mxl", ".musicxml", ".krn", ".abc")
SCORE_SUFFIXES = MIDI_SUFFIXES + M21_SUFFIXES
VELOCITY = 80  # the corpora carry no dynamics; one velocity for every note
DEFAULT_QPM = 120.0


def load_score(path: str | Path) -> symusic.Score:
    """Read MIDI, MusicXML, kern or ABC into a Score; drum tracks are dropped."""
    path = Path(path)
    if not path.is_file():
        raise MusicGPTError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        try:
            score = symusic.Score(str(path))
        except Exception as exc:  # symusic raises RuntimeError/ValueError on bad bytes
            raise MusicGPTError(f"{path}: not a readable MIDI file ({one_line(exc)})") from None
        score = _drop_drums_and_empty(score)
    elif suffix in M21_SUFFIXES:
        score = m21_to_score(parse_m21(path))
    else:
        raise MusicGPTError(
            f"{path}: unknown file type {suffix or '(none)'}; expected one of {', '.join(SCORE_SUFFIXES)}"
        )
    if score.note_num() == 0:
        raise MusicGPTError(f"{path}: the score has no pitched notes (empty or drums only)")
    return score


def parse_m21(path: str | Path) -> Any:
    """Parse a file with music21; the first score of a multi-tune ABC file (an Opus)."""
    return parse_m21_all(path)[0]


def parse_m21_all(path: str | Path) -> list[Any]:
    """Every score in a file parsed with music21 (several for a multi-tune ABC file)."""
    from music21 import converter, stream

    try:
        parsed = converter.parse(str(path))
    except Exception as exc:
        raise MusicGPTError(f"{path}: music21 could not parse it ({one_line(exc)})") from None
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    if not scores:
        raise MusicGPTError(f"{path}: the file holds no scores")
    return scores


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def clean_m21(stream_obj: Any) -> Any:
    """A copy of the stream with ties merged and no chord symbols, grace or zero-length notes."""
    from music21 import harmony

    s = stream_obj.stripTies(inPlace=False)
    for el in list(s.recurse().notes):
        if (
            isinstance(el, harmony.ChordSymbol)
            or el.duration.isGrace
            or el.duration.quarterLength <= 0
        ):
            site = el.activeSite
            if site is not None:
                site.remove(el)
    return s


def _parts(s: Any) -> list[Any]:
    parts = list(getattr(s, "parts", []))
    return parts if parts else [s]


def m21_to_score(stream_obj: Any, tpq: int = 480) -> symusic.Score:
    """Convert a music21 stream (Score, Part, ...) to a Score, one track per part, score as written."""
    from music21 import chord, meter, note, tempo

    s = clean_m21(stream_obj)
    parts = _parts(s)
    score = symusic.Score(tpq)

    def tick(ql: Any) -> int:
        return int(round(float(ql) * tpq))

    tracks = []
    for part in parts:
        flat = part.flatten()
        track = symusic.Track(name=(part.partName or "").split("\r")[0][:40] if hasattr(part, "partName") else "")
        for el in flat.notes:
            if isinstance(el, note.Note):
                pitches = [el.pitch]
            elif isinstance(el, chord.Chord):
                pitches = list(el.pitches)  # ChordSymbols were removed by clean_m21
            else:  # Unpitched, PercussionChord
                continue
            start = tick(el.offset)
            end = tick(el.offset + el.duration.quarterLength)
            if end <= start:
                continue
            for p in pitches:
                if 0 <= p.midi <= 127:
                    track.notes.append(symusic.Note(start, end - start, int(p.midi), VELOCITY))
        if len(track.notes):
            track.notes.sort(key=lambda n: (n.time, n.pitch))
            tracks.append(track)
    for track in _merge_extra(tracks):
        score.tracks.append(track)
    for i, track in enumerate(score.tracks):
        track.program = VOICE_PROGRAMS[i]

    first = parts[0].flatten()
    last_ts = None
    for ts in first.getElementsByClass(meter.TimeSignature):
        key = (ts.numerator, ts.denominator)
        if key != last_ts:
            score.time_signatures.append(symusic.TimeSignature(tick(ts.offset), ts.numerator, ts.denominator))
            last_ts = key
    last_ks = None
    for ks in first.getElementsByClass("KeySignature"):
        tonality = 1 if getattr(ks, "mode", None) == "minor" else 0
        key = (ks.sharps, tonality)
        if key != last_ks:
            score.key_signatures.append(symusic.KeySignature(tick(ks.offset), int(ks.sharps), tonality))
            last_ks = key
    qpm = DEFAULT_QPM
    for mm in s.flatten().getElementsByClass(tempo.MetronomeMark):
        bpm = mm.getQuarterBPM()
        if bpm:
            qpm = float(bpm)
            break
    score.tempos.append(symusic.Tempo(0, qpm=qpm))
    return score


def _merge_extra(tracks: list[symusic.Track]) -> list[symusic.Track]:
    """Fold tracks beyond len(VOICE_PROGRAMS) into the last one, which keeps its notes sorted."""
    n = len(VOICE_PROGRAMS)
    if len(tracks) <= n:
        return tracks
    last = tracks[n - 1]
    for extra in tracks[n:]:
        for nt in extra.notes:
            last.notes.append(nt)
    last.notes.sort(key=lambda x: (x.time, x.pitch))
    return tracks[:n]


def _drop_drums_and_empty(score: symusic.Score) -> symusic.Score:
    keep = [t for t in score.tracks if not t.is_drum and len(t.notes)]
    out = score.copy()
    out.tracks = keep  # type: ignore[assignment]
    return out


def _mean_pitch(track: symusic.Track) -> float:
    return float(track.notes.numpy()["pitch"].mean())


def assign_voice_programs(score: symusic.Score) -> symusic.Score:
    """Drop drum/empty tracks, order tracks top voice first and give track i VOICE_PROGRAMS[i]."""
    out = _drop_drums_and_empty(score)
    tracks = sorted((t.copy() for t in out.tracks), key=_mean_pitch, reverse=True)
    tracks = _merge_extra(tracks)
    for i, t in enumerate(tracks):
        t.program = VOICE_PROGRAMS[i]
        t.is_drum = False
    out.tracks = tracks  # type: ignore[assignment]
    return out


def write_midi(score: symusic.Score, path: str | Path) -> None:
    """Write a standard MIDI file atomically."""
    with atomic_path(path) as tmp:
        score.dump_midi(str(tmp))
