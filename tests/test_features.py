"""The key head's note reader, pitch-class pooling and rotation equivariance, on a real chorale."""

import numpy as np
import pytest
import torch
from music21 import corpus

from musicgpt.classifier.features import CHANNELS, channel_weights, pitch_class_pool
from musicgpt.classifier.heads import KeyHead
from musicgpt.config import MODES, TokenizerConfig
from musicgpt.scores import load_score
from musicgpt.scores import normalize as assign_voice_programs
from musicgpt.tokens.state import read_notes
from musicgpt.tokens.tables import token_tables
from musicgpt.tokens.tokenizer import MusicTokenizer


@pytest.fixture(scope="module")
def chorale():
    tok = MusicTokenizer.create(TokenizerConfig(), ("chorale",), MODES)
    score = assign_voice_programs(load_score(corpus.getWork("bach/bwv66.6")))
    ids = np.asarray(tok.encode(score), dtype=np.int64)
    return tok, ids, token_tables(tok.base.vocab, tok.vocab_size)


def test_notes_read_from_tokens_match_the_decoded_score(chorale):
    tok, ids, t = chorale
    notes = read_notes(ids, t)
    back = tok.decode(ids.tolist())
    tpq = back.ticks_per_quarter
    want = sorted((int(n.time) * t.res // tpq, int(n.pitch), int(n.duration) * t.res // tpq)
                  for tr in back.tracks for n in tr.notes)
    got = sorted(zip(notes["onset"].tolist(), notes["pitch"].tolist(), notes["dur"].tolist()))
    assert got == want
    assert len(set(notes["voice"].tolist())) == 4
    assert (np.asarray(t.pitch)[ids[notes["index"]]] == notes["pitch"]).all()


def test_channels_find_the_final_bass_note_and_the_first_onset(chorale):
    _, ids, t = chorale
    notes = read_notes(ids, t)
    W = channel_weights(notes, t.res)
    assert W.shape == (len(CHANNELS), len(notes["pitch"]))
    last = np.flatnonzero(W[CHANNELS.index("bass_last")])
    assert len(last) == 1 and notes["onset"][last[0]] == notes["onset"].max()
    lowest_at_end = notes["pitch"][notes["onset"] == notes["onset"].max()].min()
    assert notes["pitch"][last[0]] == lowest_at_end  # bwv66.6 ends on F# in the bass
    assert lowest_at_end % 12 == 6
    assert W[CHANNELS.index("voice_last")].sum() == 4 == W[CHANNELS.index("voice_first")].sum()
    mass, state = pitch_class_pool(torch.randn(len(ids), 16), notes, t.res)
    assert mass.shape == (len(CHANNELS), 12) and state.shape == (len(CHANNELS), 12, 16)
    assert torch.allclose(mass.sum(-1), torch.ones(len(CHANNELS)))


def test_token_transposition_rotates_the_pitch_class_masses(chorale):
    tok, ids, t = chorale
    pitch_of_id, id_of_pitch = tok.pitch_shift_table()
    moved = np.where(pitch_of_id[ids] >= 0, id_of_pitch[np.clip(pitch_of_id[ids] + 6, 0, 127)], ids)
    h = torch.zeros(len(ids), 4)
    m0, _ = pitch_class_pool(h, read_notes(ids, t), t.res)
    m6, _ = pitch_class_pool(h, read_notes(moved, t), t.res)
    assert torch.allclose(m6, torch.roll(m0, 6, dims=-1))


def test_key_head_is_rotation_equivariant():
    torch.manual_seed(0)
    head = KeyHead(d_model=16, proj=3, hidden=8).eval()
    mass = torch.rand(2, len(CHANNELS), 12)
    state = torch.randn(2, len(CHANNELS), 12, 16)
    for s in (1, 6, 11):
        a = head(mass, state).reshape(2, 12, 8)
        b = head(torch.roll(mass, s, dims=2), torch.roll(state, s, dims=2)).reshape(2, 12, 8)
        assert torch.allclose(torch.roll(a, s, dims=1), b, atol=1e-5)  # tonic moves, mode stays


def test_key_head_with_style_context_stays_equivariant_and_uses_it():
    torch.manual_seed(0)
    head = KeyHead(d_model=16, proj=3, hidden=8, n_context=5).eval()
    mass = torch.rand(2, len(CHANNELS), 12)
    state = torch.randn(2, len(CHANNELS), 12, 16)
    ctx = torch.softmax(torch.randn(2, 5), -1)
    a = head(mass, state, ctx).reshape(2, 12, 8)
    b = head(torch.roll(mass, 6, dims=2), torch.roll(state, 6, dims=2), ctx).reshape(2, 12, 8)
    assert torch.allclose(torch.roll(a, 6, dims=1), b, atol=1e-5)
    other = head(mass, state, torch.roll(ctx, 1, dims=1)).reshape(2, 12, 8)
    assert not torch.allclose(a, other)  # the context is read
    with pytest.raises(ValueError, match="context"):
        head(mass, state)
