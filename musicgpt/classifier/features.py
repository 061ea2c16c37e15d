"""What the heads read: the LM body's final hidden states, pooled per piece.

A piece longer than the context is cut at bar lines into windows, each led by BOS, as the LM saw
them in pre-training. From the states at every music position of every window come:
- for style, the mean state: in a causal model the last position's state is dominated by the
  last few bars; the mean gathers texture and rhythm from the whole piece (or a prefix);
- for the key, states pooled by note role and pitch class.

Why not the key from the mean state: a mean over a whole piece keeps little of *which* pitch
class sits where, and nothing ties a tonic to the evidence for it. Tonal evidence is positional
(the bass's last note, the notes that end phrases, the downbeats), so the piece's notes are sorted
into channels by role, and within a channel by pitch class:

    mass[k, p]  share of channel k's weight on pitch class p             (K, 12)
    state[k, p] mean hidden state at the Pitch tokens of those notes     (K, 12, C)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from musicgpt.model import GPT
from musicgpt.tokens.state import read_notes
from musicgpt.tokens.tables import TokenTables

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


def first_bars_ids(ids: np.ndarray, bar_id: int, bars: int | None) -> np.ndarray:
    """The tokens of the first `bars` bars (all of them for None)."""
    if bars is None:
        return ids
    starts = np.flatnonzero(ids == bar_id)
    return ids[: starts[bars]] if len(starts) > bars else ids


def windows(ids: np.ndarray, bar_id: int, size: int) -> list[np.ndarray]:
    """Cut a piece at bar lines into chunks of at most size tokens (a longer bar is split)."""
    cuts = [int(c) for c in np.flatnonzero(ids == bar_id) if c > 0] + [len(ids)]
    out, start = [], 0
    for prev, c in zip([0] + cuts, cuts):
        if c - start > size and prev > start:
            out.append(ids[start:prev])
            start = prev
        while c - start > size:
            out.append(ids[start : start + size])
            start += size
    if start < len(ids):
        out.append(ids[start:])
    return out


def piece_states(model: GPT, pieces: Sequence[np.ndarray], bar_id: int, bos_id: int, pad_id: int,
                 batch_windows: int = 16) -> list[torch.Tensor]:
    """[(L_i, C)] final hidden states at every music position of each piece (no BOS).

    A piece longer than the context is cut at bar lines into windows, each led by BOS; windows of
    all pieces are batched by length. Gradients flow when they are enabled."""
    device = next(model.parameters()).device
    size = model.cfg.context - 1
    chunks, owner = [], []
    for p, ids in enumerate(pieces):
        for c in windows(np.asarray(ids), bar_id, size):
            chunks.append(c)
            owner.append(p)
    out: list[list[torch.Tensor]] = [[] for _ in pieces]
    states: list[torch.Tensor | None] = [None] * len(chunks)
    order = sorted(range(len(chunks)), key=lambda i: len(chunks[i]))  # less padding
    for s in range(0, len(order), batch_windows):
        sel = order[s : s + batch_windows]
        T = max(len(chunks[i]) for i in sel) + 1
        x = torch.full((len(sel), T), pad_id, dtype=torch.long)
        for r, i in enumerate(sel):
            x[r, 0] = bos_id
            x[r, 1 : len(chunks[i]) + 1] = torch.as_tensor(chunks[i].astype(np.int64))
        # right padding needs no attention mask: a causal position never sees what follows it
        h = model.hidden_states(x.to(device))
        for r, i in enumerate(sel):
            states[i] = h[r, 1 : len(chunks[i]) + 1]
    for i, p in enumerate(owner):
        out[p].append(states[i])
    C = model.cfg.d_model
    return [torch.cat(o) if o else torch.zeros(0, C, device=device) for o in out]


def piece_features(states: Sequence[torch.Tensor], pieces: Sequence[np.ndarray], tables: TokenTables
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean (P, C), mass (P, K, 12), state (P, K, 12, C)) from each piece's states and ids: the
    one pooling the heads read, in training and in use."""
    means, masses, pooled = [], [], []
    for h, ids in zip(states, pieces):
        means.append(h.mean(0) if len(h) else h.new_zeros(h.size(-1)))
        mass, st = pitch_class_pool(h, read_notes(np.asarray(ids), tables), tables.res)
        masses.append(mass)
        pooled.append(st)
    return torch.stack(means), torch.stack(masses), torch.stack(pooled)
