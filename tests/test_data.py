"""data/: training windows (piece and packed), transposition bounds, control dropping, the
validation carve, and bits/note computed by hand on a tiny set."""

import math

import numpy as np
import pytest
import torch
from music21 import corpus

from musicgpt.config import MODES, TokenizerConfig
from musicgpt.data.batches import LMBatches, eval_windows, make_evaluator
from musicgpt.data.splits import carve_valid
from musicgpt.data.tokens import IGNORE, encode_rows, shift_bounds
from musicgpt.errors import MusicGPTError
from musicgpt.scores import m21_to_score, normalize, write_midi
from musicgpt.tokens.tokenizer import MusicTokenizer

PIECES = ("bach/bwv66.6", "bach/bwv269")


@pytest.fixture(scope="module")
def tok():
    return MusicTokenizer.create(TokenizerConfig(), styles=("chorale",), modes=MODES)


@pytest.fixture(scope="module")
def ts(tok, tmp_path_factory):
    """Two real chorales as a token set, labelled chorale / ionian and chorale / aeolian."""
    root = tmp_path_factory.mktemp("data")
    rows = []
    for i, name in enumerate(PIECES):
        path = root / f"{i}.mid"
        write_midi(normalize(m21_to_score(corpus.parse(name))), path)
        rows.append({"id": name, "style": "chorale", "mode": ("ionian", "aeolian")[i], "midi": str(path)})
    return encode_rows(tok, rows, lambda r: root / r["midi"], None)


def _controls(tok):
    """Every style and mode token id."""
    return {i for m in MODES for i in tok.header("chorale", m)[1:]}


def test_piece_windows_start_at_a_bar_after_the_header_and_pad_the_rest(tok, ts):
    T = 2048  # longer than either piece: every window ends in padding
    x, y = LMBatches(ts, tok, T, 6)(torch.Generator().manual_seed(0))
    bar = tok.base.vocab["Bar_None"]
    for b in range(6):
        assert x[b, 0] == tok.bos_id
        body_start = 1 + sum(int(x[b, k]) in _controls(tok) for k in (1, 2))
        assert x[b, body_start] == bar
        assert (y[b, : body_start - 1] == IGNORE).all()  # controls are given, not predicted
        n = int((x[b] != tok.pad_id).sum())
        assert y[b, n - 1] == tok.eos_id and (y[b, n:] == IGNORE).all()


def test_packed_windows_fill_every_slot_and_mark_piece_boundaries(tok, ts):
    T = 600
    x, y = LMBatches(ts, tok, T, 8, windows="packed")(torch.Generator().manual_seed(1))
    assert (x != tok.pad_id).all()  # no padding anywhere
    controls = _controls(tok)
    for b in range(8):
        row_x, row_y = x[b].tolist(), y[b].tolist()
        for t in range(T):
            if row_y[t] == IGNORE:  # only BOS and control tokens are never predicted
                nxt = row_x[t + 1] if t + 1 < T else None
                assert nxt is None or nxt == tok.bos_id or nxt in controls
            if row_x[t] == tok.eos_id and t + 1 < T:
                assert row_x[t + 1] == tok.bos_id  # each piece closes with EOS, the next opens with BOS
        assert sum(v != IGNORE for v in row_y) > 0.95 * T
    starts = {int(x[b, 0]) for b in range(8)}
    assert len(starts) > 1  # windows begin anywhere, not always at BOS


def test_packed_windows_cross_into_other_pieces(tok, ts):
    x, _ = LMBatches(ts, tok, 3000, 2, windows="packed")(torch.Generator().manual_seed(0))
    assert all((row == tok.bos_id).sum() >= 2 for row in x)


def test_unknown_window_kind_is_a_clear_error(tok, ts):
    with pytest.raises(MusicGPTError, match="windows must be one of"):
        LMBatches(ts, tok, 64, 2, windows="sliding")


@pytest.mark.parametrize("windows", ["piece", "packed"])
def test_control_drop_one_removes_every_control(tok, ts, windows):
    x, _ = LMBatches(ts, tok, 512, 8, control_drop=1.0, windows=windows)(torch.Generator().manual_seed(2))
    controls = _controls(tok)
    assert not controls & set(x.flatten().tolist())


def test_control_drop_zero_keeps_the_pieces_own_labels(tok, ts):
    x, _ = LMBatches(ts, tok, 64, 16, control_drop=0.0)(torch.Generator().manual_seed(3))
    headers = {tuple(row[:3].tolist()) for row in x}
    assert headers <= {tuple(tok.header("chorale", "ionian")), tuple(tok.header("chorale", "aeolian"))}


def test_transposition_keeps_every_voice_inside_the_corpus_range(tok, ts):
    bounds = shift_bounds(ts, ts.prog_min.min(axis=0), ts.prog_max.max(axis=0), 6)
    assert (bounds[:, 0] <= 0).all() and (bounds[:, 1] >= 0).all()
    assert (bounds[:, 0] >= -6).all() and (bounds[:, 1] <= 6).all()
    pitch_of_id, _ = tok.pitch_shift_table()
    lo, hi = int(pitch_of_id[ts.ids][pitch_of_id[ts.ids] >= 0].min()), int(pitch_of_id[ts.ids].max())
    batches = LMBatches(ts, tok, 512, 16, transpose=6, windows="packed")
    gen = torch.Generator().manual_seed(4)
    seen_shift = False
    for _ in range(4):
        x, _ = batches(gen)
        p = pitch_of_id[x.numpy()]
        p = p[p >= 0]
        assert p.min() >= lo and p.max() <= hi  # never outside what the corpus sings
        seen_shift |= not np.isin(x.numpy(), ts.ids).all()
    assert seen_shift  # and the pieces do move


def test_carve_valid_takes_whole_groups_and_is_deterministic():
    rows = [{"id": f"p{i}", "group": f"g{i // 3}"} for i in range(60)]
    train, valid = carve_valid(rows, "c", 0.1)
    assert len(valid) == 6 and len(train) == 54
    assert not {r["group"] for r in train} & {r["group"] for r in valid}
    assert carve_valid(list(reversed(rows)), "c", 0.1)[1] == sorted(valid, key=lambda r: -int(r["id"][1:]))


def test_eval_windows_score_every_token_once(tok, ts):
    ctx = 256
    n = 0
    for x, y in eval_windows(ts, tok, ctx, with_controls=False):
        assert len(x) <= ctx and x[0] == tok.bos_id
        n += sum(v != IGNORE for v in y)
    assert n == len(ts.ids) + len(ts)  # every body token and each piece's EOS


class _Uniform(torch.nn.Module):
    """A model that gives every token the same probability: its figures are known in closed form."""

    def __init__(self, V):
        super().__init__()
        self.V, self.w = V, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return torch.zeros(*x.shape, self.V) + self.w, None


def test_bits_per_note_by_hand_for_a_uniform_model(tok, ts):
    V = tok.vocab_size
    report = make_evaluator(ts, tok, 256)(_Uniform(V))
    tokens = len(ts.ids) + len(ts)  # body tokens + EOS; control tokens are given
    notes = float(tok.notes_per_id()[ts.ids].sum())
    assert report["tokens"] == tokens
    assert report["notes"] == notes
    assert report["bits_per_token"] == pytest.approx(math.log2(V))
    assert report["bits_per_note"] == pytest.approx(tokens * math.log2(V) / notes)


def test_a_small_corpus_still_gets_one_validation_group():
    rows = [{"id": f"p{i}", "group": f"g{i}"} for i in range(4)]  # 10% of 4 rounds to 0 pieces
    train, valid = carve_valid(rows, "tiny", 0.1)
    assert len(valid) == 1 and len(train) == 3
    assert carve_valid([{"id": "a", "group": "g"}, {"id": "b", "group": "g"}], "one", 0.1)[1] == []


def test_texture_controls_travel_with_each_piece_and_the_tonic_moves_with_transposition(tmp_path):
    tok = MusicTokenizer.create(TokenizerConfig(), styles=("chorale",), modes=MODES, texture_controls=True)
    rows = []
    for i, name in enumerate(PIECES):
        path = tmp_path / f"{i}.mid"
        write_midi(normalize(m21_to_score(corpus.parse(name))), path)
        rows.append({"id": name, "style": "chorale", "mode": "ionian", "tonic": "A", "voices": 4,
                     "corpus": "c", "midi": str(path)})
    ts = encode_rows(tok, rows, lambda r: tmp_path / r["midi"], tmp_path / "cache")
    assert ts.tonics == ["A", "A"] and ts.voices == [4, 4]
    again = encode_rows(tok, rows, lambda r: tmp_path / r["midi"], tmp_path / "cache")  # from the cache
    assert (again.tonics, again.voices, again.corpora) == (ts.tonics, ts.voices, ["c", "c"])
    names = ("G", "G#", "A", "Bb", "B", "C", "F#", "F", "E", "Eb", "D", "C#")
    tonic_ids = {tok.tonic_id(t): t for t in names}
    batches = LMBatches(ts, tok, 64, 16, transpose=3, windows="piece")
    gen = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(6):
        x, _ = batches(gen)
        for row in x.tolist():
            header = row[: row.index(tok.base.vocab["Bar_None"])]
            assert tok.voices_id(4) in header or len(header) < 5  # dropped now and then
            for t in header:
                if t in tonic_ids:
                    seen.add(tonic_ids[t])
    assert "A" in seen
    from musicgpt.data.batches import piece_controls

    up = piece_controls(ts, 0, tok, [True] * 4, shift=3)  # the tonic moves with the notes
    assert up == {"style": "chorale", "voices": 4, "tonic": "C", "mode": "ionian"}
    assert piece_controls(ts, 0, tok, [False] * 4, shift=-2) == dict.fromkeys(up)


def test_balance_draws_small_corpora_more_often():
    from musicgpt.data.batches import balanced_weights

    lengths = np.array([100.0] * 9 + [100.0])  # corpus a: 900 tokens, corpus b: 100
    names = ["a"] * 9 + ["b"]
    share_b = lambda w: w[-1]  # noqa: E731
    assert share_b(balanced_weights(lengths, names, 1.0)) == pytest.approx(0.1)
    assert share_b(balanced_weights(lengths, names, 0.0)) == pytest.approx(0.5)
    assert share_b(balanced_weights(lengths, names, 0.5)) == pytest.approx(10 / (30 + 10))
    assert np.allclose(balanced_weights(lengths, ["a"] * 10, 0.0), 0.1)  # one corpus: as it falls
