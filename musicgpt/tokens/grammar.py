"""Which token may come next in a REMI or TSD stream, so that every sample decodes to valid MIDI."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from musicgpt.tokens.state import TokenState
from musicgpt.tokens.tables import TokenTables

# Token types never produced when continuing music: drums are dropped from every corpus, and
# PAD/MASK/BOS only frame sequences.
_NEVER_SAMPLED = {"PAD", "MASK", "BOS", "PitchDrum"}


class Grammar:
    """The allowed-token mask after a prefix, kept up to date one token at a time.

    Follows MidiTok's token-type graph, and adds what the graph cannot say: in REMI, positions rise
    within a bar and stay inside it; in both, a voice does not play the same pitch twice at one
    onset (a REMI Position, or the time between two TSD TimeShifts). With `fill_bars` (REMI),
    no bar is left fully silent: neither a bar line nor the end may close a bar in which no
    note sounds.

    `allowed(prefix)` steps only the ids that `prefix` adds to the previous call's, as a
    sampler's growing sequence does: it takes `prefix` to extend the last one when it is at least
    as long and holds the same id where the last one ended, and replays it from the start
    otherwise. A caller that rewrites earlier ids in place should call `reset()`.
    """

    def __init__(self, tables: TokenTables, types_graph: dict[str, Sequence[str]], eos_id: int):
        v = tables.vocab_size
        self.eos_id = eos_id
        # REMI: with `fill_bars` set, neither a bar line nor the end closes a bar in which nothing sounds
        self.fill_bars = False
        self._bar_id = tables.bar_id
        of_type = {typ: torch.from_numpy(np.asarray(tables.type) == typ) for typ in set(tables.type)}
        next_types = {t: {n.split("_")[0] for n in nxt} - _NEVER_SAMPLED for t, nxt in types_graph.items()}
        # a stream starts at a bar line in REMI; in TSD with a time signature or a first note
        start = {"Bar"} if "Bar" in of_type else {"TimeSig", "TimeShift", "Program"}

        def follow(last: str) -> set[str]:
            return start if last == "BOS" else next_types.get(last, start)

        def union(types: set[str]) -> torch.Tensor:
            mask = torch.zeros(v, dtype=torch.bool)
            for typ in types & of_type.keys():
                mask |= of_type[typ]
            return mask

        lasts = of_type.keys() | {"BOS"}
        # (V,) bool per type of the last token: what MidiTok's graph lets follow it
        self._after = {last: union(follow(last)) for last in lasts}
        # after these, a Position may come, but only later in the bar and inside it
        self._check_position = {last for last in lasts if "Position" in follow(last)}
        self._position_ids = torch.from_numpy(tables.ids_of("Position"))
        self._positions = torch.from_numpy(tables.position[tables.ids_of("Position")])
        self.state = TokenState(tables)
        self._seen = 0  # ids consumed by `state`
        self._last_seen = -1  # the last of them

    def reset(self) -> None:
        self.state.reset()
        self._seen, self._last_seen = 0, -1

    def step(self, i: int) -> None:
        """Consume one id (O(1))."""
        self.state.step(i)
        self._seen += 1
        self._last_seen = i

    def mask(self) -> torch.Tensor:
        """(vocab_size,) bool: the tokens that may follow the ids consumed so far (a new tensor)."""
        s = self.state
        mask = self._after[s.last].clone()
        if s.last in self._check_position:
            mask[self._position_ids[(self._positions <= s.pos) | (self._positions >= s.bar_len)]] = False
        if s.last == "Program":
            mask[list(s.here.get(s.program, ()))] = False
        if self.fill_bars and self._bar_id >= 0 and s.bar_is_silent:
            mask[self._bar_id] = False  # neither a bar line nor the end closes a silent bar
            mask[self.eos_id] = False
        if not mask.any():  # nothing fits (should not happen); let the stream end
            mask[self.eos_id] = True
        return mask

    def allowed(self, prefix: Sequence[int]) -> torch.Tensor:
        """(vocab_size,) bool: the tokens that may follow `prefix`."""
        n = self._seen
        if len(prefix) < n or (n and prefix[n - 1] != self._last_seen):
            self.reset()
            n = 0
        for i in prefix[n:]:
            self.step(int(i))
        return self.mask()
