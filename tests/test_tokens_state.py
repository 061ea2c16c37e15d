"""The token-state machine and the note reader on hand-written REMI and TSD streams."""

import numpy as np
import pytest

from musicgpt.config import MODES, TokenizerConfig
from musicgpt.tokens.state import TokenState, read_notes, silent_bars
from musicgpt.tokens.tokenizer import MusicTokenizer


@pytest.fixture(scope="module", params=["REMI", "TSD"])
def tok(request):
    return MusicTokenizer.create(TokenizerConfig(kind=request.param), styles=("chorale",), modes=MODES)


def test_remi_bars_positions_programs_and_durations():
    tok = MusicTokenizer.create(TokenizerConfig(), styles=("chorale",), modes=MODES)
    v = tok.base.vocab
    ids = [tok.bos_id, tok.style_id("chorale")] + [v[t] for t in (
        "Bar_None TimeSig_3/4 Position_12 Program_16 Pitch_60 Duration_2.0.12 "
        "Bar_None TimeSig_3/4 Position_0 Program_19 Pitch_48 Duration_0.6.12 "
        "Bar_None TimeSig_4/4 Position_0 Program_16 Pitch_62").split()]
    notes = read_notes(np.array(ids), tok.tables)
    assert notes["index"].tolist() == [6, 12, 18]
    assert notes["pitch"].tolist() == [60, 48, 62]
    assert notes["voice"].tolist() == [16, 19, 16]
    assert notes["onset"].tolist() == [12, 36, 72]  # 12 ticks per beat, bars of 3 beats
    assert notes["bar"].tolist() == [0, 36, 72]
    assert notes["dur"].tolist() == [24, 6, 12]  # the last has no Duration yet: one beat
    s = TokenState(tok.tables).feed(ids)
    assert (s.bars, s.bar_len, s.last, s.program, s.pitch, s.duration) == (3, 48, "Pitch", 16, 62, 6)


def test_tsd_clock_runs_on_time_shifts():
    tok = MusicTokenizer.create(TokenizerConfig(kind="TSD"))
    v = tok.base.vocab
    ids = [tok.bos_id, v["TimeSig_4/4"], v["Program_16"], v["Pitch_60"], v["Duration_1.0.12"],
           v["TimeShift_4.0.4"], v["Program_16"], v["Pitch_64"], v["Duration_0.6.12"],
           v["TimeShift_0.6.12"], v["Program_17"], v["Pitch_55"], v["Duration_1.0.12"]]
    notes = read_notes(np.array(ids), tok.tables)
    assert notes["onset"].tolist() == [0, 48, 54]
    assert notes["bar"].tolist() == [0, 48, 48]
    assert notes["dur"].tolist() == [12, 6, 12]


def test_state_forgets_the_onset_notes_when_time_moves(tok):
    v = tok.base.vocab
    move = v["Position_12"] if tok.cfg.kind == "REMI" else v["TimeShift_1.0.12"]
    s = TokenState(tok.tables).feed([v["Program_16"], v["Pitch_60"], v["Pitch_64"]])
    assert s.here == {16: {v["Pitch_60"], v["Pitch_64"]}}
    s.step(move)
    assert s.here == {}
    s.reset()
    assert (s.last, s.bars, s.program) == ("BOS", 0, -1)


def test_control_and_special_ids_do_not_move_the_state(tok):
    s = TokenState(tok.tables).feed([tok.bos_id, tok.base_size])
    assert s.last == "BOS" and s.onset == 0 and s.bar == 0
    assert read_notes(np.array([tok.bos_id, tok.base_size, tok.eos_id]), tok.tables)["pitch"].size == 0


def test_silent_bars_are_those_nothing_starts_or_sounds_in():
    tok = MusicTokenizer.create(TokenizerConfig())
    v = tok.base.vocab
    ids = lambda text: [v[t] for t in text.split()]  # noqa: E731
    # bar 1: a note held for two bars; bar 2: it still sounds; bar 3: nothing; bar 4: a note
    stream = ids("Bar_None TimeSig_4/4 Position_0 Program_16 Pitch_60 Duration_8.0.4 "
                 "Bar_None TimeSig_4/4 Bar_None TimeSig_4/4 Bar_None TimeSig_4/4 Position_12 "
                 "Program_16 Pitch_62 Duration_1.0.12")
    assert silent_bars(stream, tok.tables) == 1
    assert silent_bars(stream + ids("Bar_None TimeSig_4/4"), tok.tables) == 2  # a begun, empty bar
    assert silent_bars(stream, tok.tables, after=12) == 0  # only the last bar counted
    s = TokenState(tok.tables).feed(stream[:8])
    assert not s.bar_is_silent  # bar 2: the held note sounds into it
    s.feed(stream[8:10])
    assert s.bar_is_silent
