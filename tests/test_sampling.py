"""Sampling: cache equivalence, masks, stops, context limits, filtering."""

import pytest
import torch

from musicgpt.config import ModelConfig
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT
from musicgpt.sampling import filter_logits, sample

V, CTX = 29, 16



@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=V, context=CTX, n_layer=2, n_head=2, d_model=32, dropout=0.0)
    return GPT(cfg).eval()


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("temperature,top_k,top_p", [(0.0, 0, 1.0), (1.0, 0, 1.0), (1.5, 10, 0.9)])
def test_cached_sampling_equals_uncached(model, temperature, top_k, top_p):
    # 40 new tokens from a 5-token prompt slides the 16-token window several times
    kw = dict(max_new_tokens=40, temperature=temperature, top_k=top_k, top_p=top_p)
    cached = sample(model, [1, 2, 3, 4, 5], generator=gen(1), use_cache=True, **kw)
    uncached = sample(model, [1, 2, 3, 4, 5], generator=gen(1), use_cache=False, **kw)
    assert len(cached) == 40
    assert cached == uncached


def test_greedy_matches_argmax_of_the_model(model):
    prompt = [3, 1, 4, 1, 5]
    new = sample(model, prompt, max_new_tokens=3, temperature=0.0, generator=gen())
    ids = list(prompt)
    for _ in range(3):
        logits, _ = model(torch.tensor([ids]))
        ids.append(int(logits[0, -1].argmax()))
    assert new == ids[len(prompt):]


def test_same_generator_seed_same_sample_different_seed_differs(model):
    a = sample(model, [1], max_new_tokens=12, generator=gen(7))
    b = sample(model, [1], max_new_tokens=12, generator=gen(7))
    c = sample(model, [1], max_new_tokens=12, generator=gen(8))
    assert a == b and a != c


def test_logits_mask_fn_is_respected_and_sees_the_whole_prefix(model):
    seen = []

    def only_even_after_odd_length(prefix):
        seen.append(list(prefix))
        allowed = torch.zeros(V, dtype=torch.bool)
        allowed[0::2] = len(prefix) % 2 == 1
        allowed[1::2] = len(prefix) % 2 == 0
        return allowed

    prompt = [2, 4, 6]
    new = sample(model, prompt, max_new_tokens=30, temperature=2.0, generator=gen(2),
                 logits_mask_fn=only_even_after_odd_length)
    full = prompt + new
    for i in range(len(prompt), len(full)):
        assert full[i] % 2 == (0 if i % 2 == 1 else 1)
    assert seen[0] == prompt and seen[-1] == full[:-1]


def test_mask_allowing_nothing_is_a_clear_error(model):
    with pytest.raises(MusicGPTError, match="allows nothing"):
        sample(model, [1], max_new_tokens=2, generator=gen(),
               logits_mask_fn=lambda p: torch.zeros(V, dtype=torch.bool))


def test_stop_ids_and_stop_fn(model):
    free = sample(model, [1, 2], max_new_tokens=20, temperature=0.0, generator=gen())
    stop = free[4]
    first = free.index(stop)
    new = sample(model, [1, 2], max_new_tokens=20, temperature=0.0, generator=gen(), stop_ids=(stop,))
    assert new == free[: first + 1]  # the stop token is returned, then nothing
    new = sample(model, [1, 2], max_new_tokens=20, temperature=0.0, generator=gen(),
                 stop_fn=lambda new: len(new) == 3)
    assert new == free[:3]


def test_prompt_longer_than_context_is_a_clear_error(model):
    too_long = f"the prompt is {CTX + 1} tokens but the model's context is {CTX}"
    with pytest.raises(MusicGPTError, match=too_long):
        sample(model, list(range(CTX + 1)), max_new_tokens=1, generator=gen())
    with pytest.raises(MusicGPTError, match="empty"):
        sample(model, [], max_new_tokens=1, generator=gen())


def test_a_prompt_filling_the_context_slides_and_goes_on(model):
    prompt = [i % V for i in range(CTX)]
    new = sample(model, prompt, max_new_tokens=3 * CTX, temperature=0.0, generator=gen())
    assert len(new) == 3 * CTX
    # after the slide, the next token is predicted from the last CTX // 2 tokens only
    tail = (prompt + new[:1])[-(CTX // 2):]
    logits, _ = model(torch.tensor([tail]))
    assert new[1] == int(logits[0, -1].argmax())


def test_sample_restores_training_mode(model):
    model.train()
    try:
        sample(model, [1], max_new_tokens=2, generator=gen())
        assert model.training
    finally:
        model.eval()


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([0.5, 0.2, 0.15, 0.1, 0.05]))
    k2 = filter_logits(logits, 1.0, top_k=2)
    assert torch.isfinite(k2).tolist() == [True, True, False, False, False]
    p = filter_logits(logits, 1.0, top_p=0.8)  # 0.5 + 0.2 < 0.8, so 0.15 is needed too
    assert torch.isfinite(p).tolist() == [True, True, True, False, False]
    p_tiny = filter_logits(logits, 1.0, top_p=0.01)  # the most likely token always stays
    assert torch.isfinite(p_tiny).tolist() == [True, False, False, False, False]
    torch.testing.assert_close(filter_logits(logits, 2.0), logits / 2)


def test_a_voice_never_strikes_a_pitch_it_still_holds():
    from musicgpt.continuation import _merge
    from musicgpt.notestring import parse_notes

    prompt = parse_notes("C4 D4 E4 F4 G4:h")  # G4 held from tick 1920 to 2880
    v = prompt.tracks[0].program
    new = [(v, 2400, 480, 67),  # wholly under the held G4: dropped
           (v, 2400, 960, 67),  # starts under it: starts when it ends
           (v, 3000, 960, 60), (v, 3480, 480, 60),  # a new note struck again: the first one ends there
           (v + 1, 2400, 480, 67)]  # another voice may sing the same pitch
    full, only = _merge(prompt, new)
    notes = sorted((t.program, n.time, n.duration, n.pitch) for t in full.tracks for n in t.notes)
    header = sorted((v, n.time, n.duration, n.pitch) for n in prompt.tracks[0].notes)
    assert [x for x in notes if x in header] == header  # the header as given
    assert sorted(set(notes) - set(header)) == [(v, 2880, 480, 67), (v, 3000, 480, 60), (v, 3480, 480, 60),
                                                (v + 1, 2400, 480, 67)]
    assert only.note_num() == 4
