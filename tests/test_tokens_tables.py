"""Per-id tables: MidiTok's beat strings, bar lengths, and the lookups built from a vocabulary."""

import numpy as np

from musicgpt.config import MODES, TokenizerConfig
from musicgpt.tokens.tables import CONTROL, bar_ticks, beats
from musicgpt.tokens.tokenizer import MusicTokenizer


def test_beats_and_bar_lengths():
    assert beats("2.6.12") == 2.5 and beats("0.1.4") == 0.25
    assert bar_ticks("3/4", 12) == 36 and bar_ticks("6/8", 12) == 72 and bar_ticks("4/2", 12) == 48


def test_tables_of_a_remi_vocabulary():
    tok = MusicTokenizer.create(TokenizerConfig(), styles=("chorale",), modes=MODES)
    t, v = tok.tables, tok.base.vocab
    assert tok.tables is t  # computed once
    assert t.vocab_size == tok.vocab_size and t.res == 12 and t.bar_id == v["Bar_None"]
    assert t.type[v["Pitch_60"]] == "Pitch" and t.type[tok.style_id("chorale")] == CONTROL
    assert t.pitch[v["Pitch_60"]] == 60 and t.program[v["Program_19"]] == 19
    assert t.duration[v["Duration_1.6.12"]] == 18 and t.position[v["Position_7"]] == 7
    assert t.bar_len[v["TimeSig_3/4"]] == 36
    assert t.id_of_pitch()[60] == v["Pitch_60"] and t.id_of_pitch()[0] == -1
    np.testing.assert_array_equal(t.ids_of("Bar"), [v["Bar_None"]])


def test_tsd_has_time_shifts_and_no_bar():
    t = MusicTokenizer.create(TokenizerConfig(kind="TSD")).tables
    assert t.bar_id == -1 and t.shift.max() > 0 and (t.position == -1).all()
