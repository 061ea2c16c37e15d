"""Modified Kneser-Ney: a proper distribution, Chen & Goodman's discounts, and a better anchor
than Witten-Bell on real chorale tokens."""

import math

import pytest
from music21 import corpus

from musicgpt.config import MODES, TokenizerConfig
from musicgpt.data.tokens import IGNORE
from musicgpt.evaluation.kneser_ney import KneserNey, _discounts
from musicgpt.evaluation.ngram import NGram
from musicgpt.scores import m21_to_score, normalize
from musicgpt.tokens.tokenizer import MusicTokenizer

SEQ = [0, 1, 2, 0, 1, 3, 0, 1, 2, 2, 1, 0, 3, 3, 1, 2]


def windows(seq):
    return [(seq[:-1], seq[1:])]


@pytest.mark.parametrize("order", [1, 2, 3, 5])
@pytest.mark.parametrize("history", [[0, 1], [3, 3], [4, 4], []])
def test_probabilities_sum_to_one(order, history):
    kn = KneserNey(order, 6).fit(windows(SEQ))
    padded = [-1] * (order - 1 - len(history)) + history if order > 1 else history
    assert sum(kn.prob(padded, w) for w in range(6)) == pytest.approx(1.0)


def test_unigram_by_hand():
    # the 15 targets (SEQ[1:]) count 0:3 1:5 2:4 3:3; with 3+ counts everywhere, D3 applies to all
    kn = KneserNey(1, 5).fit(windows(SEQ))
    counts = {0: 3, 1: 5, 2: 4, 3: 3}  # targets are SEQ[1:]
    d1, d2, d3 = kn.discount[1]
    gamma = sum(d3 for c in counts.values()) / 15
    assert kn.prob([], 1) == pytest.approx((5 - d3) / 15 + gamma / 5)
    assert kn.prob([], 4) == pytest.approx(gamma / 5)  # never seen: only the uniform share


def test_discounts_follow_chen_and_goodman():
    counts = {("a",): 1, ("b",): 1, ("c",): 1, ("d",): 2, ("e",): 3, ("f",): 4}
    y = 3 / (3 + 2 * 1)
    assert _discounts(counts) == pytest.approx((1 - 2 * y * 1 / 3, 2 - 3 * y * 1 / 1, 3 - 4 * y * 1 / 1))


def test_ignored_targets_are_not_counted():
    kn = KneserNey(2, 4).fit([([0, 1, 2], [1, IGNORE, 3])])
    assert sum(kn.counts[2].values()) == 2


def test_kneser_ney_beats_witten_bell_on_held_out_chorale_tokens():
    tok = MusicTokenizer.create(TokenizerConfig(), styles=("chorale",), modes=MODES)
    ids = [tok.header()[0:1] + tok.encode(normalize(m21_to_score(corpus.parse(n))))
           for n in ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1")]
    train, test = [(s[:-1], s[1:]) for s in ids[:3]], [(ids[3][:-1], ids[3][1:])]
    notes = tok.notes_per_id()
    kn = KneserNey(6, tok.vocab_size).fit(train).score(test, notes)
    wb = NGram(6, tok.vocab_size).fit(train).score(test, notes)
    assert math.isfinite(kn["bits_per_token"])
    assert kn["bits_per_token"] < wb["bits_per_token"]
