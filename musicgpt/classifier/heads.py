"""The classifier's heads, one module with one state_dict: a linear style head on the mean state,
and the key (tonic + mode) head on the states pooled by pitch class (see features.py).

The key head projects each state to a few numbers, then scores tonic t and mode m as
`mlp_m(roll(features, -t))`: one network shared by all 12 tonics. Transposing a piece by s rolls
the pitch-class axis by s, so the tonic answer moves by s and the mode stays, exactly for the
mass features and as far as the hidden states themselves are transposition invariant (taught by
augmentation). The mass features alone make it a pitch-class-profile classifier; the states add
what the language model knows about the context each note sits in (a cadence, a leading tone).
"""

from __future__ import annotations

import torch
from torch import nn

from musicgpt.classifier.features import CHANNELS
from musicgpt.config import MODES
from musicgpt.theory import PITCH_CLASSES

KEY_LABELS: tuple[str, ...] = tuple(f"{t} {m}" for t in PITCH_CLASSES for m in MODES)  # t * 8 + m


def key_index(tonic: int, mode: int) -> int:
    return tonic * len(MODES) + mode


class KeyHead(nn.Module):
    """(mass (B, K, 12), state (B, K, 12, C)[, context (B, n_context)]) -> (B, 12 * n_modes)
    logits, index t * n_modes + m.

    `context` (n_context > 0) is a vector about the whole piece that is the same under every
    rotation, given to the MLP beside each rotation's features: the classifier passes the style
    head's probabilities, so that what an ending means can depend on the repertoire (a fiddle
    tune ends on its tonic; a mass section may end on the fifth). Equivariance is unchanged."""

    def __init__(self, d_model: int, n_channels: int = len(CHANNELS), n_modes: int = 8,
                 proj: int = 8, hidden: int = 64, dropout: float = 0.1, state_drop: float = 0.0,
                 n_context: int = 0):
        super().__init__()
        self.n_context = n_context
        # in training, all state features of a piece are zeroed with this probability, so the head
        # stays good on pitch-class masses alone and uses the states as extra evidence
        self.state_drop = state_drop
        self.d_model, self.n_channels, self.n_modes = d_model, n_channels, n_modes
        self.proj_dim, self.hidden = proj, hidden
        # one small projection per channel (0 columns = a pure pitch-class-profile head)
        self.proj = nn.Parameter(torch.randn(n_channels, d_model, proj) * d_model ** -0.5)
        n_in = n_channels * 12 * (1 + proj) + n_context
        self.mlp = nn.Sequential(nn.Dropout(dropout), nn.Linear(n_in, hidden), nn.GELU(),
                                 nn.Linear(hidden, n_modes))
        rot = (torch.arange(12)[:, None] + torch.arange(12)[None, :]) % 12  # [t, j] -> pc t + j
        self.register_buffer("rot", rot, persistent=False)

    def config(self) -> dict:
        return {"d_model": self.d_model, "n_channels": self.n_channels, "n_modes": self.n_modes,
                "proj": self.proj_dim, "hidden": self.hidden, "state_drop": self.state_drop,
                "n_context": self.n_context}

    def forward(self, mass: torch.Tensor, state: torch.Tensor,
                context: torch.Tensor | None = None) -> torch.Tensor:
        B = mass.size(0)
        K, C = self.n_channels, self.d_model
        g = torch.bmm(state.transpose(0, 1).reshape(K, B * 12, C), self.proj)  # (K, B * 12, r)
        g = g.reshape(K, B, 12, -1).transpose(0, 1)  # (B, K, 12, r)
        if self.training and self.state_drop > 0:
            g = g * (torch.rand(B, 1, 1, 1, device=g.device) >= self.state_drop).to(g.dtype)
        # masses are shares summing to 1 over 12 classes; x4 brings them near the states' scale
        x = torch.cat([mass[..., None] * 4.0, g], dim=-1)  # (B, K, 12, 1 + r)
        x = x[:, :, self.rot]  # (B, K, 12 tonics, 12 pcs above the tonic, 1 + r)
        x = x.permute(0, 2, 1, 3, 4).reshape(B, 12, -1)
        if self.n_context:
            if context is None or context.shape != (B, self.n_context):
                raise ValueError(f"this key head needs a context of shape ({B}, {self.n_context})")
            x = torch.cat([x, context[:, None, :].to(x.dtype).expand(B, 12, self.n_context)], -1)
        return self.mlp(x).reshape(B, 12 * self.n_modes)


class Heads(nn.Module):
    """Style and key heads: (mean (B, C), mass (B, K, 12), state (B, K, 12, C)) ->
    (style (B, n_style), key (B, 12 * n_modes)) logits.

    A key head built with n_context reads the style head's probabilities, detached: the key loss
    does not train the style head through them."""

    def __init__(self, n_style: int, key_head: dict):
        super().__init__()
        self.style_head = nn.Linear(key_head["d_model"], n_style)
        # as GPT initialises its linear layers, where this head lived before
        nn.init.normal_(self.style_head.weight, mean=0.0, std=0.02)
        nn.init.zeros_(self.style_head.bias)
        self.key_head = KeyHead(**key_head)

    def config(self) -> dict:
        return {"n_style": self.style_head.out_features, "key_head": self.key_head.config()}

    def key_logits(self, style_logits: torch.Tensor, mass: torch.Tensor, state: torch.Tensor
                   ) -> torch.Tensor:
        if not self.key_head.n_context:
            return self.key_head(mass, state)
        return self.key_head(mass, state, torch.softmax(style_logits.detach().float(), -1))

    def forward(self, mean: torch.Tensor, mass: torch.Tensor, state: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        style = self.style_head(mean)
        return style, self.key_logits(style, mass, state)
