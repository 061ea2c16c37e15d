"""Interpolated modified Kneser-Ney n-gram model (Chen & Goodman 1998): the n-gram anchor an expert
would put beside a neural LM. It replaces Witten-Bell (ngram.py) as the headline baseline: on the
chorales it is the stronger of the two.

P(w | h) = max(c(hw) - D(c(hw)), 0) / c(h) + gamma(h) P(w | h'),
gamma(h) = (D1 N1(h.) + D2 N2(h.) + D3 N3+(h.)) / c(h),
with raw counts at the highest order, continuation counts (distinct left neighbours) below it,
three discounts per order from that order's count-of-counts, and a uniform distribution under the
unigram level. Histories shorter than the order (a window's first tokens) are left-padded with a
symbol that is never predicted, so every position has a full history.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from musicgpt.data.tokens import IGNORE, bits_report

PAD = -1  # left padding of histories; never a target


def _discounts(counts: Counter) -> tuple[float, float, float]:
    """(D1, D2, D3+) from the count-of-counts n1..n4 (Chen & Goodman's estimates)."""
    n = Counter(c for c in counts.values() if c <= 4)
    n1, n2, n3, n4 = (n.get(k, 0) for k in (1, 2, 3, 4))
    if n1 == 0 or n2 == 0:
        return 0.5, 1.0, 1.5  # too little data to estimate: a common fallback
    y = n1 / (n1 + 2 * n2)
    d1 = 1 - 2 * y * n2 / n1
    d2 = 2 - 3 * y * n3 / n2
    d3 = 3 - 4 * y * n4 / n3 if n3 else 1.5
    return max(d1, 0.0), max(d2, 0.0), max(d3, 0.0)


class KneserNey:
    def __init__(self, order: int, vocab_size: int):
        if order < 1:
            raise ValueError(f"order must be at least 1, not {order}")
        self.n, self.V = order, vocab_size
        # level L (gram length L = 1..n): counts[L][gram] and per-history stats[L][history]
        self.counts: dict[int, Counter] = {}
        self.stats: dict[int, dict[tuple[int, ...], tuple[float, float]]] = {}
        self.discount: dict[int, tuple[float, float, float]] = {}

    def fit(self, windows: Iterable[tuple[Sequence[int], Sequence[int]]]) -> KneserNey:
        """Count from (x, y) windows (x[t] is the last history token of target y[t]); IGNORE skipped."""
        top: Counter = Counter()
        pad = (PAD,) * (self.n - 1)
        for x, y in windows:
            xs = pad + tuple(int(v) for v in x)
            for t, target in enumerate(y):
                if target != IGNORE:
                    top[xs[t + 1 : t + self.n] + (int(target),)] += 1
        self.counts[self.n] = top
        for L in range(self.n - 1, 0, -1):  # continuation counts: distinct left neighbours
            cont: Counter = Counter()
            for gram in self.counts[L + 1]:
                cont[gram[1:]] += 1
            self.counts[L] = cont
        for L, counts in self.counts.items():
            d = self.discount[L] = _discounts(counts)
            total: defaultdict[tuple[int, ...], float] = defaultdict(float)
            mass: defaultdict[tuple[int, ...], float] = defaultdict(float)
            for gram, c in counts.items():
                total[gram[:-1]] += c
                mass[gram[:-1]] += d[min(c, 3) - 1]
            self.stats[L] = {h: (total[h], mass[h]) for h in total}
        return self

    def prob(self, history: Sequence[int], token: int) -> float:
        """P(token | the last n-1 tokens of history), history already padded or long enough."""
        p = 1.0 / self.V
        hist = tuple(history[len(history) - (self.n - 1):]) if self.n > 1 else ()
        for L in range(1, self.n + 1):
            h = hist[len(hist) - (L - 1):] if L > 1 else ()
            st = self.stats[L].get(h)
            if st is None:
                continue  # history never seen at this level: keep the lower-order estimate
            total, mass = st
            c = self.counts[L].get(h + (token,), 0)
            d = self.discount[L][min(c, 3) - 1] if c else 0.0
            p = max(c - d, 0.0) / total + mass / total * p
        return p

    def bits(self, x: Sequence[int], y: Sequence[int]) -> np.ndarray:
        """-log2 P(y[t] | history) for every position of one window; NaN where y is IGNORE."""
        xs = (PAD,) * (self.n - 1) + tuple(int(v) for v in x)
        out = np.full(len(y), np.nan)
        for t, target in enumerate(y):
            if target != IGNORE:
                out[t] = -math.log2(self.prob(xs[t + 1 : t + self.n], int(target)))
        return out

    def score(self, windows: Iterable[tuple[Sequence[int], Sequence[int]]],
              notes_per_id: Sequence[int]) -> dict[str, float | None]:
        """The figures every report uses; accuracy is None (this model's argmax is not computed)."""
        nll = tokens = notes = 0.0
        for x, y in windows:
            b = self.bits(x, y)
            keep = ~np.isnan(b)
            nll += float(b[keep].sum()) * math.log(2.0)
            tokens += int(keep.sum())
            notes += float(sum(notes_per_id[int(t)] for t, k in zip(y, keep) if k))
        return {**bits_report(nll, tokens, notes, 0.0), "accuracy": None}
