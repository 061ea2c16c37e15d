"""Token caches for a corpus split, and the batches the trainer and evaluator read from them.

Scores are encoded once per (corpus, split, tokenizer) and cached as one flat uint16 array with
piece offsets; windows are cut from that array at batch time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import symusic

from musicgpt.atomic import atomic_path
from musicgpt.errors import MusicGPTError
from musicgpt.tokens.tokenizer import MusicTokenizer

log = logging.getLogger(__name__)
IGNORE = -100  # target value the loss skips
CACHE_FORMAT = "2"  # 2: tonics, voices and corpora kept per piece


@dataclass
class TokenSet:
    """Every piece of one split as token ids, plus what batches need to know about each."""

    ids: np.ndarray  # (N,) uint16, pieces back to back
    offsets: np.ndarray  # (P+1,) piece i is ids[offsets[i]:offsets[i+1]]
    piece_ids: list[str]
    styles: list[str]
    modes: list[str]
    # (P, 128) lowest / highest pitch each program plays in the piece; 255 / 0 where it is silent
    prog_min: np.ndarray
    prog_max: np.ndarray
    # per piece: its tonic ("" unknown), number of voices (0 unknown) and corpus ("" unknown)
    tonics: list[str] = field(default_factory=list)
    voices: list[int] = field(default_factory=list)
    corpora: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.piece_ids)
        self.tonics = self.tonics or [""] * n
        self.voices = self.voices or [0] * n
        self.corpora = self.corpora or [""] * n

    def __len__(self) -> int:
        return len(self.piece_ids)

    def piece(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]


def _voice_ranges(ids: np.ndarray, tok: MusicTokenizer) -> tuple[np.ndarray, np.ndarray]:
    """Per program, the lowest and highest pitch in one piece's tokens (no BPE)."""
    lo = np.full(128, 255, dtype=np.uint8)
    hi = np.zeros(128, dtype=np.uint8)
    table = tok.pitch_shift_table()
    if table is None:
        return lo, hi
    pitch_of_id = table[0]
    program_of_id = tok.program_of_id()
    progs = program_of_id[ids]
    # carry the last Program token forward to each Pitch token
    idx = np.where(progs >= 0, np.arange(len(ids)), -1)
    np.maximum.accumulate(idx, out=idx)
    pitches = pitch_of_id[ids]
    has = (pitches >= 0) & (idx >= 0)
    for prog in np.unique(progs[idx[has]]) if has.any() else []:
        sel = has & (progs[np.maximum(idx, 0)] == prog)
        lo[prog], hi[prog] = pitches[sel].min(), pitches[sel].max()
    return lo, hi


def _cache_key(tok: MusicTokenizer, rows: list[dict], midi_of: Callable[[dict], Path]) -> str:
    """The tokenizer, the pieces, and each MIDI file's size and modification time: a corpus
    rebuilt with different MIDI (a new extraction) is encoded again, not read from a stale cache."""
    h = hashlib.sha1(json.dumps(tok.to_dict(), sort_keys=True).encode())
    h.update(CACHE_FORMAT.encode())
    stamps = []
    for r in rows:
        try:
            st = midi_of(r).stat()
            stamps.append([r["id"], st.st_size, st.st_mtime_ns])
        except OSError:
            stamps.append([r["id"], -1, -1])  # missing: encoding below says so
    h.update(json.dumps(stamps).encode())
    return h.hexdigest()[:16]


def encode_rows(
    tok: MusicTokenizer, rows: list[dict], midi_of: Callable[[dict], Path], cache_dir: Path | None
) -> TokenSet:
    """Encode the MIDI file of every manifest row; cached under `cache_dir` when given."""
    cache = cache_dir / f"tokens-{_cache_key(tok, rows, midi_of)}.npz" if cache_dir else None
    if cache is not None and cache.exists():
        z = np.load(cache)
        meta = json.loads(str(z["meta"]))
        return TokenSet(z["ids"], z["offsets"], meta["piece_ids"], meta["styles"], meta["modes"],
                        z["prog_min"], z["prog_max"], meta.get("tonics", []), meta.get("voices", []),
                        meta.get("corpora", []))
    chunks, offsets, kept, lows, highs = [], [0], [], [], []
    for row in rows:
        path = midi_of(row)
        if not path.exists():
            build = f"musicgpt corpus build {row.get('corpus', '')}".strip()
            raise MusicGPTError(f"{path} is missing; run `{build}`")
        ids = np.asarray(tok.encode(symusic.Score(str(path))), dtype=np.uint16)
        if len(ids) == 0:
            log.warning("skipping %s: no tokens", path)
            continue
        lo, hi = _voice_ranges(ids, tok)
        chunks.append(ids)
        offsets.append(offsets[-1] + len(ids))
        kept.append(row)
        lows.append(lo)
        highs.append(hi)
    if not kept:
        raise MusicGPTError("no piece could be encoded; is the corpus built?")
    ts = TokenSet(np.concatenate(chunks), np.asarray(offsets, dtype=np.int64),
                  [r["id"] for r in kept], [r.get("style") or "" for r in kept],
                  [r.get("mode") or "" for r in kept], np.stack(lows), np.stack(highs),
                  [r.get("tonic") or "" for r in kept], [int(r.get("voices") or 0) for r in kept],
                  [r.get("corpus") or "" for r in kept])
    if cache is not None:
        meta = json.dumps({"piece_ids": ts.piece_ids, "styles": ts.styles, "modes": ts.modes,
                           "tonics": ts.tonics, "voices": ts.voices, "corpora": ts.corpora})
        with atomic_path(cache) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, ids=ts.ids, offsets=ts.offsets, prog_min=ts.prog_min,
                         prog_max=ts.prog_max, meta=np.asarray(meta))
    return ts


def shift_bounds(ts: TokenSet, ref_min: np.ndarray, ref_max: np.ndarray, limit: int) -> np.ndarray:
    """(P, 2) the transpositions that keep each voice of each piece inside its range in `ref`.

    "Its range" is the lowest to highest pitch that voice (program) sings anywhere in the
    training corpus, so a soprano is never pushed above the highest soprano note in the data.
    """
    sung = ts.prog_max >= ts.prog_min  # (P, 128) voices present in each piece
    lo = np.where(sung, ref_min[None, :].astype(int) - ts.prog_min, -limit).max(axis=1)
    hi = np.where(sung, ref_max[None, :].astype(int) - ts.prog_max, limit).min(axis=1)
    lo, hi = np.clip(lo, -limit, 0), np.clip(hi, 0, limit)
    return np.stack([lo, hi], axis=1)


def bits_report(nll: float, tokens: float, notes: float, correct: float) -> dict[str, float]:
    """Turn summed nats into the figures every report uses."""
    ln2 = float(np.log(2.0))
    return {
        "loss": nll / max(tokens, 1),
        "bits_per_token": nll / ln2 / max(tokens, 1),
        "bits_per_note": nll / ln2 / max(notes, 1),
        "accuracy": correct / max(tokens, 1),
        "tokens": tokens,
        "notes": notes,
        "tokens_per_note": tokens / max(notes, 1),
    }
