"""The key (tonic + mode) head: hidden states pooled by pitch class, read under all 12 rotations.

Why not a head on the mean-pooled state: a mean over a whole piece keeps little of *which* pitch
class sits where, and nothing ties a tonic to the evidence for it. Tonal evidence is positional
(the bass's last note, the notes that end phrases, the downbeats), so the piece's notes are sorted
into channels by role, and within a channel by pitch class:

    mass[k, p]  share of channel k's weight on pitch class p             (K, 12)
    state[k, p] mean hidden state at the Pitch tokens of those notes     (K, 12, C)

The head projects each state to a few numbers, then scores tonic t and mode m as
`mlp_m(roll(features, -t))`: one network shared by all 12 tonics. Transposing a piece by s rolls
the pitch-class axis by s, so the tonic answer moves by s and the mode stays, exactly for the
mass features and as far as the hidden states themselves are transposition invariant (taught by
augmentation). The mass features alone make it a pitch-class-profile classifier; the states add
what the language model knows about the context each note sits in (a cadence, a leading tone).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Note roles; each is a channel of (12,) weights. "dur": weighted by duration, "1": by count.
CHANNELS: tuple[str, ...] = (
    "all",  # every note (dur)
    "bass",  # notes of the lowest voice (dur)
    "last_bar",  # notes starting in the last bar given (dur)
    "bass_last",  # the lowest voice's last note (1)
    "voice_last",  # each voice's last note (1)
    "voice_first",  # each voice's first note (1)
    "phrase_end",  # notes followed by a rest of a beat or more in their voice, or last (dur)
    "first_low",  # the lowest note of the first onset (1)
    "downbeat",  # notes starting on a bar line (dur)
)


def channel_weights(notes: dict[str, np.ndarray], res: int) -> np.ndarray:
    """(K, N) weight of each note in each channel of CHANNELS."""
    n = len(notes["pitch"])
    W = np.zeros((len(CHANNELS), n))
    if n == 0:
        return W
    pitch, voice, onset = notes["pitch"], notes["voice"], notes["onset"]
    dur = notes["dur"].astype(float)
    end = onset + notes["dur"]
    voices = np.unique(voice)
    low = min(voices, key=lambda v: pitch[voice == v].mean())
    W[0] = dur
    W[1] = np.where(voice == low, dur, 0)
    W[2] = np.where(notes["bar"] == notes["bar"].max(), dur, 0)
    for v in voices:
        sel = np.flatnonzero(voice == v)
        order = sel[np.lexsort((pitch[sel], onset[sel]))]
        last, first = order[-1], order[0]
        if v == low:
            W[3, last] = 1
        W[4, last] += 1
        W[5, first] += 1
        gap = np.append(onset[order][1:] - end[order][:-1], res)
        W[6, order] = np.where(gap >= res, dur[order], 0)
    first_on = onset == onset.min()
    W[7, np.flatnonzero(first_on)[np.argmin(pitch[first_on])]] = 1
    W[8] = np.where(onset == notes["bar"], dur, 0)
    return W


def pitch_class_pool(H: torch.Tensor, notes: dict[str, np.ndarray], res: int
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """(mass (K, 12), state (K, 12, C)) from one piece's states H (L, C), aligned with its ids."""
    W = torch.as_tensor(channel_weights(notes, res), dtype=H.dtype, device=H.device)  # (K, N)
    K, C = W.size(0), H.size(1)
    if W.size(1) == 0:
        return torch.zeros(K, 12, dtype=H.dtype, device=H.device), H.new_zeros(K, 12, C)
    onehot = torch.zeros(W.size(1), 12, dtype=H.dtype, device=H.device)
    onehot[torch.arange(W.size(1)), torch.as_tensor(notes["pitch"] % 12)] = 1.0
    A = W[:, None, :] * onehot.T[None]  # (K, 12, N)
    per_pc = A.sum(-1)  # (K, 12)
    mass = per_pc / per_pc.sum(-1, keepdim=True).clamp(min=1e-9)
    state = (A @ H[torch.as_tensor(notes["index"], device=H.device)]) / per_pc[..., None].clamp(min=1e-9)
    return mass, state


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
