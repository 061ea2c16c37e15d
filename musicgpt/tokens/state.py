"""One interpreter of REMI and TSD id streams, fed one id at a time.

`TokenState` is the only code that knows how bar lines, positions, time shifts, programs, pitches
and durations move a stream's clock; the grammar mask (grammar.py) and the note reader
(`read_notes`) both read it. Each `step` is O(1), so following a stream of n ids costs O(n).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from musicgpt.tokens.tables import CONTROL, TokenTables


class TokenState:
    """Where a stream stands after the ids consumed so far. Control tokens leave it as it is."""

    __slots__ = ("_t", "_type", "_pitch", "_program", "_duration", "_position", "_shift",
                 "_bar_len", "last", "program", "pitch", "duration", "bar_start", "bar_len",
                 "pos", "now", "bars", "here", "struck", "until")

    def __init__(self, tables: TokenTables):
        self._t = tables
        # Python lists: indexing them is several times faster than numpy scalars, per step
        self._type = tables.type
        self._pitch, self._program, self._duration, self._position, self._shift, self._bar_len = (
            a.tolist() for a in (tables.pitch, tables.program, tables.duration, tables.position,
                                 tables.shift, tables.bar_len))
        self.reset()

    def reset(self) -> None:
        """Back to the start of a stream."""
        self.last = "BOS"  # type of the last music or special token
        self.program = -1  # the voice the next Pitch belongs to
        self.pitch = -1  # the last Pitch token's pitch
        self.duration = 0  # the last Duration token's ticks
        self.bar_start = -1  # REMI: tick at which the current bar starts; -1 before the first
        self.bar_len = 4 * self._t.res  # ticks in the current bar, 4/4 until a TimeSig says
        self.pos = -1  # REMI: tick in the bar of the last Position; -1 when none since the bar line
        self.now = 0  # TSD: sum of time shifts so far
        self.bars = 0  # bar lines so far
        # onset's notes so far (since the last Bar, Position or TimeShift): program -> Pitch ids
        self.here: dict[int, set[int]] = {}
        self.struck = False  # a note was struck since the last bar line
        self.until = 0  # tick at which the last-ending note so far ends

    @property
    def bar_is_silent(self) -> bool:
        """REMI: the current bar has begun and no note starts in it or sounds into it so far."""
        return self.bar_start >= 0 and not self.struck and self.until <= self.bar_start

    def step(self, i: int) -> str:
        """Consume id `i`; return its token type."""
        typ = self._type[i]
        if typ == CONTROL:
            return typ
        self.last = typ
        if typ == "Bar":
            self.bar_start = 0 if self.bar_start < 0 else self.bar_start + self.bar_len
            self.pos, self.here, self.struck = -1, {}, False
            self.bars += 1
        elif typ == "TimeSig":
            self.bar_len = self._bar_len[i]
        elif typ == "Position":
            self.pos, self.here = self._position[i], {}
        elif typ == "TimeShift":
            self.now += self._shift[i]
            self.here = {}
        elif typ == "Program":
            self.program = self._program[i]
        elif typ == "Pitch":
            self.pitch = self._pitch[i]
            self.here.setdefault(self.program, set()).add(i)
            self.struck = True
        elif typ == "Duration":
            self.duration = self._duration[i]
            self.until = max(self.until, self.onset + self.duration)
        return typ

    def feed(self, ids: Iterable[int]) -> TokenState:
        for i in ids:
            self.step(i)
        return self

    @property
    def onset(self) -> int:
        """Tick of a note struck now: in the bar (REMI) or on the TSD clock before any bar line."""
        return self.bar_start + max(self.pos, 0) if self.bar_start >= 0 else self.now

    @property
    def bar(self) -> int:
        """Tick at which the bar of a note struck now starts (TSD: on the current meter's grid)."""
        return self.bar_start if self.bar_start >= 0 else (self.now // self.bar_len) * self.bar_len


def read_notes(ids: np.ndarray, t: TokenTables) -> dict[str, np.ndarray]:
    """The notes in a REMI or TSD id sequence: index of each Pitch token, pitch, voice (program),
    onset and duration in ticks, and the onset of the bar each starts in."""
    idx, pitch, voice, onset, dur, bar = [], [], [], [], [], []
    s = TokenState(t)
    for k, i in enumerate(np.asarray(ids).tolist()):
        typ = s.step(i)
        if typ == "Pitch":
            idx.append(k)
            pitch.append(s.pitch)
            voice.append(s.program)
            onset.append(s.onset)
            bar.append(s.bar)
            dur.append(t.res)  # until its Duration token says otherwise
        elif typ == "Duration" and dur:  # the Duration token follows its note's Pitch
            dur[-1] = s.duration
    a = lambda x: np.asarray(x, dtype=np.int64)  # noqa: E731
    return {"index": a(idx), "pitch": a(pitch), "voice": a(voice), "onset": a(onset),
            "dur": np.maximum(a(dur), 1), "bar": a(bar)}


def silent_bars(ids: Iterable[int], t: TokenTables, after: int = 0) -> int:
    """REMI: how many bars of `ids` nothing sounds in (no note starts in them or sounds into
    them), counting the bars whose bar line is at index `after` or later; a bar is judged when
    the next begins or the ids end."""
    s, count, bar_at = TokenState(t), 0, -1
    for k, i in enumerate(ids):
        if t.type[i] == "Bar":
            count += bar_at >= after and s.bar_is_silent
            bar_at = k
        s.step(i)
    return count + (bar_at >= after and s.bar_is_silent)
