"""Sampling from a GPT: temperature, top-k, top-p, masks of allowed tokens, KV cache.

Knows nothing about music; a grammar reaches it as `logits_mask_fn`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT, KVCache

GREEDY_BELOW = 1e-3  # temperatures under this pick the likeliest token, as 0 does


def filter_logits(logits: torch.Tensor, temperature: float, top_k: int = 0,
                  top_p: float = 1.0) -> torch.Tensor:
    """(V,) logits -> (V,) logits scaled by 1/temperature, -inf outside the top-k / top-p set."""
    logits = logits / temperature
    if 0 < top_k < logits.numel():
        kth = torch.topk(logits, top_k).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cum = torch.softmax(sorted_logits, dim=-1).cumsum(-1)
        # drop a token when the tokens ranked above it already reach top_p; the first always stays
        drop_sorted = (cum - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(0, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _next_logits(model: GPT, window: list[int], cache: KVCache | None,
                 device: torch.device) -> torch.Tensor:
    """(V,) float32 CPU logits after `window`; with a cache, only its unfed tail is run."""
    todo = window[cache.pos :] if cache is not None else window
    idx = torch.tensor([todo], dtype=torch.long, device=device)  # (1, T)
    logits, _ = model(idx, cache=cache)
    return logits[0, -1].float().cpu()


@torch.no_grad()
def sample(model: GPT, prompt_ids: Sequence[int], max_new_tokens: int, temperature: float = 1.0,
           top_k: int = 0, top_p: float = 1.0, generator: torch.Generator | None = None,
           use_cache: bool = True,
           logits_mask_fn: Callable[[list[int]], torch.Tensor] | None = None,
           stop_ids: Sequence[int] = (), stop_fn: Callable[[list[int]], bool] | None = None,
           device: torch.device | str | None = None,
           logits_bias_fn: Callable[[list[int]], torch.Tensor | None] | None = None) -> list[int]:
    """Continue `prompt_ids` by up to `max_new_tokens` tokens; return only the new ones.

    `logits_mask_fn(prefix)` gives a (vocab,) bool tensor of the tokens allowed after the whole
    sequence so far; it applies before temperature, top-k and top-p. `logits_bias_fn(prefix)`,
    likewise, gives a (vocab,) float tensor added to the logits (or None: no bias). Temperature 0
    (or under GREEDY_BELOW) is greedy.
    Stops after a token in `stop_ids` (returned too) or when `stop_fn(new_tokens)` is true.
    A sequence that outgrows the context keeps its last `context // 2` tokens and goes on; with
    the cache those are re-run once, so each token costs one cached step on average.
    Sampling happens on the CPU, so `generator` is a CPU generator whatever the model's device.
    """
    context = model.cfg.context
    ids = list(prompt_ids)
    if not ids:
        raise MusicGPTError("the prompt is empty; generation needs at least one token to start from")
    if len(ids) > context:
        raise MusicGPTError(f"the prompt is {len(ids)} tokens but the model's context is {context}; "
                            "use a shorter header (--bars)")
    if generator is None:
        generator = torch.Generator()
        generator.seed()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    keep = max(context // 2, 1)
    was_training = model.training
    model.eval()
    cache = model.new_cache(1) if use_cache else None
    start = 0  # ids[start:] is the window the model reads
    new: list[int] = []
    try:
        for _ in range(max_new_tokens):
            if len(ids) - start > context:
                start = len(ids) - keep
                if cache is not None:
                    cache.reset()
            logits = _next_logits(model, ids[start:], cache, device)
            if logits_mask_fn is not None:
                allowed = logits_mask_fn(ids).to(dtype=torch.bool, device="cpu")
                if not allowed.any():
                    raise MusicGPTError(f"the token mask allows nothing after {len(ids)} tokens; "
                                        "the grammar has no way to go on")
                logits = logits.masked_fill(~allowed, float("-inf"))
            if logits_bias_fn is not None:
                bias = logits_bias_fn(ids)
                if bias is not None:
                    logits = logits + bias.to(device=logits.device, dtype=logits.dtype)
            if temperature < GREEDY_BELOW:  # 1/temperature would overflow the logits
                token = int(torch.argmax(logits))
            else:
                probs = torch.softmax(filter_logits(logits, temperature, top_k, top_p), dim=-1)
                token = int(torch.multinomial(probs, 1, generator=generator))
            ids.append(token)
            new.append(token)
            if token in stop_ids or (stop_fn is not None and stop_fn(new)):
                break
    finally:
        model.train(was_training)
    return new
