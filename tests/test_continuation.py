"""Prompts, first bars and continuations with the shipped model: the header comes back as given,
a length in bars is honoured, and a fixed seed repeats the result."""

from __future__ import annotations

from pathlib import Path

import pytest
import symusic
import torch

import musicgpt
from musicgpt.config import SampleConfig
from musicgpt.continuation import continue_score, load_prompt
from musicgpt.errors import MusicGPTError
from musicgpt.lm import load_model
from musicgpt.scores import first_bars, write_midi

WEIGHTS = Path(musicgpt.__file__).parent / "weights"
GOLDEN_SRC = Path(__file__).parent / "fixtures" / "golden" / "src"
THEME = "C4 D4 E4 F4 G4:h E4:q C4 D4:h G3:h"  # three bars of 4/4
BAR = 4 * 480


def _notes(score: symusic.Score) -> list[tuple[int, int, int, int]]:
    return sorted((t.program, n.time, n.duration, n.pitch) for t in score.tracks for n in t.notes)


@pytest.fixture(scope="module")
def lm():
    model, tok, _ = load_model(WEIGHTS / "default.pt")
    return model, tok


def _continue(lm, prompt: symusic.Score, bars: int | None = 2, seed: int = 0, **kw):
    model, tok = lm
    cfg = SampleConfig(temperature=0.9, max_new_tokens=kw.pop("max_new_tokens", 200))
    return continue_score(model, tok, prompt, sample_cfg=cfg, bars=bars,
                          generator=torch.Generator().manual_seed(seed), **kw)


def test_first_bars_follows_midi_tok_bar_lines_through_a_meter_change():
    s = load_prompt("3/4 C4 D4 E4 F4 G4 A4 B4")  # bars of three quarters
    assert [n.pitch for n in first_bars(s, 1).tracks[0].notes] == [60, 62, 64]
    s.time_signatures.append(symusic.TimeSignature(3 * 480, 2, 4))  # from bar 2: 2/4
    assert [n.pitch for n in first_bars(s, 2).tracks[0].notes] == [60, 62, 64, 65, 67]
    assert first_bars(s, 99).note_num() == 7  # more bars than the score has: all of it


def test_first_bars_drops_a_note_that_crosses_the_cut_and_refuses_nonsense():
    s = load_prompt("C4:h. D4:h E4")
    assert [n.pitch for n in first_bars(s, 1).tracks[0].notes] == [60]
    with pytest.raises(MusicGPTError, match="at least 1"):
        first_bars(s, 0)
    with pytest.raises(MusicGPTError, match="hold no notes"):
        first_bars(load_prompt("R:w C4"), 1)


def test_load_prompt_reads_files_and_note_strings_alike(tmp_path):
    from_text = load_prompt(THEME, bars=1)
    assert [n.pitch for n in from_text.tracks[0].notes] == [60, 62, 64, 65]
    path = tmp_path / "theme.mid"
    write_midi(load_prompt(THEME), path)
    assert _notes(load_prompt(str(path), bars=1)) == _notes(from_text)
    with pytest.raises(MusicGPTError, match="empty"):
        load_prompt("  ")


def test_the_header_is_kept_unchanged_and_the_bars_are_honoured(lm):
    prompt = load_prompt(THEME)
    result = _continue(lm, prompt, bars=2)
    header = set(_notes(prompt))
    assert header <= set(_notes(result.score))
    assert set(_notes(result.continuation)).isdisjoint(header)
    assert len(_notes(result.score)) == len(header) + result.continuation.note_num()
    assert result.new_bars == 2 and result.error_rate == 0.0
    # the header's three bars, then two new ones: nothing sounds past bar 5
    assert max(n.end for t in result.continuation.tracks for n in t.notes) <= 5 * BAR
    one = _continue(lm, prompt, bars=1)
    assert one.new_bars == 1 and max(n.end for t in one.continuation.tracks for n in t.notes) <= 4 * BAR


def test_a_fixed_seed_repeats_the_continuation(lm):
    prompt = load_prompt(THEME)
    a, b = _continue(lm, prompt, seed=3), _continue(lm, prompt, seed=3)
    assert _notes(a.score) == _notes(b.score) and a.new_tokens == b.new_tokens
    tokens = _continue(lm, prompt, bars=None, seed=3, max_new_tokens=40)
    assert tokens.new_bars is None and tokens.new_tokens <= 40


def test_a_prompt_longer_than_the_context_is_refused(lm):
    model, _ = lm
    long = load_prompt(" ".join(["C4:s D4:s E4:s F4:s"] * (model.cfg.context // 2)))
    with pytest.raises(MusicGPTError, match="context"):
        _continue(lm, long)


def _programs(score: symusic.Score) -> set[int]:
    return {t.program for t in score.tracks if t.notes}


def test_a_one_voice_theme_continues_in_one_voice_unless_more_are_asked_for(lm):
    prompt = load_prompt(THEME)
    assert _programs(prompt) == {16}
    for seed in range(3):
        assert _programs(_continue(lm, prompt, seed=seed).continuation) == {16}
    from musicgpt.tokens.state import silent_bars

    for seed in range(4):  # the chorale model's one-voice bars came back empty before fill_bars
        result = _continue(lm, prompt, seed=seed, bars=3)
        assert result.new_bars == 3 and result.continuation.note_num() > 0
        ids = lm[1].encode(result.score)
        assert silent_bars(ids, lm[1].tables) == 0
    harmonised = [_programs(_continue(lm, prompt, seed=seed, voices=4).continuation) for seed in range(3)]
    # asked for four voices, all four enter (the model alone would go on in the header's one)
    assert harmonised == [{16, 17, 18, 19}] * 3


def test_a_chorale_header_keeps_its_voices_and_the_meter_stays_the_headers(lm):
    prompt = load_prompt(str(GOLDEN_SRC / "chorales" / "bwv66.6.mxl"), bars=4)
    result = _continue(lm, prompt, bars=2)
    assert _programs(result.continuation) <= _programs(prompt)
    waltz = load_prompt("3/4 D4:q F4 A4 G4:h F4:q E4:q D4 C#4 D4:h.")
    for seed in range(3):
        cont = _continue(lm, waltz, seed=seed).score
        assert {(ts.numerator, ts.denominator) for ts in cont.time_signatures} == {(3, 4)}


def test_voices_out_of_range_is_refused(lm):
    with pytest.raises(MusicGPTError, match="voices"):
        _continue(lm, load_prompt(THEME), voices=9)


def _pcs(score: symusic.Score) -> set[int]:
    return {n.pitch % 12 for t in score.tracks for n in t.notes}


def test_a_requested_mode_holds_the_new_notes_to_its_scale_and_ends_on_the_tonic(lm):
    from musicgpt.theory import MODE_SCALES, final_bass_pc, sounds_mode

    prompt = load_prompt("D4:q F4 G4 A4 G4:h F4:q E4 D4:h")  # D, by its first and last notes
    outputs = {}
    for mode in ("dorian", "aeolian", "mixolydian"):
        result = _continue(lm, prompt, bars=2, seed=5, mode=mode, tonic="D")
        assert result.key == ("D", mode) and result.key_kept and result.key_source == "given"
        new = result.continuation
        assert _pcs(new) <= {(2 + s) % 12 for s in MODE_SCALES[mode]}
        assert sounds_mode(_pcs(new), 2, mode)  # e.g. dorian's B and F or C: that mode to the ear
        assert result.final_on_tonic is (final_bass_pc(new) == 2)
        outputs[mode] = _notes(new)
    assert len(set(map(tuple, outputs.values()))) == 3  # each mode changes the music
    # --free: the same request only told, so the notes may leave the scale
    told = _continue(lm, prompt, bars=2, seed=5, mode="dorian", tonic="D", keep_key=False)
    assert not told.key_kept and told.final_on_tonic is None


def test_without_a_key_the_headers_own_is_inferred_and_nothing_is_held(lm):
    prompt = load_prompt(THEME)
    result = _continue(lm, prompt, bars=2)
    assert result.key == ("C", "ionian") and result.key_source == "inferred from the header"
    assert not result.key_kept
    assert _continue(lm, prompt, bars=2, infer_key=False).key is None
    only_mode = _continue(lm, prompt, bars=2, mode="lydian")
    assert only_mode.key == ("C", "lydian") and "tonic inferred" in only_mode.key_source
    assert _pcs(only_mode.continuation) <= {0, 2, 4, 6, 7, 9, 11}  # C lydian: F sharp, no F


def test_scale_mask_and_last_bass_read_the_tokens(lm):
    from musicgpt.continuation import last_bass_pc, scale_mask

    tok = lm[1]
    keep = scale_mask(tok, 2, "dorian")
    pitch = tok.tables.pitch
    for i in range(tok.vocab_size):
        if pitch[i] >= 0:
            assert bool(keep[i]) == (pitch[i] % 12 in {2, 4, 5, 7, 9, 11, 0})
        else:
            assert bool(keep[i])
    ids = tok.encode(load_prompt("C4 D4 E4 G3"))
    assert last_bass_pc(tok, ids) == 7
    assert last_bass_pc(tok, []) is None
    with pytest.raises(MusicGPTError, match="no scale"):
        scale_mask(tok, 0, "other")


def test_bars_the_header_only_holds_a_note_through_are_the_headers_not_new_ones(lm):
    from musicgpt.continuation import held_bars

    prompt = load_prompt("C4:q D4 E4 F4:w")  # F4 starts on beat 4 of bar 1 and sounds through bar 2
    assert held_bars(prompt) == 1
    result = _continue(lm, prompt, bars=2, max_new_tokens=300)
    assert result.new_bars == 2
    onsets = [n.time for t in result.continuation.tracks for n in t.notes]
    bar = 4 * prompt.ticks_per_quarter
    assert max(onsets) >= 3 * bar  # the second new bar is bar 4: bar 2 was the header's
