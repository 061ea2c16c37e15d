"""Classification metrics shared by the classifier's evaluation and the baselines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def accuracy(y: Sequence[int], p: Sequence[int]) -> float:
    y, p = np.asarray(y), np.asarray(p)
    return float((y == p).mean()) if len(y) else float("nan")


def confusion(y: Sequence[int], p: Sequence[int], n: int) -> np.ndarray:
    """(n, n) counts; rows are true labels, columns predictions."""
    out = np.zeros((n, n), dtype=np.int64)
    np.add.at(out, (np.asarray(y, dtype=int), np.asarray(p, dtype=int)), 1)
    return out


def macro_f1(y: Sequence[int], p: Sequence[int], n: int) -> float:
    """F1 averaged over the classes that occur in y or p."""
    c = confusion(y, p, n)
    tp = np.diag(c).astype(float)
    support = c.sum(axis=1) + c.sum(axis=0)
    present = support > 0
    f1 = np.where(present, 2 * tp / np.maximum(support, 1), 0.0)
    return float(f1[present].mean()) if present.any() else float("nan")


def expected_calibration_error(probs: np.ndarray, y: Sequence[int], bins: int = 10) -> float:
    """ECE: |accuracy - confidence| averaged over equal-width confidence bins, weighted by count."""
    probs = np.asarray(probs, dtype=float)
    conf = probs.max(axis=1)
    right = probs.argmax(axis=1) == np.asarray(y)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            ece += sel.mean() * abs(right[sel].mean() - conf[sel].mean())
    return float(ece)
