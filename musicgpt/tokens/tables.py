"""Per-id facts about a REMI or TSD vocabulary, computed once in one place.

Every reader of token ids (the grammar mask, the note reader, transposition, bits per note) looks
ids up here instead of parsing MidiTok's token strings itself. Times are in ticks of
`1 / res` beat, where `res` is the finest resolution of the tokenizer's beat_res: the unit of a
REMI Position token too, so one bar length serves both positions and ticks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONTROL = "Control"  # the type of ids outside MidiTok's base vocabulary (style and mode tokens)


@dataclass(frozen=True)
class TokenTables:
    """(V,) lookups over the model's vocabulary (V = vocab_size), for base (not BPE) ids."""

    type: tuple[str, ...]  # MidiTok token type ("Bar", "Pitch", ...); CONTROL for control ids
    pitch: np.ndarray  # MIDI pitch of a Pitch token, -1 otherwise (PitchDrum too)
    program: np.ndarray  # program of a Program token, -1 otherwise
    duration: np.ndarray  # ticks of a Duration token, 0 otherwise
    position: np.ndarray  # position (in ticks) of a Position token, -1 otherwise
    shift: np.ndarray  # ticks of a TimeShift token (TSD), 0 otherwise
    bar_len: np.ndarray  # ticks in a bar of a TimeSig token, 0 otherwise
    bar_id: int  # -1 when the vocabulary has no Bar token (TSD)
    res: int  # ticks per beat

    @property
    def vocab_size(self) -> int:
        return len(self.type)

    def ids_of(self, typ: str) -> np.ndarray:
        """The ids of one token type, ascending."""
        return np.flatnonzero(np.asarray(self.type) == typ)

    def id_of_pitch(self) -> np.ndarray:
        """(128,) the Pitch token of each MIDI pitch, -1 outside the tokenizer's range."""
        out = np.full(128, -1, dtype=np.int64)
        ids = np.flatnonzero(self.pitch >= 0)
        out[self.pitch[ids]] = ids
        return out


def beats(text: str) -> float:
    """'2.6.12' -> 2.5 beats (MidiTok's beat.position.resolution)."""
    a, b, c = (int(x) for x in text.split("."))
    return a + b / c


def bar_ticks(time_sig: str, res: int) -> int:
    """Ticks in a bar of 'num/den': MidiTok counts beats in the signature's own unit (a half
    note in 4/2), so a bar is `num` beats whatever the denominator."""
    return int(time_sig.split("/")[0]) * res


def token_tables(vocab: dict[str, int], vocab_size: int) -> TokenTables:
    """The tables of a MidiTok base vocabulary (token -> id) inside a model vocabulary of
    `vocab_size` ids (control ids come after the base ones)."""
    # MidiTok writes a Duration at every beat range's resolution, so the finest of them is the
    # finest of beat_res: the Position unit as well
    res = max([int(t.split(".")[2]) for t in vocab if t.startswith("Duration_")] or [1])
    types = [CONTROL] * vocab_size
    pitch, program, duration, position, shift, bar_len = (
        np.full(vocab_size, v, dtype=np.int64) for v in (-1, -1, 0, -1, 0, 0))
    for tok, i in vocab.items():
        kind, _, val = tok.partition("_")
        types[i] = kind
        if kind == "Pitch":
            pitch[i] = int(val)
        elif kind == "Program":
            program[i] = int(val)
        elif kind == "Duration":
            duration[i] = round(beats(val) * res)
        elif kind == "Position":
            position[i] = int(val)
        elif kind == "TimeShift":
            shift[i] = round(beats(val) * res)
        elif kind == "TimeSig":
            bar_len[i] = bar_ticks(val, res)
    return TokenTables(tuple(types), pitch, program, duration, position, shift, bar_len,
                       vocab.get("Bar_None", -1), res)
