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

from musicgpt.atomic import write_bytes_atomic
from musicgpt.config import VOICE_PROGRAMS
from musicgpt.errors import MusicGPTError
from musicgpt.theory import TICKS_PER_QUARTER, VELOCITY

log = logging.getLogger(__name__)

MIDI_SUFFIXES = (".mid", ".midi")
M21_SUFFIXES = (".xml", ".mxl", ".musicxml", ".krn", ".abc")
SCORE_SUFFIXES = MIDI_SUFFIXES + M21_SUFFIXES
DEFAULT_QPM = 120.0


def load_score(path: str | Path, tune: int | None = None) -> symusic.Score:
    """Read MIDI, MusicXML, kern or ABC into a Score; drum tracks are dropped. `tune` picks the
    tune numbered so (its X: field) from an ABC tune book."""
    path = Path(path)
    if path.is_dir():
        raise MusicGPTError(f"{path}: is a folder; give the score files in it (e.g. {path}/*.mid)")
    if not path.is_file():
        raise MusicGPTError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        try:
            score = symusic.Score(str(path))
        except Exception as exc:  # symusic raises RuntimeError/ValueError on bad bytes
            raise MusicGPTError(f"{path}: not a readable MIDI file ({one_line(exc)})") from None
        drums = sum(t.note_num() for t in score.tracks if t.is_drum)
        score = _drop_drums_and_empty(score)
        if drums and score.note_num():
            log.warning("%s: %d drum notes left out (musicgpt reads pitched parts only)", path, drums)
    elif suffix in M21_SUFFIXES:
        scores = parse_m21_all(path)
        score = m21_to_score(pick_tune(path, scores, tune) if tune is not None else one_piece(path, scores))
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


def merge_voices(scores: list[Any]) -> Any:
    """One music21 Score holding every part of `scores` (ABC tunes that are voices of one piece)."""
    from music21 import stream

    merged = stream.Score()
    for sc in scores:
        for part in _parts(sc):
            merged.insert(0, part)
    return merged


def one_piece(path: str | Path, scores: list[Any]) -> Any:
    """The piece in a file that music21 parsed into `scores`.

    Several ABC tunes with one title are the voices of one piece (Josquin's chansons in music21's
    corpus are written so): they are merged. Tunes with different titles are a tune book: the
    first is used, with a warning that says so."""
    if len(scores) == 1:
        return scores[0]
    titles = [getattr(s.metadata, "title", None) for s in scores]
    if titles[0] and all(t == titles[0] for t in titles):
        log.info("%s: %d tunes titled %r read as the voices of one piece", path, len(scores), titles[0])
        return merge_voices(scores)
    log.warning("%s holds %d tunes; using the first (%s); put a tune in a file of its own to use it",
                path, len(scores), titles[0] or "untitled")
    return scores[0]


def pick_tune(path: str | Path, scores: list[Any], tune: int) -> Any:
    """The tune whose number (ABC's X: field) is `tune`, from a file music21 parsed into `scores`."""
    numbers = [getattr(s.metadata, "number", None) for s in scores]
    for score, number in zip(scores, numbers):
        if number is not None and str(number).strip() == str(tune):
            return score
    known = [str(n) for n in numbers if n is not None]
    shown = f"{', '.join(known[:5])}{' ...' if len(known) > 5 else ''}" if known else "none numbered"
    raise MusicGPTError(f"{path}: no tune numbered {tune} (X:) among its {len(scores)} tunes ({shown})")


def parse_m21_all(path: str | Path) -> list[Any]:
    """Every score in a file parsed with music21 (several for a multi-tune ABC file)."""
    from music21 import converter, stream

    try:
        parsed = converter.parse(str(path))
    except Exception:
        # music21 keeps a parsed copy of each file in its scratch folder; a damaged copy (a full
        # disk, a killed process) fails every later parse, so read the file itself once more
        try:
            parsed = converter.parse(str(path), forceSource=True)
        except Exception as exc:
            raise MusicGPTError(f"{path}: music21 could not parse it ({one_line(exc)})") from None
    scores = list(parsed.scores) if isinstance(parsed, stream.Opus) else [parsed]
    if not scores:
        raise MusicGPTError(f"{path}: the file holds no scores")
    return scores


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:200]


def _skip(el: Any) -> bool:
    """Chord symbols, grace notes and zero-length notes: music21's writer turns these into notes
    that hang until a later note-off, so they never reach a Score."""
    from music21 import harmony

    return isinstance(el, harmony.ChordSymbol) or el.duration.isGrace or el.duration.quarterLength <= 0


def _parts(s: Any) -> list[Any]:
    parts = list(getattr(s, "parts", []))
    return parts if parts else [s]


def _part_notes(part: Any) -> list[tuple[float, float, int]]:
    """(onset, end, midi pitch) in quarters for one part, tied notes merged into one.

    Does the work of music21's stripTies(matchByPitch=True) without its deep copy (10 s on a long
    Palestrina Gloria): a note tied forward stays open, and the next note of the same pitch that
    starts where it ends extends it. A tie between different pitches (music21 reads some ABC
    slurs that way) joins nothing.
    """
    from music21 import chord, note

    out: list[list[float]] = []
    open_: dict[int, int] = {}  # pitch -> index in out of a note whose tie goes on
    for el in part.flatten().notes:
        if _skip(el):
            continue
        if isinstance(el, note.Note):
            heads = [(el.pitch, el.tie)]
        elif isinstance(el, chord.Chord):
            heads = [(n.pitch, n.tie if n.tie is not None else el.tie) for n in el.notes]
        else:  # Unpitched, PercussionChord
            continue
        start = float(el.offset)
        end = start + float(el.duration.quarterLength)
        for pitch, tie in heads:
            midi = int(pitch.midi)
            kind = tie.type if tie is not None else None
            i = open_.get(midi)
            # the open note's tie decides: some files mark every link "start" and the last one not at all
            if i is not None and abs(out[i][1] - start) < 1e-6:
                out[i][1] = end
            else:
                out.append([start, end, midi])
                i = len(out) - 1
            if kind in ("start", "continue"):
                open_[midi] = i
            else:
                open_.pop(midi, None)
    return [(a, b, int(p)) for a, b, p in out]


def pickup_quarters(stream: Any) -> float:
    """How many quarters of silence put the first bar's notes where a pickup (anacrusis) sits:
    the padding music21 gives an incomplete first bar, 0.0 where the piece has no pickup.

    music21's MusicXML, kern and ABC readers all set `paddingLeft` on a first measure shorter
    than its time signature's bar; a measure numbered 0 that is short counts too (streams built
    by hand). The first part decides. A piece of a single bar has no pickup: its short bar is
    its end, as a short last bar of a longer piece is.
    """
    from music21 import stream as m21stream

    measures = _parts(stream)[0].getElementsByClass(m21stream.Measure)
    if len(measures) < 2:
        return 0.0
    first = measures[0]
    bar = float(first.barDuration.quarterLength)
    pad = float(first.paddingLeft)
    if pad <= 0 and first.number == 0:
        pad = bar - float(first.duration.quarterLength)
    return pad if 0 < pad < bar else 0.0


def m21_to_score(stream: Any, tpq: int = TICKS_PER_QUARTER) -> symusic.Score:
    """Convert a music21 stream (Score, Part, ...) to a Score, one track per part, score as written.

    Chord symbols, grace notes and zero-length notes are dropped, ties merged, repeats left as
    written (not expanded); chords become simultaneous notes; time signatures, key signatures
    and the first tempo are kept. Track i gets program VOICE_PROGRAMS[i]. The input is not changed.
    A pickup bar is padded at its start (see `pickup_quarters`), so that tick 0 is a downbeat and
    bar lines fall where the score has them.
    """
    from music21 import meter, tempo

    parts = _parts(stream)
    score = symusic.Score(tpq)
    pad = pickup_quarters(stream)

    def tick(ql: Any) -> int:
        return int(round((float(ql) + pad) * tpq))

    def mark_tick(ql: Any) -> int:  # a signature at the start stays there: it governs the pickup too
        return 0 if float(ql) == 0 else tick(ql)

    tracks = []
    for part in parts:
        name = (getattr(part, "partName", None) or "").split("\r")[0][:40]
        track = symusic.Track(name=name)
        for start, end, pitch in sorted(_part_notes(part), key=lambda n: (n[0], n[2])):
            t0, t1 = tick(start), tick(end)
            if t1 > t0 and 0 <= pitch <= 127:
                track.notes.append(symusic.Note(t0, t1 - t0, pitch, VELOCITY))
        if len(track.notes):
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
            at = mark_tick(ts.offset)
            score.time_signatures.append(symusic.TimeSignature(at, ts.numerator, ts.denominator))
            last_ts = key
    last_ks = None
    for ks in first.getElementsByClass("KeySignature"):
        tonality = 1 if getattr(ks, "mode", None) == "minor" else 0
        key = (ks.sharps, tonality)
        if key != last_ks:
            score.key_signatures.append(symusic.KeySignature(mark_tick(ks.offset), int(ks.sharps), tonality))
            last_ks = key
    qpm = DEFAULT_QPM
    for part in parts:
        marks = part.flatten().getElementsByClass(tempo.MetronomeMark)
        bpm = marks[0].getQuarterBPM() if len(marks) else None
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


def normalize(score: symusic.Score) -> symusic.Score:
    """The one normalisation before tokenizing, at corpus build and at inference alike: drum
    and empty tracks dropped, tracks ordered top voice first (by mean pitch), voices beyond
    len(VOICE_PROGRAMS) folded into the last, and track i given VOICE_PROGRAMS[i]."""
    out = _drop_drums_and_empty(score)
    if clamp_tempos(out):
        log.warning("a tempo outside %g-%g bpm (what a MIDI file can hold) was clamped into that range",
                    round(TEMPO_RANGE[0], 2), TEMPO_RANGE[1])
    tracks = sorted((t.copy() for t in out.tracks), key=_mean_pitch, reverse=True)
    tracks = _merge_extra(tracks)
    for i, t in enumerate(tracks):
        t.program = VOICE_PROGRAMS[i]
        t.is_drum = False
    out.tracks = tracks  # type: ignore[assignment]
    return out


# A MIDI file stores a tempo as microseconds per quarter in 3 bytes: slower than this wraps
# around (1 bpm came back as 6.2), faster rounds to 0. Tempos outside are clamped, with a warning.
TEMPO_RANGE = (60e6 / (2**24 - 1) + 1e-3, 1000.0)


def clamp_tempos(score: symusic.Score) -> int:
    """Clamp `score`'s tempos into TEMPO_RANGE (bpm) in place; return how many were changed."""
    import math

    lo, hi = TEMPO_RANGE
    changed = 0
    for i, t in enumerate(score.tempos):
        qpm = t.qpm
        if math.isnan(qpm) or not lo <= qpm <= hi:
            fixed = 120.0 if math.isnan(qpm) else min(max(qpm, lo), hi)
            score.tempos[i] = symusic.Tempo(t.time, fixed)
            changed += 1
    return changed


READABLE_PITCHES = (21, 108)  # A0-C8, the piano's range: the tokenizer has no Pitch token outside it


def unreadable_notes(score: symusic.Score) -> tuple[int, int]:
    """(notes outside READABLE_PITCHES, all notes) of a score's pitched tracks: the tokenizer
    leaves the former out."""
    lo, hi = READABLE_PITCHES
    pitches = [n.pitch for t in score.tracks if not t.is_drum for n in t.notes]
    return sum(1 for p in pitches if not lo <= p <= hi), len(pitches)


def first_bars(score: symusic.Score, bars: int) -> symusic.Score:
    """The notes that start and end within the first `bars` bars, bar lines as MidiTok draws
    them (following time-signature changes; 4/4 without one)."""
    from miditok.utils import get_bars_ticks  # miditok imports torch: 3-4 s, only when cutting

    if bars < 1:
        raise MusicGPTError(f"bars must be at least 1 (got {bars})")
    ticks = get_bars_ticks(score)
    end = ticks[bars] if len(ticks) > bars else score.end() + 1
    out = score.clip(0, end, clip_end=True)
    if out.note_num() == 0:
        raise MusicGPTError(f"the first {bars} bar(s) hold no notes; give more bars")
    return out


def write_midi(score: symusic.Score, path: str | Path) -> None:
    """Write a standard MIDI file atomically (the bytes are made in memory first, so a full disk
    is noticed: symusic's own file writer does not report one)."""
    write_bytes_atomic(path, score.dumps_midi())
