"""Inside the model: attention maps and pitch embeddings (musicgpt.insight), and the two commands
that draw them, on the shipped model and a real chorale."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from musicgpt import insight
from musicgpt.cli import main
from musicgpt.continuation import load_prompt
from musicgpt.errors import MusicGPTError
from musicgpt.lm import load_model
from musicgpt.model import rotate

CHORALE = Path(__file__).parent / "fixtures" / "golden" / "src" / "chorales" / "bwv66.6.mxl"
T = 160  # tokens: six bars' worth, enough for every kind of token and all four voices


@pytest.fixture(scope="module")
def shipped():
    model, tok, _ = load_model()
    return model, tok


@pytest.fixture(scope="module")
def ids(shipped):
    _, tok = shipped
    return (tok.header(voices=4) + tok.encode(load_prompt(str(CHORALE))))[:T]


@pytest.fixture(scope="module")
def weights(shipped, ids):
    return insight.attention_weights(shipped[0], ids)


def test_every_row_is_a_causal_distribution(shipped, weights):
    model, _ = shipped
    assert weights.shape == (model.cfg.n_layer, model.cfg.n_head, T, T)
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    assert (weights >= 0).all()
    above = np.triu(np.ones((T, T), dtype=bool), 1)
    assert (weights[..., above] == 0).all()  # exactly: a token never sees a later one


def test_the_map_is_what_the_model_computes(shipped, ids, weights):
    """Each head's weights times its values, through the output projection, give the attention
    output the model itself produced (caught by a hook); and they equal torch's own softmax
    attention on the same q and k."""
    model, _ = shipped
    seen = {}
    hooks = [b.attn.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, (a, out)))
             for i, b in enumerate(model.blocks)]
    try:
        model(torch.tensor([ids]))
    finally:
        for h in hooks:
            h.remove()
    for layer, block in enumerate(model.blocks):
        (x, _, _, _, _, rope), out = seen[layer]
        B, n, C = x.shape
        nh, hs = block.attn.n_head, C // block.attn.n_head
        q, k, v = block.attn.qkv(x).view(B, n, 3, nh, hs).permute(2, 0, 3, 1, 4)  # (B, nh, T, hs)
        a = torch.from_numpy(weights[layer])[None]  # (1, nh, T, T)
        y = (a @ v).transpose(1, 2).reshape(B, n, C)
        torch.testing.assert_close(block.attn.proj(y), out, atol=2e-5, rtol=1e-4)
        q, k = rotate(q, *rope), rotate(k, *rope)
        eye = torch.eye(n).expand(nh, n, n)[None]  # sdpa of the identity as values: the weights
        sdpa = F.scaled_dot_product_attention(q, k, eye, is_causal=True)
        torch.testing.assert_close(a, sdpa, atol=2e-6, rtol=1e-4)


def test_a_model_with_a_learned_position_table_too():
    """GPT-2's positions (`--no-rope`) are added before the blocks: the weights still reproduce
    each block's attention output."""
    from musicgpt.config import ModelConfig
    from musicgpt.model import GPT

    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=40, context=32, n_layer=2, n_head=2, d_model=16, dropout=0.0,
                            rope=False)).eval()
    ids = torch.randint(0, 40, (20,)).tolist()
    seen = {}
    hooks = [b.attn.register_forward_hook(lambda m, a, out, i=i: seen.__setitem__(i, (a[0], out)))
             for i, b in enumerate(model.blocks)]
    with torch.no_grad():
        model(torch.tensor([ids]))
        for h in hooks:
            h.remove()
        w = insight.attention_weights(model, ids)
        for layer, block in enumerate(model.blocks):
            x, out = seen[layer]
            v = block.attn.qkv(x).view(1, 20, 3, 2, 8).permute(2, 0, 3, 1, 4)[2]  # (1, nh, T, hs)
            y = (torch.from_numpy(w[layer])[None] @ v).transpose(1, 2).reshape(1, 20, 16)
            torch.testing.assert_close(block.attn.proj(y), out, atol=1e-6, rtol=1e-5)


def test_one_head_and_the_mean_of_all(shipped, ids, weights):
    model, _ = shipped
    np.testing.assert_allclose(insight.attention_map(model, ids, 2, 1), weights[2, 1], atol=1e-7)
    mean = insight.attention_map(model, ids, 3, None)
    np.testing.assert_allclose(mean, weights[3].mean(0), atol=1e-7)
    np.testing.assert_allclose(mean.sum(-1), 1.0, atol=1e-5)


def test_computing_a_map_changes_nothing_in_the_model(shipped, ids):
    model, _ = shipped
    x = torch.tensor([ids])
    with torch.no_grad():
        before = model(x)[0].clone()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()  # a training-mode model is looked at in eval mode and handed back as it was
    try:
        insight.attention_map(model, ids, 1, 0)
        assert model.training
    finally:
        model.eval()
    with torch.no_grad():
        assert torch.equal(model(x)[0], before)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not any(b.attn._forward_pre_hooks for b in model.blocks)


def test_a_layer_or_head_out_of_range_is_one_clear_error(shipped, ids):
    model, _ = shipped
    with pytest.raises(MusicGPTError, match=r"`layer` must be 0 to 3 \(this model has 4 layers\), not 4"):
        insight.attention_map(model, ids, 4, 0)
    with pytest.raises(MusicGPTError, match="`head` must be 0 to 3 or all"):
        insight.attention_map(model, ids, 0, -1)
    with pytest.raises(MusicGPTError, match="exceed the model's context"):
        insight.attention_map(model, list(ids) * 4, 0, 0)


def test_token_roles_name_bars_and_voices(shipped, ids):
    _, tok = shipped
    roles = insight.token_roles(tok, ids)
    kinds = np.array(roles.kind)
    assert roles.bar.sum() == (kinds == "Bar").sum() > 2
    assert set(roles.voice[kinds == "Pitch"]) == {0, 1, 2, 3}  # a four-voice chorale, top voice 0
    assert (roles.voice[np.isin(kinds, ["Bar", "Position", "TimeSig", "BOS"])] == -1).all()
    first = int(np.flatnonzero(kinds == "Program")[0])  # Program, Pitch, Duration: one note, one voice
    assert list(kinds[first:first + 3]) == ["Program", "Pitch", "Duration"]
    assert len(set(roles.voice[first:first + 3])) == 1
    assert (roles.pitch[kinds == "Pitch"] >= 21).all() and (roles.pitch[kinds != "Pitch"] == -1).all()


def test_the_profile_of_known_matrices():
    kinds = ("BOS", "Bar", "Program", "Pitch", "Program", "Pitch", "Program", "Pitch")
    bar = np.array([k == "Bar" for k in kinds])
    roles = insight.TokenRoles(kinds, np.array([-1, -1, 0, 0, 1, 1, 0, 0]), bar,
                               np.array([-1, -1, -1, 60, -1, 64, -1, 62]))
    previous = np.eye(8, k=-1)
    previous[0, 0] = 1
    p = insight.attention_profile(previous, roles)
    assert p["previous"] == 1 and p["self"] == 0 and p["first"] == pytest.approx(1 / 7)
    assert p["last_bar"] == pytest.approx(1 / 6)  # of the 6 queries after the bar line, query 2 looks at it
    # voice 0's notes start at 2 and 6: the query 7 (and 6) look back at the note at 2, tokens 2-3
    assert p["prev_note"] == 0
    to_prev_note = np.zeros((8, 8))
    to_prev_note[np.arange(8), [0, 0, 1, 2, 3, 4, 3, 2]] = 1
    got = insight.attention_profile(to_prev_note, roles)
    assert got["prev_note"] == 1.0  # only queries 6 and 7 have a note before their own in their voice
    # no Position token here: no onset; with one, query 3's onset is keys 2.. (Position, Program)
    assert np.isnan(p["onset"])
    positioned = insight.TokenRoles(("BOS", "Bar", "Position", "Program", "Pitch"),
                                    np.array([-1, -1, -1, 0, 0]), np.array([0, 1, 0, 0, 0], dtype=bool),
                                    np.array([-1, -1, -1, -1, 60]))
    spread = np.tril(np.ones((5, 5)))
    spread[4] = [0, 0.5, 0.25, 0.25, 0]
    got = insight.attention_profile(spread / spread.sum(-1, keepdims=True), positioned)
    assert got["onset"] == pytest.approx((1 / 4 + 0.5) / 2)  # queries 3 and 4: 1 of 4 keys, then 0.25 + 0.25
    assert got["positions"] == pytest.approx((0 + 0 + 1 / 3 + 1 / 4 + 0.25) / 4)
    even = insight.attention_profile(insight.uniform_attention(8), roles)
    assert even["first"] == pytest.approx(np.mean([1 / (i + 1) for i in range(1, 8)]))
    np.testing.assert_allclose(insight.uniform_attention(8).sum(-1), 1)


def test_pca_of_known_vectors():
    t = np.linspace(-1, 1, 9)
    s = np.array([1, -1, 1, -1, 1, -1, 1, -1, 1]) * 0.5  # even in t, so uncorrelated with it
    vectors = np.zeros((9, 5))
    vectors[:, 3], vectors[:, 1] = 3 * t, s  # a plane in 5-D: the long axis is 3 * t
    rot = np.linalg.qr(np.random.default_rng(0).normal(size=(5, 5)))[0]
    coords, share = insight.pca(vectors @ rot + 7.0, 2)  # turned and moved: the same picture
    assert share.sum() == pytest.approx(1.0)
    assert share[0] > share[1] > 0
    assert np.allclose(np.abs(coords[:, 0]), np.abs(3 * t - (3 * t).mean()))
    assert np.allclose(np.abs(coords[:, 1]), np.abs(s - s.mean()))
    np.testing.assert_allclose(insight.project_2d(vectors @ rot + 7.0), coords)


def test_circle_fits_and_fourier_shares_tell_fifths_from_chromatic():
    angle = 2 * np.pi * np.arange(12) / 12
    ring = np.stack([np.cos(angle), np.sin(angle)], 1)
    chromatic = ring  # pitch class pc at step pc
    fifths = np.empty_like(ring)
    fifths[list(insight.FIFTHS)] = ring  # pitch class FIFTHS[i] at step i
    assert insight.circle_fit(chromatic, range(12)) == pytest.approx(1.0)
    assert insight.circle_fit(fifths, insight.FIFTHS) == pytest.approx(1.0)
    assert insight.circle_fit(fifths[:, ::-1], insight.FIFTHS) == pytest.approx(1.0)  # either way round
    assert insight.circle_fit(fifths, range(12)) < 0.2
    assert insight.fourier_shares(chromatic)[1] == pytest.approx(1.0)
    assert insight.fourier_shares(fifths)[5] == pytest.approx(1.0)


def test_pitch_embeddings_are_the_token_table_rows(shipped):
    model, tok = shipped
    names, vectors = insight.pitch_embeddings(model, tok)
    pitches = insight.pitch_token_pitches(tok)
    assert names[0] == "A0" and "C4" in names and len(names) == len(pitches) == len(vectors)
    c4 = tok.base.vocab["Pitch_60"]
    np.testing.assert_allclose(vectors[names.index("C4")], model.wte.weight[c4].detach().numpy(), rtol=1e-6)
    rare = insight.rarely_seen(vectors, pitches)
    assert rare[names.index("A0")] and rare[names.index("C8")]
    assert not rare[[names.index(n) for n in ("C3", "C4", "G4", "D5")]].any()
    g = insight.pitch_geometry(model, tok)
    assert g.coords.shape == (len(g.names), 2) and g.pc_points.shape == (12, 2)
    assert len(g.names) + len(g.left_out) == len(names)
    assert g.fourier.sum() == pytest.approx(1.0)
    sim = insight.interval_similarity(vectors[~rare], pitches[~rare])
    assert sim[0] == pytest.approx(1.0) and not math.isnan(sim[12])


# ---- the commands ------------------------------------------------------------------------------
@pytest.mark.slow
def test_attention_command_writes_the_png_and_refuses_what_it_may_not_replace(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from musicgpt.rendering.insight_plots import made_here

    monkeypatch.chdir(tmp_path)
    args = ["attention", str(CHORALE), "--layer", "1", "--head", "2", "--tokens", "96"]
    assert main(args) == 0
    out = tmp_path / "bwv66.6-attention-L1-H2.png"
    got = capsys.readouterr()
    assert f"wrote {out.name}" in got.out and "first 96 of" in got.err
    assert out.read_bytes().startswith(b"\x89PNG") and made_here(out)
    assert main(args) == 0  # its own picture, drawn before: replaced
    capsys.readouterr()

    mine = tmp_path / "bwv66.6-attention-L0-Hall.png"
    mine.write_bytes(b"my own picture")
    args = ["attention", str(CHORALE), "--layer", "0", "--head", "all", "--tokens", "64"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists and musicgpt did not draw it; pass --force" in err
    assert mine.read_bytes() == b"my own picture"
    assert main([*args, "--force"]) == 0 and made_here(mine)
    capsys.readouterr()

    assert main(["attention", str(CHORALE), "--layer", "4", "--head", "0", "--out", "x.png"]) == 2
    err = capsys.readouterr().err
    assert err == "musicgpt: error: --layer must be 0 to 3 (this model has 4 layers), not 4\n"
    assert main(["attention", str(CHORALE), "--layer", "0", "--head", "9", "--out", "x.png"]) == 2
    assert "--head must be 0 to 3 or all" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
    assert main(["attention", str(CHORALE), "--layer", "0", "--head", "0", "--out", "x.jpg"]) == 2
    assert "not a PNG file name" in capsys.readouterr().err


@pytest.mark.slow
def test_embeddings_command_writes_the_png(tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    from musicgpt.rendering.insight_plots import made_here

    monkeypatch.chdir(tmp_path)
    assert main(["embeddings", "--out", "pitches.png"]) == 0
    out = capsys.readouterr().out
    assert "wrote pitches.png" in out and "circle fit in fifths order" in out
    assert made_here(tmp_path / "pitches.png")
    (tmp_path / "default-embeddings.png").write_text("not a picture")
    assert main(["embeddings"]) == 2
    assert "pass --force" in capsys.readouterr().err
