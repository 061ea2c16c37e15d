"""The grammar mask: samples that decode cleanly, REMI's bar rules, and incremental stepping."""

import pytest
import torch
from music21 import corpus

from musicgpt.config import MODES, TokenizerConfig
from musicgpt.scores import m21_to_score
from musicgpt.tokens.state import TokenState
from musicgpt.tokens.tokenizer import MusicTokenizer


@pytest.fixture(scope="module")
def tok():
    return MusicTokenizer.create(TokenizerConfig(), styles=("chorale", "mass"), modes=MODES)


@pytest.mark.parametrize("kind", ["REMI", "TSD"])
def test_grammar_mask_makes_random_tokens_decode_cleanly(kind):
    """Sampling uniformly among the allowed tokens never breaks MidiTok's grammar."""
    tok = MusicTokenizer.create(TokenizerConfig(kind=kind), styles=("chorale",), modes=MODES)
    grammar = tok.grammar()
    gen = torch.Generator().manual_seed(0)
    ids = tok.header("chorale", "ionian")
    for _ in range(400):
        allowed = grammar.allowed(ids)
        choices = torch.nonzero(allowed).flatten()
        ids.append(int(choices[torch.randint(len(choices), (1,), generator=gen)]))
        if ids[-1] == tok.eos_id:
            break
    assert tok.error_rate(ids) == 0.0
    assert tok.decode(ids).note_num() > 0


def test_grammar_forbids_going_back_in_the_bar(tok):
    grammar = tok.grammar()
    v = tok.base.vocab
    prefix = [tok.bos_id, v["Bar_None"], v["TimeSig_4/4"], v["Position_12"], v["Program_16"],
              v["Pitch_60"], v["Duration_1.0.12"]]
    allowed = grammar.allowed(prefix)
    assert not allowed[v["Position_6"]] and not allowed[v["Position_12"]]
    assert allowed[v["Position_24"]]
    # 4/4 has 48 positions per bar at 12 per beat: position 47 is the last legal one
    assert allowed[v["Position_47"]] and not allowed[v["Position_60"]]
    # the same voice may not repeat a pitch at one position
    same = prefix + [v["Program_16"]]
    assert not grammar.allowed(same)[v["Pitch_60"]]
    assert grammar.allowed(prefix + [v["Program_17"]])[v["Pitch_60"]]


def test_a_meter_change_moves_the_end_of_the_bar(tok):
    v = tok.base.vocab
    allowed = tok.grammar().allowed([tok.bos_id, v["Bar_None"], v["TimeSig_3/4"]])
    assert allowed[v["Position_35"]] and not allowed[v["Position_36"]]


@pytest.mark.parametrize("kind", ["REMI", "TSD"])
def test_stepping_costs_one_step_per_token_and_equals_a_fresh_replay(kind, monkeypatch):
    """Asked after every token of a chorale, the grammar steps each token once (O(n) in all,
    no rescan of the prefix), and its masks are those of a grammar that reads the prefix anew."""
    tok = MusicTokenizer.create(TokenizerConfig(kind=kind), styles=("chorale",), modes=MODES)
    ids = tok.header("chorale") + tok.encode(m21_to_score(corpus.parse("bach/bwv66.6")))
    grammar, fresh = tok.grammar(), tok.grammar()
    steps = 0
    step = TokenState.step

    def counted(self, i):
        nonlocal steps
        steps += self is grammar.state
        return step(self, i)

    monkeypatch.setattr(TokenState, "step", counted)
    for k in range(1, len(ids) + 1):
        mask = grammar.allowed(ids[:k])
        if k % 97 == 0 or k == len(ids):
            fresh.reset()
            assert torch.equal(mask, fresh.allowed(ids[:k]))
    assert steps == len(ids)


def test_a_prefix_that_does_not_extend_the_last_one_is_replayed(tok):
    v = tok.base.vocab
    grammar = tok.grammar()
    a = [tok.bos_id, v["Bar_None"], v["TimeSig_4/4"], v["Position_24"], v["Program_16"]]
    b = [tok.bos_id, v["Bar_None"], v["TimeSig_4/4"], v["Position_12"]]
    assert not grammar.allowed(a + [v["Pitch_60"], v["Duration_1.0.12"]])[v["Position_12"]]
    assert torch.equal(grammar.allowed(b), tok.grammar().allowed(b))  # shorter: replayed
    grammar.allowed(a)
    grammar.state.pos = 47  # as if earlier ids had been rewritten in place
    grammar.reset()
    assert torch.equal(grammar.allowed(a), tok.grammar().allowed(a))


def test_masks_are_fresh_tensors(tok):
    grammar = tok.grammar()
    first = grammar.allowed([tok.bos_id])
    first[:] = False
    assert grammar.allowed([tok.bos_id]).any()


def test_fill_bars_forbids_closing_a_bar_in_which_nothing_sounds(tok):
    v = tok.base.vocab
    grammar = tok.grammar()
    grammar.fill_bars = True
    start = tok.header() + [v["Bar_None"], v["TimeSig_4/4"]]
    assert not grammar.allowed(start)[v["Bar_None"]] and not grammar.allowed(start)[tok.eos_id]
    assert grammar.allowed(start)[v["Position_0"]]
    note = start + [v[t] for t in "Position_0 Program_16 Pitch_60 Duration_1.0.12".split()]
    assert grammar.allowed(note)[v["Bar_None"]]
    # random streams under the rule: no bar is empty
    from musicgpt.tokens.state import silent_bars

    gen = torch.Generator().manual_seed(1)
    ids = list(start)
    grammar.reset()
    for _ in range(300):
        allowed = grammar.allowed(ids).clone()
        allowed[tok.eos_id] = False  # run on: a random stream would soon end
        choices = torch.nonzero(allowed).flatten()
        ids.append(int(choices[torch.randint(len(choices), (1,), generator=gen)]))
    assert ids.count(v["Bar_None"]) > 2 and silent_bars(ids, tok.tables) == 0
