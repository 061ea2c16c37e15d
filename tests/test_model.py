"""The transformer: causality, cache equivalence, learning, hidden states, optimiser groups."""

import pytest
import torch

from musicgpt.config import ModelConfig
from musicgpt.model import GPT, KVCache

V, CTX = 37, 32



def tiny(dropout: float = 0.0, **kw) -> GPT:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=V, context=CTX, n_layer=2, n_head=2, d_model=32, dropout=dropout, **kw)
    return GPT(cfg).eval()


@pytest.mark.parametrize("rope", [False, True])
def test_changing_a_later_token_never_changes_earlier_logits(rope):
    model = tiny(rope=rope)
    g = torch.Generator().manual_seed(1)
    x = torch.randint(V, (2, 20), generator=g)
    base, _ = model(x)
    for t in range(0, 19):
        y = x.clone()
        y[:, t + 1] = (y[:, t + 1] + 1) % V
        changed, _ = model(y)
        torch.testing.assert_close(changed[:, : t + 1], base[:, : t + 1], rtol=0, atol=1e-5)
        assert not torch.allclose(changed[:, t + 1], base[:, t + 1])  # the change is seen


@pytest.mark.parametrize("rope", [False, True])
@pytest.mark.parametrize("chunks", [[20], [1] * 20, [7, 1, 1, 11], [5, 15]])
def test_cached_logits_equal_uncached(chunks, rope):
    model = tiny(rope=rope)
    x = torch.randint(V, (3, 20), generator=torch.Generator().manual_seed(2))
    full, _ = model(x)
    cache = model.new_cache(3)
    outs, at = [], 0
    for n in chunks:  # prefill, single steps, and a multi-token prefill into a non-empty cache
        logits, _ = model(x[:, at : at + n], cache=cache)
        outs.append(logits)
        at += n
    assert cache.pos == 20
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=1e-4, atol=1e-5)


def test_cache_past_the_context_is_refused():
    model = tiny()
    cache = KVCache(model.cfg, 1)
    model(torch.zeros(1, CTX, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="exceed the context"):
        model(torch.zeros(1, 1, dtype=torch.long), cache=cache)


def test_tiny_model_overfits_a_tiny_batch():
    model = tiny().train()
    g = torch.Generator().manual_seed(3)
    x = torch.randint(V, (4, 17), generator=g)
    inputs, targets = x[:, :-1], x[:, 1:].clone()
    targets[:, :3] = -100  # ignored positions must not count
    opt = model.configure_optimizer(weight_decay=0.0, lr=3e-3)
    _, first = model(inputs, targets)
    for _ in range(150):
        _, loss = model(inputs, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert first.item() > 3.0  # about ln(37) at the start
    assert loss.item() < 0.2


def test_loss_ignores_masked_targets():
    model = tiny()
    x = torch.randint(V, (2, 10), generator=torch.Generator().manual_seed(4))
    y = x.roll(-1, 1)
    y2 = y.clone()
    y2[:, 5:] = -100
    logits, loss = model(x, y2)
    expected = torch.nn.functional.cross_entropy(logits[:, :5].reshape(-1, V), y[:, :5].reshape(-1))
    torch.testing.assert_close(loss, expected)


def test_hidden_states_shape_and_final_layernorm():
    model = tiny()
    h = model.hidden_states(torch.randint(V, (3, 11)))
    assert h.shape == (3, 11, 32)
    # after the final LayerNorm with its initial unit gain: zero mean, unit variance per position
    torch.testing.assert_close(h.mean(-1), torch.zeros(3, 11), atol=1e-5, rtol=0)


def test_attention_mask_hides_left_padding():
    model = tiny()
    x = torch.randint(1, V, (1, 8), generator=torch.Generator().manual_seed(5))
    pad_a = torch.cat([torch.zeros(1, 3, dtype=torch.long), x], 1)
    pad_b = torch.cat([torch.full((1, 3), 9, dtype=torch.long), x], 1)
    mask = torch.cat([torch.zeros(1, 3, dtype=torch.bool), torch.ones(1, 8, dtype=torch.bool)], 1)
    ha = model.hidden_states(pad_a, attention_mask=mask)
    hb = model.hidden_states(pad_b, attention_mask=mask)
    assert not torch.isnan(ha).any()  # padded queries see themselves, not nothing
    torch.testing.assert_close(ha[:, 3:], hb[:, 3:], rtol=1e-4, atol=1e-5)  # padding is invisible
    # without the mask the padding is read
    assert not torch.allclose(model.hidden_states(pad_a)[:, 3:], model.hidden_states(pad_b)[:, 3:])


def test_label_counts_in_an_old_config_build_no_heads():
    """Old checkpoints' configs carry n_style/n_mode; the GPT is the same body either way."""
    assert tiny(n_style=3, n_mode=8).state_dict().keys() == tiny().state_dict().keys()


def test_optimizer_decays_matrices_but_not_biases_norms_or_positions():
    model = tiny(rope=False)  # with a position table, which is not decayed
    opt = model.configure_optimizer(weight_decay=0.1, lr=1e-3)
    decay, no_decay = ({id(p) for p in g["params"]} for g in opt.param_groups)
    assert opt.param_groups[0]["weight_decay"] == 0.1 and opt.param_groups[1]["weight_decay"] == 0.0
    assert id(model.wte.weight) in decay and id(model.blocks[0].attn.qkv.weight) in decay
    assert id(model.wpe.weight) in no_decay and id(model.ln_f.weight) in no_decay
    assert id(model.blocks[0].mlp.fc.bias) in no_decay
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n == model.num_params(non_embedding=False)  # every parameter once, tied head included


@pytest.mark.parametrize("kw", [{"dropout": 0.5}, {"attn_dropout": 0.5}])
def test_dropout_acts_in_training_only(kw):
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=V, context=CTX, n_layer=1, n_head=2, d_model=32,
                            **{"dropout": 0.0, **kw}))
    x = torch.randint(V, (2, 12), generator=torch.Generator().manual_seed(8))
    model.train()
    assert not torch.allclose(model(x)[0], model(x)[0])
    model.eval()
    torch.testing.assert_close(model(x)[0], model(x)[0], rtol=0, atol=0)


def test_rotary_positions_are_relative_and_have_no_table():
    """With RoPE a query-key score depends on their distance only, so the same stretch of
    tokens scores alike wherever a window starts; and the model has no position table."""
    from musicgpt.model import rotary_tables, rotate

    model = tiny(rope=True)
    assert model.wpe is None and "wpe.weight" not in model.state_dict()
    q = torch.randn(1, 2, 8, 16, generator=torch.Generator().manual_seed(5))  # (B, nh, T, hs)
    cos, sin = rotary_tables(32, 16)
    early = rotate(q, cos[:8], sin[:8]) @ rotate(q, cos[:8], sin[:8]).transpose(-1, -2)
    later = rotate(q, cos[7:15], sin[7:15]) @ rotate(q, cos[7:15], sin[7:15]).transpose(-1, -2)
    torch.testing.assert_close(early, later, rtol=1e-4, atol=1e-4)
    assert not torch.allclose(early, q @ q.transpose(-1, -2), atol=1e-3)  # the rotation acts


def test_a_config_saved_before_rope_existed_means_a_position_table():
    from musicgpt.config import from_dict

    old = from_dict(ModelConfig, {"vocab_size": V, "context": CTX, "n_layer": 1, "n_head": 2, "d_model": 32})
    assert not old.rope and GPT(old).wpe is not None  # the shipped model's kind
    assert ModelConfig(vocab_size=V).rope  # new models use rotary positions
