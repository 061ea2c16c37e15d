"""An interpolated n-gram model on the same token windows, as the baseline the transformer must beat.

Witten-Bell interpolation: P(w|h) = (c(h,w) + u(h) P(w|h')) / (c(h) + u(h)), with u(h) the number
of distinct tokens seen after h and h' the history shortened by one; the unigram level is mixed
with a uniform distribution so no token has probability zero.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from musicgpt.data.tokens import IGNORE, bits_report


class NGram:
    def __init__(self, order: int, vocab_size: int):
        self.n, self.V = order, vocab_size
        # counts[k][history of length k] -> Counter of next tokens
        self.counts: list[defaultdict[tuple[int, ...], Counter]] = [
            defaultdict(Counter) for _ in range(order)
        ]

    def fit(self, windows: Iterable[tuple[Sequence[int], Sequence[int]]]) -> NGram:
        """Count from (x, y) windows; positions whose target is IGNORE are skipped."""
        for x, y in windows:
            for t, target in enumerate(y):
                if target == IGNORE:
                    continue
                for k in range(self.n):
                    if t - k + 1 < 0:
                        break
                    self.counts[k][tuple(x[t - k + 1 : t + 1]) if k else ()][target] += 1
        return self

    def prob(self, history: Sequence[int], token: int) -> float:
        p = 1.0 / self.V
        for k in range(self.n):
            if k > len(history):
                break
            h = tuple(history[len(history) - k :]) if k else ()
            c = self.counts[k].get(h)
            if not c:
                break
            total, distinct = sum(c.values()), len(c)
            p = (c.get(token, 0) + distinct * p) / (total + distinct)
        return p

    def score(self, windows: Iterable[tuple[Sequence[int], Sequence[int]]],
              notes_per_id: Sequence[int]) -> dict[str, float]:
        nll = tokens = notes = correct = 0.0
        for x, y in windows:
            for t, target in enumerate(y):
                if target == IGNORE:
                    continue
                hist = x[max(0, t - self.n + 2) : t + 1]
                nll -= math.log(self.prob(hist, target))
                tokens += 1
                notes += notes_per_id[target]
                correct += self._argmax(hist) == target
        return bits_report(nll, tokens, notes, correct)

    def _argmax(self, history: Sequence[int]) -> int:
        """The most likely next token, read from the longest history that was seen."""
        for k in range(min(self.n - 1, len(history)), -1, -1):
            c = self.counts[k].get(tuple(history[len(history) - k :]) if k else ())
            if c:
                return c.most_common(1)[0][0]
        return 0
