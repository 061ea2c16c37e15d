"""A small readable syntax for typing a theme on the command line.

    "C4 D4 E4 F4 G4:h"          quarter notes (the default), then a half note
    "3/4 G4:q. A4:e B4:q"       optional meter first (default 4/4); a dot adds half the value
    "C4+E4+G4:h R:q Bb3:1.5"    a chord with +, a rest R, a duration in quarter notes

A note is a letter A-G (or German H for B natural), then sharps (#) or flats (b), then the
octave (C4 is middle C, MIDI 60). Bar lines `|` (also `||`, `|:`, `:|`) may be written between
notes; each must fall where a bar of the meter ends, so a missing beat is caught.
Durations: w (whole), h (half), q (quarter), e (eighth), s (sixteenth), t (a triplet eighth), or
a number of quarter notes such as 1.5 or 1/3. A duration stays in force until the next one is
given, as in LilyPond: "C4:e D4 E4" is three eighth notes.
"""

from __future__ import annotations

import re
from fractions import Fraction

import symusic

from musicgpt.config import VOICE_PROGRAMS
from musicgpt.errors import MusicGPTError
from musicgpt.theory import LETTERS, VELOCITY
from musicgpt.theory import TICKS_PER_QUARTER as TPQ

_DURATIONS = {"w": Fraction(4), "h": Fraction(2), "q": Fraction(1), "e": Fraction(1, 2),
              "s": Fraction(1, 4), "t": Fraction(1, 3)}
_NOTE = re.compile(r"^([A-Ha-h])([#b]*)(-?\d)$")
_BAR_LINES = {"|", "||", "|:", ":|", ":|:", "|]"}
_METER = re.compile(r"^(\d+)/(\d+)$")


def looks_like_notes(text: str) -> bool:
    """True when `text` reads as a note string rather than a file name."""
    words = text.replace(",", " ").split()
    first = words[0] if words else ""
    head = first.split(":")[0].split("+")[0]
    # a letter with no octave ("C D E F G") is a note string with a mistake, not a file name
    return bool(re.fullmatch(r"[A-Ha-h][#b]*-?\d?", head) or head.upper() == "R" or _METER.match(first)
                or first in _BAR_LINES)


def _duration(text: str) -> Fraction:
    dots = len(text) - len(text.rstrip("."))
    base = text.rstrip(".")
    try:
        value = _DURATIONS[base] if base in _DURATIONS else Fraction(base)
    except (ValueError, ZeroDivisionError):
        raise MusicGPTError(f"bad duration {text!r}: use w h q e s t (dots allowed) "
                            "or quarter notes like 1.5") from None
    if value <= 0:
        raise MusicGPTError(f"bad duration {text!r}: it must be positive")
    return value * (2 - Fraction(1, 2**dots))


def _pitch(text: str) -> int:
    m = _NOTE.match(text)
    if not m:
        hint = " (it has no octave)" if re.fullmatch(r"[A-Ha-h][#b]*", text) else ""
        raise MusicGPTError(f"not a note: {text}{hint}; write a letter, optional # or b, and an "
                            "octave, e.g. C4, F#3, Bb4 (C4 is middle C)")
    letter, accidentals, octave = m.groups()
    letter = "B" if letter.upper() == "H" else letter.upper()  # German H is B natural
    pitch = 12 * (int(octave) + 1) + LETTERS[letter] + accidentals.count("#") - accidentals.count("b")
    if not 0 <= pitch <= 127:
        raise MusicGPTError(f"note {text!r} is outside the MIDI range")
    return pitch


def parse_notes(text: str) -> symusic.Score:
    """A one-voice score from a note string (see the module docstring for the syntax)."""
    items = text.replace(",", " ").replace("|", " | ").replace("| :", "|:").replace(": |", ":|").split()
    if not items:
        raise MusicGPTError("the note string is empty; try \"C4 D4 E4 F4 G4:h\"")
    num, den = 4, 4
    if _METER.match(items[0]):
        num, den = (int(v) for v in items.pop(0).split("/"))
        if den not in (1, 2, 4, 8, 16) or num < 1:
            raise MusicGPTError(f"bad meter {num}/{den}")
    score = symusic.Score(TPQ)
    score.time_signatures.append(symusic.TimeSignature(0, num, den))
    score.tempos.append(symusic.Tempo(0, 100.0))
    track = symusic.Track(name="theme", program=VOICE_PROGRAMS[0])
    now, dur = Fraction(0), Fraction(1)
    bar = Fraction(4 * num, den)  # quarter notes per bar
    for item in items:
        if item in _BAR_LINES:
            if now % bar:
                raise MusicGPTError(f"a bar line falls {float(now % bar):g} quarter notes into a bar "
                                    f"of {num}/{den} (after {float(now):g} quarters); check the "
                                    "durations before it")
            continue
        head, _, dtext = item.partition(":")
        if dtext:
            dur = _duration(dtext)
        ticks = int(round(dur * TPQ))
        if ticks < 1:
            raise MusicGPTError(f"duration in {item!r} is too short: the shortest is 1/{TPQ} "
                                "of a quarter note")
        if head.upper() != "R":
            if "" in head.split("+"):
                raise MusicGPTError(f"bad chord {item!r}: join its notes with + and no spaces, e.g. C4+E4+G4")
            for p in head.split("+"):
                track.notes.append(symusic.Note(int(now * TPQ), ticks, _pitch(p), VELOCITY))
        now += dur
    if not track.notes:
        raise MusicGPTError("the note string has only rests; give at least one note")
    score.tracks.append(track)
    return score
