"""Scores to token ids and back: a MidiTok tokenizer plus musicgpt's control tokens.

The model's vocabulary is MidiTok's vocabulary followed by the control tokens: one per style
label, one per mode, and (in tokenizers made since #14) one per tonic pitch class and one per
number of voices. A training sequence is `[BOS, style?, voices?, tonic?, mode?, music..., EOS]`,
where each control token may be dropped so that conditioned and unconditioned continuation
both work.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import miditok
import numpy as np
import symusic

from musicgpt.config import VOICE_PROGRAMS, TokenizerConfig, from_dict, to_dict
from musicgpt.errors import MusicGPTError
from musicgpt.theory import PITCH_CLASSES, pitch_class
from musicgpt.tokens.grammar import Grammar
from musicgpt.tokens.tables import TokenTables, token_tables

_KINDS = {"REMI": miditok.REMI, "TSD": miditok.TSD}


def _miditok_config(cfg: TokenizerConfig) -> miditok.TokenizerConfig:
    return miditok.TokenizerConfig(
        pitch_range=tuple(cfg.pitch_range),
        beat_res={(a, b): r for a, b, r in cfg.beat_res},
        use_velocities=cfg.num_velocities > 1,
        num_velocities=cfg.num_velocities,
        use_tempos=cfg.use_tempos,
        use_time_signatures=True,
        time_signature_range={den: list(nums) for den, nums in cfg.time_signatures},
        use_programs=True,
        one_token_stream_for_programs=True,
        programs=list(cfg.programs),
        special_tokens=["PAD", "BOS", "EOS", "MASK"],
    )


@dataclass
class MusicTokenizer:
    """MidiTok tokenizer + control tokens. Build with `create` or `from_dict`."""

    cfg: TokenizerConfig
    base: miditok.MusicTokenizer
    styles: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    tonics: tuple[str, ...] = ()  # PITCH_CLASSES, or () in tokenizers without key controls
    voice_counts: tuple[int, ...] = ()  # 1..8, or () without a voices control
    _tables: TokenTables | None = field(default=None, init=False, repr=False, compare=False)

    @classmethod
    def create(
        cls, cfg: TokenizerConfig, styles: Sequence[str] = (), modes: Sequence[str] = (),
        texture_controls: bool = False,
    ) -> MusicTokenizer:
        """With `texture_controls`, also a token per tonic and per number of voices."""
        if cfg.kind not in _KINDS:
            raise MusicGPTError(f"unknown tokenizer {cfg.kind!r}; choose one of {sorted(_KINDS)}")
        tonics = PITCH_CLASSES if texture_controls else ()
        voices = tuple(range(1, len(VOICE_PROGRAMS) + 1)) if texture_controls else ()
        return cls(cfg, _KINDS[cfg.kind](_miditok_config(cfg)), tuple(styles), tuple(modes),
                   tuple(tonics), voices)

    # ---- vocabulary -------------------------------------------------------------------------
    @property
    def base_size(self) -> int:
        return len(self.base)

    @property
    def vocab_size(self) -> int:
        return self.base_size + len(self.styles) + len(self.modes) + len(self.tonics) + len(self.voice_counts)

    @property
    def bos_id(self) -> int:
        return self.base["BOS_None"]

    @property
    def eos_id(self) -> int:
        return self.base["EOS_None"]

    @property
    def pad_id(self) -> int:
        return self.base.pad_token_id

    @property
    def uses_bpe(self) -> bool:
        return self.base.is_trained

    def style_id(self, style: str) -> int:
        if style not in self.styles:
            raise MusicGPTError(
                f"unknown style {style!r}; this model knows {', '.join(self.styles) or 'none'}")
        return self.base_size + self.styles.index(style)

    def mode_id(self, mode: str) -> int:
        if mode not in self.modes:
            raise MusicGPTError(f"unknown mode {mode!r}; this model knows {', '.join(self.modes) or 'none'}")
        return self.base_size + len(self.styles) + self.modes.index(mode)

    def tonic_id(self, tonic: str) -> int:
        if not self.tonics:
            raise MusicGPTError("this model has no key control; it was trained without tonic tokens")
        return self.base_size + len(self.styles) + len(self.modes) + pitch_class(tonic)

    def voices_id(self, voices: int) -> int:
        if not self.voice_counts:
            raise MusicGPTError("this model has no voices control token")
        if voices not in self.voice_counts:
            lo, hi = self.voice_counts[0], self.voice_counts[-1]
            raise MusicGPTError(f"`voices` must be {lo} to {hi}, not {voices}")
        offset = len(self.styles) + len(self.modes) + len(self.tonics)
        return self.base_size + offset + self.voice_counts.index(voices)

    def header(self, style: str | None = None, mode: str | None = None, tonic: str | None = None,
               voices: int | None = None) -> list[int]:
        """The sequence start: BOS, then the control tokens that are given (style, voices, tonic,
        mode). A tonic or voices control this tokenizer has no tokens for is left out."""
        ids = [self.bos_id]
        if style:
            ids.append(self.style_id(style))
        if voices and self.voice_counts:
            ids.append(self.voices_id(min(voices, self.voice_counts[-1])))
        if tonic and self.tonics:
            ids.append(self.tonic_id(tonic))
        if mode:
            ids.append(self.mode_id(mode))
        return ids

    # ---- encode / decode ----------------------------------------------------------------------
    def encode(self, score: symusic.Score) -> list[int]:
        """Music token ids (BPE-encoded when trained), without BOS/EOS or control tokens."""
        seq = self.base.encode(score)
        if isinstance(seq, list):  # only multi-stream tokenizers return a list; ours never do
            raise MusicGPTError("tokenizer returned several streams; expected one")
        return list(seq.ids)

    def decode(self, ids: Iterable[int]) -> symusic.Score:
        """A score from token ids; control and special tokens are ignored."""
        music = [i for i in ids if i < self.base_size and i not in self._special_ids]
        if not music:
            return symusic.Score(self.base.time_division)
        try:
            return self.base.decode(music)
        except Exception as e:  # MidiTok assumes a well-formed stream; a broken one can raise anything
            raise MusicGPTError(f"these tokens do not decode to music ({type(e).__name__} in "
                                "MidiTok)") from None

    @property
    def _special_ids(self) -> set[int]:
        return set(self.base.special_tokens_ids)

    def _base_sequence(self, ids: Sequence[int]) -> miditok.TokSequence:
        """A MidiTok sequence of base tokens (BPE undone) for the music ids among `ids`."""
        seq = miditok.TokSequence(ids=[i for i in ids if i < self.base_size],
                                  are_ids_encoded=self.uses_bpe)
        if self.uses_bpe:
            self.base.decode_token_ids(seq)
        self.base.complete_sequence(seq)
        return seq

    def to_base_tokens(self, ids: Sequence[int]) -> list[str]:
        """Token strings after undoing BPE: what MidiTok's grammar speaks."""
        return list(self._base_sequence(ids).tokens)

    def error_rate(self, ids: Sequence[int]) -> float:
        """MidiTok's share of tokens that break the grammar (0 for a valid sequence; 1 for a
        stream so broken that MidiTok's checker itself fails on it)."""
        music = [i for i in ids if i not in self._special_ids]
        if not any(i < self.base_size for i in music):
            return 0.0
        try:
            return float(self.base.tokens_errors(self._base_sequence(music)))
        except Exception:  # MidiTok's checker trips over some broken streams: all of it is wrong
            return 1.0

    # ---- per-id facts used by data, evaluation and augmentation -------------------------------
    @property
    def tables(self) -> TokenTables:
        """Every per-id lookup of the base vocabulary (tables.py), computed on first use."""
        if self._tables is None:
            self._tables = token_tables(self.base.vocab, self.vocab_size)
        return self._tables

    def notes_per_id(self) -> np.ndarray:
        """(vocab_size,) number of notes each id stands for: 1 for Pitch, more for BPE merges."""
        if not self.uses_bpe:
            return (self.tables.pitch >= 0).astype(np.int64)
        counts = np.zeros(self.vocab_size, dtype=np.int64)
        for i in range(self.base_size):
            counts[i] = sum(t.startswith("Pitch_") for t in self.to_base_tokens([i]))
        return counts

    def pitch_shift_table(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(pitch_of_id, id_of_pitch) for transposing base token ids; None with BPE."""
        if self.uses_bpe:
            return None
        # pitch_range's top is exclusive here though MidiTok has a token for it: the top Pitch
        # token has always been left out of transposition, and the shipped models learnt so
        lo, hi = self.cfg.pitch_range
        pitch = self.tables.pitch
        pitch_of_id = np.where((pitch >= lo) & (pitch < hi), pitch, -1)
        id_of_pitch = self.tables.id_of_pitch()
        id_of_pitch[hi:] = -1
        return pitch_of_id, id_of_pitch

    def program_of_id(self) -> np.ndarray:
        """(vocab_size,) the MIDI program a Program token names, -1 for other ids (no BPE)."""
        return self.tables.program.copy()

    # ---- BPE ----------------------------------------------------------------------------------
    def train_bpe(self, vocab_size: int, midi_files: Sequence[Path]) -> None:
        """Learn MidiTok's BPE merges on these files (one token stream each)."""
        if vocab_size <= self.base_size:
            raise MusicGPTError(f"BPE vocabulary {vocab_size} must exceed the base {self.base_size}")
        self.base.train(vocab_size=vocab_size, model="BPE", files_paths=list(midi_files))
        self._tables = None  # the vocabulary grew
        self.cfg = TokenizerConfig(**{**to_dict(self.cfg), "bpe_vocab_size": vocab_size})

    # ---- grammar ------------------------------------------------------------------------------
    def grammar(self) -> Grammar | None:
        """A mask of allowed next tokens (REMI or TSD); None with BPE, whose merged ids it cannot read."""
        if self.uses_bpe:
            return None
        return Grammar(self.tables, self.base.tokens_types_graph, self.eos_id)

    # ---- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            self.base.save(Path(tmp), filename="tokenizer.json")
            params = json.loads((Path(tmp) / "tokenizer.json").read_text())
        out = {"config": to_dict(self.cfg), "miditok": params, "styles": list(self.styles),
               "modes": list(self.modes)}
        if self.tonics or self.voice_counts:  # older tokenizers' dicts (and cache keys) stay as they were
            out.update(tonics=list(self.tonics), voice_counts=list(self.voice_counts))
        return out

    @classmethod
    def from_dict(cls, data: dict) -> MusicTokenizer:
        cfg = from_dict(TokenizerConfig, data["config"])
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "tokenizer.json"
            path.write_text(json.dumps(data["miditok"]))
            base = _KINDS[cfg.kind](params=path)
        return cls(cfg, base, tuple(data.get("styles", ())), tuple(data.get("modes", ())),
                   tuple(data.get("tonics", ())), tuple(data.get("voice_counts", ())))

