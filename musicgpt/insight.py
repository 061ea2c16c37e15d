"""Inside the model, for learners: its causal self-attention and its pitch embeddings as arrays.

Pure functions returning numpy arrays; the drawing is musicgpt.rendering.insight_plots and the
commands are `musicgpt attention` and `musicgpt embeddings`. The model is not changed: attention
weights are recomputed from a block's own query and key projections, on the input the block's
attention received in an ordinary forward pass (caught with a forward pre-hook that is removed
afterwards), so the shipped checkpoints load and behave exactly as before.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from musicgpt.config import VOICE_PROGRAMS
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT, rotate
from musicgpt.theory import PITCH_CLASSES
from musicgpt.tokens.tokenizer import MusicTokenizer

FIFTHS = tuple((7 * i) % 12 for i in range(12))  # C G D A E B F# C# Ab Eb Bb F


def _as_ids(ids: Sequence[int] | np.ndarray | torch.Tensor, context: int, device: torch.device
            ) -> torch.Tensor:
    idx = torch.as_tensor(np.asarray(ids, dtype=np.int64), device=device).reshape(1, -1)  # (1, T)
    if idx.shape[1] == 0:
        raise MusicGPTError("no tokens to look at")
    if idx.shape[1] > context:
        raise MusicGPTError(f"{idx.shape[1]} tokens exceed the model's context of {context}; "
                            "give fewer (the first `tokens`)")
    return idx


def check_layer_head(model: GPT, layer: int, head: int | None) -> None:
    """One clear line for a layer or head the model does not have (head None: all heads)."""
    n_layer, n_head = model.cfg.n_layer, model.cfg.n_head
    if not 0 <= layer < n_layer:
        raise MusicGPTError(f"`layer` must be 0 to {n_layer - 1} (this model has {n_layer} layers), "
                            f"not {layer}")
    if head is not None and not 0 <= head < n_head:
        raise MusicGPTError(f"`head` must be 0 to {n_head - 1} or all (this model has {n_head} heads "
                            f"per layer), not {head}")


@torch.no_grad()
def attention_weights(model: GPT, ids: Sequence[int] | np.ndarray | torch.Tensor,
                      layers: Sequence[int] | None = None) -> np.ndarray:
    """(len(layers), n_head, T, T) float32 softmax attention of one sequence of ids, every layer
    by default: row i is how query i shares its attention among keys 0..i (zero above the diagonal).

    One ordinary forward pass (in eval mode: no dropout) catches each chosen block's attention
    input, x = ln1(residual) and its rotary angles; q and k are then recomputed from the block's
    own qkv projection, exactly as CausalSelfAttention does before scaled_dot_product_attention."""
    layers = list(range(model.cfg.n_layer)) if layers is None else list(layers)
    for layer in layers:
        check_layer_head(model, layer, None)
    idx = _as_ids(ids, model.cfg.context, model.wte.weight.device)
    caught: dict[int, tuple] = {}

    def catcher(i: int):
        def hook(_module, args):  # args: (x, mask, is_causal, kv, start, rope)
            caught[i] = (args[0], args[5] if len(args) > 5 else None)
        return hook

    handles = [model.blocks[i].attn.register_forward_pre_hook(catcher(i)) for i in set(layers)]
    was_training = model.training
    try:
        model.eval()
        model(idx)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    T = idx.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
    out = []
    for layer in layers:
        x, rope = caught[layer]
        attn = model.blocks[layer].attn
        B, _, C = x.shape
        nh = attn.n_head
        q, k, _ = attn.qkv(x).view(B, T, 3, nh, C // nh).permute(2, 0, 3, 1, 4)  # (B, nh, T, hs)
        if rope is not None:
            q, k = rotate(q, *rope), rotate(k, *rope)
        scores = (q @ k.transpose(-2, -1)).float() / math.sqrt(C // nh)  # (B, nh, T, T)
        scores = scores.masked_fill(~causal, float("-inf"))
        out.append(torch.softmax(scores, dim=-1)[0].cpu().numpy())
    return np.stack(out)


def attention_map(model: GPT, ids: Sequence[int] | np.ndarray | torch.Tensor, layer: int,
                  head: int | None) -> np.ndarray:
    """(T, T) attention of one layer's head (rows: queries, columns: keys); head None: the mean
    over the layer's heads, still a distribution in each row."""
    check_layer_head(model, layer, head)
    a = attention_weights(model, ids, [layer])[0]  # (nh, T, T)
    return a.mean(axis=0) if head is None else a[head]


# ---- what each token is ------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenRoles:
    """(T,) facts about each position of a sequence, from the tokenizer's per-id tables."""

    kind: tuple[str, ...]  # MidiTok token type ("Bar", "Pitch", "Program", ...), or "BPE"
    voice: np.ndarray  # 0 = top voice, for a Program token and the note tokens after it; -1 otherwise
    bar: np.ndarray  # bool: a Bar token
    pitch: np.ndarray  # MIDI pitch of a Pitch token, -1 otherwise


def token_roles(tok: MusicTokenizer, ids: Sequence[int]) -> TokenRoles:
    """Each token's kind and voice: a REMI stream with programs names the voice (its Program
    token, scores.normalize's VOICE_PROGRAMS order) before each note's Pitch and Duration.
    A BPE vocabulary's merged ids are not read: every kind is "BPE" and no voice is known."""
    ids = np.asarray(ids, dtype=np.int64)
    T = len(ids)
    if tok.uses_bpe:
        return TokenRoles(("BPE",) * T, np.full(T, -1), np.zeros(T, dtype=bool), np.full(T, -1))
    t = tok.tables
    kinds = tuple(t.type[i] for i in ids)
    voice = np.full(T, -1, dtype=np.int64)
    current = -1
    for i, (kind, token) in enumerate(zip(kinds, ids)):
        if kind == "Program":
            program = int(t.program[token])
            current = VOICE_PROGRAMS.index(program) if program in VOICE_PROGRAMS else len(VOICE_PROGRAMS)
            voice[i] = current
        elif kind in ("Pitch", "Duration", "Velocity") and current >= 0:
            voice[i] = current
        elif kind not in ("Pitch", "Duration", "Velocity"):
            current = -1  # a Position, Bar or TimeSig token: the next note names its voice again
    return TokenRoles(kinds, voice, ids == t.bar_id, np.where(t.pitch[ids] >= 0, t.pitch[ids], -1))


# ---- where the attention goes ------------------------------------------------------------------
PROFILE = ("first", "self", "previous", "bars", "last_bar", "positions", "onset", "same_voice",
           "other_voices", "prev_note")


def _latest(mask: np.ndarray) -> np.ndarray:
    """(T,) for each position i, the largest j < i with mask[j], or -1."""
    out = np.full(len(mask), -1, dtype=np.int64)
    last = -1
    for i, m in enumerate(mask):
        out[i] = last
        if m:
            last = i
    return out


def attention_profile(weights: np.ndarray, roles: TokenRoles) -> dict[str, np.ndarray]:
    """Mean attention mass per query on kinds of key, for (..., T, T) weights -> (...) arrays.

    first: the first token (BOS); self; previous: the token just before; bars: every Bar token;
    last_bar: the latest Bar before the query; positions: every Position token; onset: the
    tokens of the query's own onset so far (from the latest Position token, which it includes,
    up to the query: the notes already written that start with it), over note queries;
    same_voice / other_voices: the note tokens (Program, Pitch, Duration) before the query in its
    own voice / in the others, over queries that belong to a voice; prev_note: the tokens
    (Program, Pitch, Duration) of the note before the query's own in its voice, over note
    queries. Queries 1.. are averaged (query 0 can only see itself); a measure without queries it
    applies to is NaN."""
    T = weights.shape[-1]
    w = weights[..., 1:, :]  # (..., T-1, T): queries 1..T-1
    q = np.arange(1, T)
    keys_before = np.arange(T)[None, :] < q[:, None]  # (T-1, T) strictly earlier keys
    voice = roles.voice
    rows_all = np.arange(T - 1)

    def pick(cols: np.ndarray) -> np.ndarray:  # (..., T-1): row r's weight on key cols[r]
        return w[..., rows_all, np.maximum(cols, 0)]

    nan = np.full(weights.shape[:-2], np.nan)

    def mean_of(values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        return values[..., rows].mean(-1) if rows.any() else nan

    out: dict[str, np.ndarray] = {
        "first": w[..., :, 0].mean(-1),
        "self": pick(q).mean(-1),
        "previous": pick(q - 1).mean(-1),
        "bars": (w * roles.bar[None, :]).sum(-1).mean(-1),
    }
    last_bar = _latest(roles.bar)[1:]
    out["last_bar"] = mean_of(pick(last_bar), last_bar >= 0)
    is_position = np.array([k == "Position" for k in roles.kind], dtype=bool)
    out["positions"] = (w * is_position[None, :]).sum(-1).mean(-1)
    # the latest Position at or before each query; a Bar or TimeSig after it starts no onset
    onset_start = np.where(is_position, np.arange(T), _latest(is_position))[1:]
    onset_start = np.where(onset_start > _latest(roles.bar)[1:], onset_start, -1)
    in_onset = keys_before & (np.arange(T)[None, :] >= onset_start[:, None]) & (onset_start >= 0)[:, None]
    out["onset"] = mean_of((w * in_onset).sum(-1), (onset_start >= 0) & (voice[1:] >= 0))
    qv = voice[1:]
    in_voice = qv >= 0
    same = keys_before & (voice[None, :] == qv[:, None]) & in_voice[:, None]
    other = keys_before & (voice[None, :] >= 0) & (voice[None, :] != qv[:, None]) & in_voice[:, None]
    out["same_voice"] = mean_of((w * same).sum(-1), in_voice)
    out["other_voices"] = mean_of((w * other).sum(-1), in_voice)
    # each note token's note: the index of the Program token that starts it (-1: no note)
    is_program = np.array([k == "Program" for k in roles.kind], dtype=bool)
    note = np.where(voice >= 0, np.where(is_program, np.arange(T), _latest(is_program)), -1)
    prev_note = np.full(T, -1, dtype=np.int64)  # the start of the voice's note before the query's own
    for v in set(voice[voice >= 0].tolist()):
        starts = _latest(is_program & (voice == v))  # latest start of voice v strictly before i
        own = voice == v
        prev_note[own] = starts[np.maximum(note[own], 0)]
    prev_note = prev_note[1:]
    in_prev = keys_before & (note[None, :] == prev_note[:, None]) & (prev_note >= 0)[:, None]
    out["prev_note"] = mean_of((w * in_prev).sum(-1), prev_note >= 0)
    return out


def uniform_attention(T: int) -> np.ndarray:
    """(T, T) causal attention that spreads each query evenly over keys 0..i: the baseline a
    head's profile is read against."""
    a = np.tril(np.ones((T, T)))
    return a / a.sum(-1, keepdims=True)


# ---- pitch embeddings --------------------------------------------------------------------------
def note_name(pitch: int) -> str:
    """MIDI 60 -> 'C4' (middle C), in PITCH_CLASSES's spellings."""
    return f"{PITCH_CLASSES[pitch % 12]}{pitch // 12 - 1}"


def pitch_token_pitches(tok: MusicTokenizer) -> np.ndarray:
    """(N,) MIDI pitches of the tokenizer's Pitch tokens, ascending."""
    pitch = tok.tables.pitch
    return np.sort(pitch[pitch >= 0])


def pitch_embeddings(model: GPT, tok: MusicTokenizer) -> tuple[list[str], np.ndarray]:
    """(note names, (N, d_model) rows of the token table) of the Pitch tokens, low to high.
    The table is tied to the LM head, so a row is both how a pitch is read and how it is scored."""
    if tok.uses_bpe:
        raise MusicGPTError("a BPE model's ids merge several tokens; its pitch embeddings are not "
                            "one row per pitch")
    pitches = pitch_token_pitches(tok)
    ids = tok.tables.id_of_pitch()[pitches]
    vectors = model.wte.weight.detach().cpu().double().numpy()[ids]
    return [note_name(int(p)) for p in pitches], vectors


def pca(vectors: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """((N, k) coordinates on the first k principal axes, (k,) share of the variance on each).

    Centred, then an SVD; each axis's sign is fixed so that its largest loading is positive,
    so the same vectors always give the same picture."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=0, keepdims=True)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    k = min(k, len(s))
    signs = np.sign(vt[np.arange(k), np.abs(vt[:k]).argmax(axis=1)])
    signs[signs == 0] = 1
    coords = u[:, :k] * s[:k] * signs
    total = float((s**2).sum())
    share = (s[:k] ** 2) / total if total > 0 else np.zeros(k)
    return coords, share


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """(N, 2) PCA projection of (N, D) vectors."""
    return pca(vectors, 2)[0]


def pitch_class_means(vectors: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """(12, D) mean embedding of each pitch class C..B over its octaves."""
    pitches = np.asarray(pitches)
    return np.stack([vectors[pitches % 12 == pc].mean(axis=0) for pc in range(12)])


def circle_fit(points: np.ndarray, order: Sequence[int]) -> float:
    """How well 12 points (12, 2), one per pitch class, lie around their centre in the circular
    `order` (chromatic: 0..11; FIFTHS): the resultant length |mean exp(i(angle_pc - 2 pi step_pc / 12))|
    of the better of the two directions. 1 is a perfect circle in that order; twelve random
    points give 0.35 on average (0.56 or more one time in twenty)."""
    p = np.asarray(points, dtype=np.float64)
    p = p - p.mean(axis=0)
    angle = np.arctan2(p[:, 1], p[:, 0])  # (12,)
    step = np.empty(12)
    step[list(order)] = np.arange(12)
    ref = 2 * np.pi * step / 12
    return float(max(abs(np.exp(1j * (angle - s * ref)).mean()) for s in (1, -1)))


def fourier_shares(means: np.ndarray) -> np.ndarray:
    """(7,) share of the 12 pitch-class means' variance (across pitch classes, in all D
    dimensions) in each circular frequency k = 0..6: k = 1 is the chromatic circle, k = 5 the
    circle of fifths (7 steps of a semitone = -5), k = 6 the tritone. k = 0 is always 0 (the
    means are centred). Equal spread over k = 1..6 gives 2/11 each (1/11 for k = 6)."""
    m = np.asarray(means, dtype=np.float64)
    m = m - m.mean(axis=0)
    f = np.fft.fft(m, axis=0)  # (12, D)
    power = (np.abs(f) ** 2).sum(axis=1)  # (12,)
    per_k = np.array([power[0]] + [power[k] + power[12 - k] for k in range(1, 6)] + [power[6]])
    return per_k / per_k.sum()


def rarely_seen(vectors: np.ndarray, pitches: np.ndarray, threshold: float = 0.9) -> np.ndarray:
    """(N,) bool: rows that look like pitches the model (almost) never read in training.

    With a tied LM head, every step pushes the logits of tokens that never occur down along one
    shared direction, so their rows end up nearly the same vector. That direction is taken from
    the two ends of the tokenizer's range (A0 and the top note, which no vocal or fiddle part
    reaches); a row within cosine `threshold` of it is flagged. When the two ends were learned
    after all, their mean points nowhere in particular and almost nothing is flagged."""
    v = np.asarray(vectors, dtype=np.float64)
    ends = v[[int(np.argmin(pitches)), int(np.argmax(pitches))]]
    ref = ends.mean(axis=0)
    norms = np.linalg.norm(v, axis=1) * max(float(np.linalg.norm(ref)), 1e-12)
    return (v @ ref) / np.maximum(norms, 1e-12) > threshold


@dataclass(frozen=True)
class PitchGeometry:
    """What `musicgpt embeddings` draws and reports, for the pitches the model learned."""

    names: list[str]  # note names of the learned pitch tokens, low to high
    pitches: np.ndarray  # (N,) their MIDI pitches
    coords: np.ndarray  # (N, 2) on the first two principal axes of their embeddings
    share: np.ndarray  # (2,) variance share of those axes
    pc_points: np.ndarray  # (12, 2) the pitch-class means on their own two principal axes
    pc_share: np.ndarray  # (2,)
    fits: dict[str, float]  # circle_fit of pc_points: "fifths", "chromatic"
    fourier: np.ndarray  # (7,) fourier_shares of the pitch-class means
    left_out: list[str]  # note names of the rarely-seen pitch tokens, not drawn


def pitch_geometry(model: GPT, tok: MusicTokenizer) -> PitchGeometry:
    names, vectors = pitch_embeddings(model, tok)
    pitches = pitch_token_pitches(tok)
    rare = rarely_seen(vectors, pitches)
    keep = ~rare
    if len(set(pitches[keep] % 12)) < 12:
        raise MusicGPTError("the model has learned pitches of fewer than 12 pitch classes; there is no "
                            "circle to look for")
    coords, share = pca(vectors[keep], 2)
    means = pitch_class_means(vectors[keep], pitches[keep])
    pc_points, pc_share = pca(means, 2)
    fits = {"fifths": circle_fit(pc_points, FIFTHS), "chromatic": circle_fit(pc_points, range(12))}
    return PitchGeometry([n for n, k in zip(names, keep) if k], pitches[keep], coords, share, pc_points,
                         pc_share, fits, fourier_shares(means), [n for n, r in zip(names, rare) if r])


def interval_similarity(vectors: np.ndarray, pitches: np.ndarray, max_interval: int = 24) -> np.ndarray:
    """(max_interval + 1,) mean cosine similarity of centred embeddings of pitches d semitones
    apart, d = 0..max_interval (NaN where no pair is that far apart): an octave (12) above its
    neighbours means octaves are heard as alike."""
    v = np.asarray(vectors, dtype=np.float64)
    v = v - v.mean(axis=0)
    u = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    sim = u @ u.T
    gap = np.asarray(pitches)[None, :] - np.asarray(pitches)[:, None]
    return np.array([sim[gap == d].mean() if (gap == d).any() else np.nan for d in range(max_interval + 1)])
