import math

from musicgpt.data.tokens import IGNORE
from musicgpt.evaluation.ngram import NGram


def test_probabilities_sum_to_one():
    windows = [([1, 5, 6, 7, 5, 6], [5, 6, 7, 5, 6, 7])]
    m = NGram(3, 10).fit(windows)
    for hist in ([], [5], [5, 6], [9, 9]):
        assert math.isclose(sum(m.prob(hist, w) for w in range(10)), 1.0, rel_tol=1e-9)


def test_higher_order_learns_a_cycle_better():
    seq = [5, 6, 7] * 30
    windows = [(seq[:-1], seq[1:])]
    notes = [1] * 10
    uni = NGram(1, 10).fit(windows).score(windows, notes)
    tri = NGram(3, 10).fit(windows).score(windows, notes)
    assert tri["bits_per_token"] < 0.5 * uni["bits_per_token"]
    assert tri["accuracy"] > 0.9


def test_ignored_targets_are_not_counted():
    windows = [([1, 2, 3], [IGNORE, 3, 4])]
    m = NGram(2, 10).fit(windows)
    assert sum(m.counts[0][()].values()) == 2
    r = m.score(windows, [1] * 10)
    assert r["tokens"] == 2
