"""A decoder-only transformer: token + position embeddings, pre-LN blocks, tied LM head.

Knows nothing about music: the vocabulary size arrives through ModelConfig. Classification heads
live in musicgpt.classifier and read `hidden_states`. Imports only torch and musicgpt.config.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from musicgpt.config import ModelConfig

log = logging.getLogger(__name__)

IGNORE_INDEX = -100  # targets with this value (padding, given control tokens) carry no loss


class KVCache:
    """Keys and values of the positions seen so far, preallocated per layer as (B, nh, context, hs).

    `pos` counts the positions filled; a forward pass with the cache appends its new positions.
    """

    def __init__(self, cfg: ModelConfig, batch_size: int, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32):
        hs = cfg.d_model // cfg.n_head
        shape = (batch_size, cfg.n_head, cfg.context, hs)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layer)]
        self.context = cfg.context
        self.pos = 0

    def reset(self) -> None:
        self.pos = 0  # stale entries beyond pos are never read


def rotary_tables(context: int, head_size: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(context, head_size / 2) cos and sin of each position's rotation angles (RoPE)."""
    half = head_size // 2
    inv_freq = base ** (-torch.arange(half, dtype=torch.float32) / half)  # (half,)
    angles = torch.arange(context, dtype=torch.float32)[:, None] * inv_freq[None, :]
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, nh, T, hs) queries or keys by their positions' (T, hs / 2) angles: the dot
    product of a rotated query and key then depends only on how far apart they are."""
    half = x.size(-1) // 2
    x1, x2 = x[..., :half], x[..., half:]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        assert cfg.d_model % cfg.n_head == 0, "d_model must be a multiple of n_head"
        self.n_head = cfg.n_head
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model)
        self.attn_dropout = cfg.attn_dropout
        self.resid_drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, is_causal: bool,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None, start: int = 0,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        B, T, C = x.shape
        # (B, T, 3C) -> three (B, nh, T, hs)
        q, k, v = self.qkv(x).view(B, T, 3, self.n_head, C // self.n_head).permute(2, 0, 3, 1, 4)
        if rope is not None:  # (T, hs/2) angles of positions start .. start + T
            q, k = rotate(q, *rope), rotate(k, *rope)
        if kv is not None:
            k_buf, v_buf = kv  # (B, nh, context, hs)
            k_buf[:, :, start : start + T] = k
            v_buf[:, :, start : start + T] = v
            k, v = k_buf[:, :, : start + T], v_buf[:, :, : start + T]  # (B, nh, start + T, hs)
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, is_causal=is_causal)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, nh, T, hs) -> (B, T, C)
        return self.resid_drop(self.proj(y))


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.fc = nn.Linear(cfg.d_model, 4 * cfg.d_model)
        self.proj = nn.Linear(4 * cfg.d_model, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(F.gelu(self.fc(x))))


class Block(nn.Module):
    """Pre-LN: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = CausalSelfAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, is_causal: bool,
                kv: tuple[torch.Tensor, torch.Tensor] | None = None, start: int = 0,
                rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), mask, is_causal, kv, start, rope)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.d_model)
        # positions: a learned table added to the tokens (GPT-2), or rotary (relative) positions
        # applied to queries and keys, which have no table
        self.wpe = None if cfg.rope else nn.Embedding(cfg.context, cfg.d_model)
        if cfg.rope:
            cos, sin = rotary_tables(cfg.context, cfg.d_model // cfg.n_head)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(cfg.dropout) if cfg.dropout > 0 else nn.Identity()
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.ln_f = nn.LayerNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: one matrix reads and writes tokens
        self.apply(self._init_weights)
        # residual projections: scale so the residual stream's variance doesn't grow with depth
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))
        log.info("GPT: %.2fM parameters (%.2fM without the position table)",
                 self.num_params(False) / 1e6, self.num_params() / 1e6)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)

    def num_params(self, non_embedding: bool = True) -> int:
        """Parameters, counted once each; `non_embedding` leaves out the position table, a lookup
        that costs no FLOPs (the tied token table stays in: it is also the LM head's matmul)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if non_embedding and self.wpe is not None else n

    def new_cache(self, batch_size: int = 1) -> KVCache:
        p = self.wte.weight
        return KVCache(self.cfg, batch_size, device=p.device, dtype=p.dtype)

    def _masks(self, T: int, start: int, attention_mask: torch.Tensor | None,
               device: torch.device) -> tuple[torch.Tensor | None, bool]:
        """(attn_mask, is_causal) for T new queries after `start` cached positions."""
        if attention_mask is not None:
            if start:
                raise ValueError("attention_mask cannot be combined with a non-empty KV cache")
            causal = torch.ones(T, T, dtype=torch.bool, device=device).tril()
            keys = attention_mask.to(device=device, dtype=torch.bool)[:, None, None, :]  # (B,1,1,T)
            # a query always sees itself, so a fully padded row yields numbers, not NaN
            diag = torch.eye(T, dtype=torch.bool, device=device)
            return (causal & keys) | diag, False  # (B, 1, T, T)
        if start == 0:
            return None, T > 1
        if T == 1:
            return None, False  # one new query sees every cached key
        # prefill after cached positions: query i (absolute start + i) sees keys 0 .. start + i.
        # sdpa's is_causal aligns to the top-left corner, wrong when keys outnumber queries.
        q_pos = torch.arange(start, start + T, device=device)[:, None]
        k_pos = torch.arange(start + T, device=device)[None, :]
        return k_pos <= q_pos, False  # (T, start + T)

    def _body(self, idx: torch.Tensor, cache: KVCache | None = None,
              attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, T = idx.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.cfg.context:
            raise ValueError(f"{start} cached + {T} new positions exceed the context {self.cfg.context}")
        x = self.wte(idx)  # (B, T, C)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe(torch.arange(start, start + T, device=idx.device))
        else:
            rope = (self.rope_cos[start : start + T], self.rope_sin[start : start + T])
        x = self.drop(x)
        mask, is_causal = self._masks(T, start, attention_mask, idx.device)
        for i, block in enumerate(self.blocks):
            kv = (cache.k[i], cache.v[i]) if cache is not None else None
            x = block(x, mask, is_causal, kv, start, rope)
        if cache is not None:
            cache.pos += T
        return self.ln_f(x)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                cache: KVCache | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, T) ids -> ((B, T, vocab) logits, mean cross-entropy over targets != -100 or None)."""
        logits = self.lm_head(self._body(idx, cache))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1),
                                   ignore_index=IGNORE_INDEX)
        return logits, loss

    def hidden_states(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids -> (B, T, C) after the final LayerNorm: what classification heads read.

        `attention_mask` (B, T), true at real tokens, hides padded keys; right padding needs
        none, since causal attention never lets a real position see the padding after it.
        """
        return self._body(idx, attention_mask=attention_mask)

    def configure_optimizer(self, weight_decay: float, lr: float, betas: tuple[float, float] = (0.9, 0.95),
                            device_type: str = "cpu") -> torch.optim.AdamW:
        """AdamW; weight decay only on the matrices that multiply activations.

        Decayed: Linear weights and the tied token table (it is also the LM head's matmul).
        Not decayed: biases, LayerNorm gains and the position table, an additive lookup where
        decay would only wear away positions seen rarely, with nothing to regularise.
        """
        decay, no_decay = [], []
        for name, p in self.named_parameters():  # a tied parameter is listed once
            if not p.requires_grad:
                continue
            (decay if p.dim() >= 2 and name != "wpe.weight" else no_decay).append(p)
        groups = [{"params": decay, "weight_decay": weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        # fused AdamW: one kernel for all parameters instead of a dozen small ops per tensor
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device_type in ("cpu", "cuda"))
