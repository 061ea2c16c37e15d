"""What a continuation is held to while it is sampled, beside the model's own choices: the
header's voices and meter (texture_mask, and voices_enter when more voices are asked for), a
requested key (scale_mask, mode_bias, the final's and the mode's checks) and the bar count
(no_end_before). Each is a mask or bias over the next token's logits; continuation.py combines
them."""

from __future__ import annotations

import numpy as np
import symusic
import torch

from musicgpt.config import VOICE_PROGRAMS
from musicgpt.errors import MusicGPTError
from musicgpt.theory import (
    MODE_SCALES,
    PITCH_CLASSES,
    PREFERENCE,
    best_scale,
    pc_histogram,
    pitch_class,
    scale_fits,
    score_key,
    sounds_mode,
)
from musicgpt.tokens.tokenizer import MusicTokenizer

# draws of the last bar when a kept key asks it to end on the tonic and, if the bars before were
# not yet heard in the mode, to make them so (theory.sounds_mode); the best draw is kept
FINAL_TRIES = 16
BODY_TRIES = 4  # draws of the bars before the last until they are heard in the mode


def model_key_finder(model: torch.nn.Module, tok: MusicTokenizer):
    """The key head stored beside `model`'s body in the checkpoint it was loaded from (lm.load_model
    keeps it), as a function score -> (tonic pc, mode), or None; built once per model."""
    if not hasattr(model, "_key_finder"):
        from musicgpt.classifier.classify import header_key_finder

        info, state = getattr(model, "stored_heads", (None, None))
        model._key_finder = header_key_finder(model, tok, info, state)
    return model._key_finder


def resolve_key(prompt: symusic.Score, mode: str | None, tonic: str | None,
                key_finder=None) -> tuple[str, str]:
    """(tonic name, mode): what was asked, the rest inferred from the prompt's notes. A given
    mode alone goes on the header's tonic (D major asked for aeolian: D aeolian); a given tonic
    alone gets the mode that fits the header best on it. The header's key is found by
    `key_finder(prompt)` -> (tonic pc, mode) when given (classify.header_key_finder: the model's
    own key head), else by the profile rule (theory.score_key)."""
    if tonic:
        tonic = PITCH_CLASSES[pitch_class(tonic)]
        if mode:
            return tonic, mode
        return tonic, best_scale(scale_fits(pc_histogram(prompt), pitch_class(tonic)))
    t, m = key_finder(prompt) if key_finder is not None else score_key(prompt)
    return PITCH_CLASSES[t], mode or m


def scale_mask(tok: MusicTokenizer, tonic: int, mode: str) -> torch.Tensor:
    """(vocab_size,) bool: False for the Pitch tokens outside `mode`'s scale on `tonic`."""
    if mode not in MODE_SCALES:
        raise MusicGPTError(f"no scale for mode {mode!r}; a kept key needs one of "
                            f"{', '.join(MODE_SCALES)}")
    pitch = tok.tables.pitch
    scale = np.array(sorted((tonic + s) % 12 for s in MODE_SCALES[mode]))
    keep = torch.ones(tok.vocab_size, dtype=torch.bool)
    keep[torch.from_numpy((pitch >= 0) & ~np.isin(pitch % 12, scale))] = False
    return keep


MODE_BOOST = 2.0  # logits added to the degrees that make a kept mode heard, until it is heard


def mode_bias(tok: MusicTokenizer, tonic: int, mode: str, start: int):
    """A logits bias for a kept key: until the new notes (ids after `start`) are heard in `mode`
    (theory.sounds_mode), the Pitch tokens of its degrees that no commoner mode on that final
    has, and that have not sounded yet, get MODE_BOOST (dorian: the minor third, major sixth and
    minor seventh). It steers, like the model's own preference; it forces nothing."""
    pitch = tok.tables.pitch
    scale = MODE_SCALES.get(mode, frozenset())
    commoner = PREFERENCE[: PREFERENCE.index(mode)] if mode in PREFERENCE else ()
    telling = {d for d in scale if any(d not in MODE_SCALES[m] for m in commoner)}
    by_pc = {(tonic + d) % 12: torch.from_numpy((pitch >= 0) & (pitch % 12 == (tonic + d) % 12))
             for d in telling}

    def bias(ids: list[int]) -> torch.Tensor | None:
        heard = pitch_classes(tok, ids[start:])
        if not by_pc or sounds_mode(heard, tonic, mode):
            return None
        out = torch.zeros(tok.vocab_size)
        for pc, where in by_pc.items():
            if pc not in heard:
                out[where] = MODE_BOOST
        return out

    return bias


def pitch_classes(tok: MusicTokenizer, ids: list[int]) -> set[int]:
    """The pitch classes of the Pitch tokens in `ids`."""
    pitch = tok.tables.pitch
    return {int(pitch[i]) % 12 for i in ids if pitch[i] >= 0}


def last_bass_pc(tok: MusicTokenizer, ids: list[int]) -> int | None:
    """Pitch class of the lowest note at the last onset written in `ids` (REMI ids), or None."""
    tables = tok.tables
    onset, bars, pitches = None, 0, []
    where = None
    for i in ids:
        kind = tables.type[i]
        if kind == "Bar":
            bars += 1
        elif kind == "Position":
            where = (bars, int(tables.position[i]))
        elif kind == "Pitch" and where is not None:
            if where != onset:
                onset, pitches = where, []
            pitches.append(int(tables.pitch[i]))
    return min(pitches) % 12 if pitches else None


MAX_VOICES = len(VOICE_PROGRAMS)


def texture_mask(tok: MusicTokenizer, header_ids: list[int], voices: int | None = None) -> torch.Tensor:
    """(vocab_size,) bool: False for the Program tokens of voices the continuation may not use
    and for the time signatures the header does not have; True for every other id.

    The voices are the header's own (`voices` None), or `voices` of them: the header's first,
    then the unused voice programs in order (no BPE: merged ids hide their Program tokens)."""
    tables = tok.tables
    program, kind = tables.program, tables.type
    in_header = set(voice_programs(tok, header_ids, voices))
    keep = torch.ones(tok.vocab_size, dtype=torch.bool)
    if in_header:
        keep[torch.from_numpy((program >= 0) & ~np.isin(program, sorted(in_header)))] = False
    meters = {i for i in header_ids if kind[i] == "TimeSig"}
    if meters:
        for i in tables.ids_of("TimeSig"):
            keep[int(i)] = int(i) in meters
    return keep


def voice_programs(tok: MusicTokenizer, header_ids: list[int], voices: int | None = None) -> list[int]:
    """The programs the continuation may play: the header's own (`voices` None), or `voices` of
    them, the header's first (soprano first), then the unused voice programs in order."""
    program = tok.tables.program
    in_header = sorted({int(program[i]) for i in header_ids if program[i] >= 0}, key=_voice_rank)
    if voices is None:
        return in_header
    if not 1 <= voices <= MAX_VOICES:
        raise MusicGPTError(f"`voices` must be 1 to {MAX_VOICES}, not {voices}")
    return (in_header + [p for p in VOICE_PROGRAMS if p not in in_header])[:voices]


def voices_enter(mask_fn, tok: MusicTokenizer, programs: list[int], start: int):
    """`mask_fn` that, from the first new onset (the first Position token after `start`), lets
    time move on (no Bar or Position token, no end) only once every one of `programs` has
    played a note in the new material: asked for more voices than the header has, the model
    would otherwise go on in the header's texture, as its training always saw the voices token
    match the voices sounding. Once they have entered, it continues in their texture."""
    tables = tok.tables
    kind, program = tables.type, tables.program
    advance = torch.zeros(tok.vocab_size, dtype=torch.bool)
    for typ in ("Bar", "Position"):
        advance[torch.from_numpy(tables.ids_of(typ))] = True
    advance[tok.eos_id] = True
    wanted = set(programs)

    def allowed(ids: list[int]) -> torch.Tensor:
        mask = mask_fn(ids)
        new = ids[start:]
        if not any(kind[i] == "Position" for i in new):
            return mask
        if wanted <= {int(program[i]) for i in new if program[i] >= 0}:
            return mask
        narrowed = mask & ~advance
        return narrowed if bool(narrowed.any()) else mask

    return allowed


def _voice_rank(program: int) -> int:
    return VOICE_PROGRAMS.index(program) if program in VOICE_PROGRAMS else MAX_VOICES + program


def within(mask_fn, keep: torch.Tensor):
    """`mask_fn` narrowed to `keep`, unless that would leave nothing to sample."""

    def allowed(ids: list[int]) -> torch.Tensor:
        mask = mask_fn(ids)
        narrowed = mask & keep
        return narrowed if bool(narrowed.any()) else mask

    return allowed


def no_end_before(mask_fn, eos_id: int, bar_id: int, bars: int, start: int):
    """`mask_fn` with the end token forbidden until `bars` bar lines follow position `start`
    (unless nothing else would be allowed)."""

    def allowed(ids: list[int]) -> torch.Tensor:
        mask = mask_fn(ids)
        if ids[start:].count(bar_id) < bars and bool(mask[eos_id]):
            mask = mask.clone()
            mask[eos_id] = False
            if not mask.any():
                mask[eos_id] = True
        return mask

    return allowed


def plain_mask(tok: MusicTokenizer):
    """Without a grammar: never sample control or framing tokens."""
    allowed = torch.ones(tok.vocab_size, dtype=torch.bool)
    allowed[tok.base_size :] = False
    for name in ("PAD_None", "BOS_None", "MASK_None"):
        if name in tok.base.vocab:
            allowed[tok.base.vocab[name]] = False
    return lambda prefix: allowed
