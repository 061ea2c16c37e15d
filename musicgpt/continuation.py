"""Continue a thematic header: prompt -> token ids -> samples -> a score that starts with the prompt."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import symusic
import torch

from musicgpt.config import SampleConfig
from musicgpt.errors import MusicGPTError
from musicgpt.notestring import looks_like_notes, parse_notes
from musicgpt.sampling import sample
from musicgpt.scores import SCORE_SUFFIXES, first_bars, load_score, normalize
from musicgpt.steering import (
    BODY_TRIES,
    FINAL_TRIES,
    last_bass_pc,
    mode_bias,
    model_key_finder,
    no_end_before,
    pitch_classes,
    plain_mask,
    resolve_key,
    scale_mask,
    texture_mask,
    voice_programs,
    voices_enter,
    within,
)
from musicgpt.theory import VELOCITY, pitch_class, sounds_mode
from musicgpt.tokens.state import silent_bars
from musicgpt.tokens.tokenizer import MusicTokenizer

log = logging.getLogger(__name__)


def load_prompt(prompt: str, bars: int | None = None, tune: int | None = None) -> symusic.Score:
    """A file (MIDI, MusicXML, kern, ABC; `tune` N: the tune numbered N of an ABC book) or a note
    string, cut to its first `bars` bars."""
    if not prompt.strip():
        raise MusicGPTError("the prompt is empty; give a score file or a note string such as "
                            "\"C4 D4 E4 F4 G4:h\"")
    path = Path(prompt).expanduser()
    try:
        a_file = len(prompt.split()) == 1 and path.is_file()  # a file called "E" is read as one
    except OSError:  # a note string too long to be a file name
        a_file = False
    if looks_like_notes(prompt) and path.suffix.lower() not in SCORE_SUFFIXES and not a_file:
        score = parse_notes(prompt)
    else:
        score = load_score(path, tune)
    score = normalize(score)
    if bars is not None:
        score = first_bars(score, bars)
    return score


@dataclass
class Continuation:
    score: symusic.Score  # header notes unchanged, then the continuation
    continuation: symusic.Score  # the new notes only
    prompt_tokens: int
    new_tokens: int
    error_rate: float  # MidiTok's share of ungrammatical tokens; 0 for a valid sequence
    # bars begun after the header's last bar in which a note sounds; None for a length in tokens
    new_bars: int | None = None
    key: tuple[str, str] | None = None  # (tonic, mode) the continuation was told or kept to
    key_source: str = ""  # "given", "tonic given, mode inferred", ... or "inferred from the header"
    key_kept: bool = False  # new notes were held to the key's scale and ended on its tonic
    final_on_tonic: bool | None = None  # with key_kept and a length in bars: whether that worked

    @property
    def key_name(self) -> str:
        return f"{self.key[0]} {self.key[1]}" if self.key else ""


def held_bars(score: symusic.Score) -> int:
    """Bars that begin after the bar of the score's last onset and before its last note ends:
    bars only its held notes sound in."""
    from miditok.utils import get_bars_ticks

    notes = [(n.time, n.end) for t in score.tracks for n in t.notes]
    if not notes:
        return 0
    last_onset, end = max(t for t, _ in notes), max(e for _, e in notes)
    return sum(1 for b in get_bars_ticks(score) if last_onset < b < end)


def _note_keys(score: symusic.Score, tpq: int) -> Counter:
    scale = tpq / score.ticks_per_quarter
    return Counter((t.program, round(n.time * scale), round(n.duration * scale), n.pitch)
                   for t in score.tracks for n in t.notes)


def _merge(prompt: symusic.Score, new_notes: list[tuple[int, int, int, int]]
           ) -> tuple[symusic.Score, symusic.Score]:
    """The prompt with `new_notes` (program, time, duration, pitch) added, and the new notes alone.

    One voice cannot strike a pitch it is still holding (in MIDI the first note-off would cut
    the second note short): a new note that starts under a header note of the same pitch and
    voice starts when that note ends instead, or is dropped if nothing is left of it, so the
    header stays as given; a new note still sounding when the voice strikes its pitch again is
    ended there.
    """
    full, only = prompt.copy(deep=True), symusic.Score(prompt.ticks_per_quarter)
    only.time_signatures = prompt.time_signatures.copy()
    only.tempos = prompt.tempos.copy()
    held: dict[tuple[int, int], int] = {}  # (program, pitch) -> when the header's last such note ends
    for t in prompt.tracks:
        for n in t.notes:
            held[t.program, n.pitch] = max(held.get((t.program, n.pitch), 0), n.end)
    voices: dict[int, list[list[int]]] = {}  # program -> [time, duration, pitch] of new notes
    for program, time, dur, pitch in sorted(new_notes):
        end = time + max(dur, 1)
        time = max(time, held.get((program, pitch), 0))
        if time >= end:
            continue
        notes = voices.setdefault(program, [])
        for note in notes:  # a new note of this pitch still sounding ends at the re-strike
            if note[2] == pitch and note[0] < time < note[0] + note[1]:
                note[1] = time - note[0]
        notes.append([time, end - time, pitch])
    tracks = {t.program: t for t in full.tracks}
    for program, notes in voices.items():
        if program not in tracks:
            tracks[program] = symusic.Track(name=f"voice {len(tracks) + 1}", program=program)
            full.tracks.append(tracks[program])
        alone = symusic.Track(name=f"program {program}", program=program)
        only.tracks.append(alone)
        for time, dur, pitch in sorted(notes):
            tracks[program].notes.append(symusic.Note(time, dur, pitch, VELOCITY))
            alone.notes.append(symusic.Note(time, dur, pitch, VELOCITY))
    return full, only


def continue_score(model: torch.nn.Module, tok: MusicTokenizer, prompt: symusic.Score, *,
                   sample_cfg: SampleConfig, bars: int | None = 4, style: str | None = None,
                   mode: str | None = None, voices: int | None = None, tonic: str | None = None,
                   keep_key: bool = True, infer_key: bool = True,
                   generator: torch.Generator | None = None, key_finder=None,
                   on_bar: Callable[[], None] | None = None) -> Continuation:
    """Sample a continuation of `prompt`; with `bars`, stop after that many new bars.

    The continuation keeps the header's texture and meter: it plays in the header's voices
    (`voices` N: in N voices, the header's first, so a one-voice theme can be harmonised) and
    writes no time signature the header does not have. A model with a voices control token is
    also told that number (the header's own when `voices` is None).

    The key: a requested `mode` and/or `tonic` is completed from the header (resolve_key)
    and told to the model through its control tokens; with `keep_key` (the default) the new
    notes are also held to that key's scale and, with `bars`, the last bar is drawn again (up to
    FINAL_TRIES times) until its last, lowest note is the tonic and the new notes are heard in the
    mode (theory.sounds_mode: a dorian line sounds its major sixth and its minor third or
    seventh), which the bars before it are drawn up to BODY_TRIES times to do. With
    neither given, the header's own inferred key is told to the model as control tokens (not
    with `infer_key` False), and nothing is held."""
    context = model.cfg.context
    header_ids = tok.encode(prompt)
    if not header_ids:
        raise MusicGPTError("the prompt has no notes the tokenizer can read")
    if mode and tok.modes and mode not in tok.modes:
        tok.mode_id(mode)  # raises, naming the modes the model knows
    requested = bool(mode or tonic)
    key = resolve_key(prompt, mode, tonic, key_finder or model_key_finder(model, tok))
    keep = keep_key and requested
    told = requested or infer_key
    tonic_token = key[0] if told and tok.tonics else None
    mode_token = key[1] if told and key[1] in tok.modes else None
    sounding = len({t.program for t in prompt.tracks if t.notes})
    prefix = tok.header(style, mode_token, tonic_token, voices or sounding) + header_ids
    if len(prefix) >= context:
        raise MusicGPTError(
            f"the prompt is {len(prefix)} tokens but the model's context is {context}; "
            "use fewer bars of it (--bars N)")
    bar_id = tok.base.vocab.get("Bar_None")
    if bars is not None and (bar_id is None or tok.uses_bpe):
        raise MusicGPTError("`length` in bars needs a REMI model without BPE; give a length in "
                            "tokens instead (e.g. 300tokens)")
    grammar = tok.grammar()
    if grammar is not None:  # no fully silent new bar, unless the header has one
        grammar.fill_bars = silent_bars(header_ids, tok.tables) == 0
    mask_fn = grammar.allowed if grammar is not None else plain_mask(tok)
    if not tok.uses_bpe:
        mask_fn = within(mask_fn, texture_mask(tok, header_ids, voices))
        if voices is not None and voices > sounding:  # the added voices enter at the first onset
            mask_fn = voices_enter(mask_fn, tok, voice_programs(tok, header_ids, voices), len(prefix))
        if keep:
            mask_fn = within(mask_fn, scale_mask(tok, pitch_class(key[0]), key[1]))
    # with a length in bars: the bar the header ends in is completed, then `bars` more, and
    # sampling stops at the next bar line. The model may not end the piece before the last of
    # those bars has begun: a header that is a whole piece would otherwise get nothing added.
    # bars after the header's last onset that its held notes fill have no bar line in its tokens
    # (MidiTok writes none after the last event): they are the header's, sampled but not counted
    held = 0 if bars is None else held_bars(prompt)
    span = None if bars is None else bars + held
    stop_fn = None if bars is None else (lambda new: new.count(bar_id) > span)
    if bars is not None:
        mask_fn = no_end_before(mask_fn, tok.eos_id, bar_id, span, len(prefix))

    device = next(model.parameters()).device
    bias_fn = (mode_bias(tok, pitch_class(key[0]), key[1], len(prefix))
               if keep and not tok.uses_bpe else (lambda ids: None))

    def draw(ids: list[int], budget: int, stop) -> list[int]:
        head, window, fn = [], ids, mask_fn
        if len(ids) >= context:  # the model reads the last half context; the masks see it all
            head, window = ids[: -(context // 2)], ids[-(context // 2):]
            fn = lambda x: mask_fn(head + x)  # noqa: E731
        def watched(new: list[int]) -> bool:  # `on_bar` at each bar line sampled (a progress bar)
            if on_bar is not None and new and new[-1] == bar_id:
                on_bar()
            return stop(new) if stop is not None else False

        return sample(model, window, max_new_tokens=budget, temperature=sample_cfg.temperature,
                      top_k=sample_cfg.top_k, top_p=sample_cfg.top_p, generator=generator,
                      logits_mask_fn=fn, stop_ids=(tok.eos_id,), stop_fn=watched, device=device,
                      logits_bias_fn=bias_fn if not head else (lambda x: bias_fn(head + x)))

    final_on_tonic = None
    if keep and bars is not None and span >= 1 and not tok.uses_bpe:
        # all but the last bar, then the last bar until it ends on the tonic
        tonic_pc = pitch_class(key[0])
        for _ in range(BODY_TRIES if span > 1 else 1):
            new = draw(prefix, sample_cfg.max_new_tokens, lambda new: new.count(bar_id) >= span)
            if sounds_mode(pitch_classes(tok, new), tonic_pc, key[1]):
                break
        if new and new[-1] == bar_id:
            budget = max(sample_cfg.max_new_tokens - len(new), 1)
            heard = pitch_classes(tok, new)

            def merit(last: list[int]) -> tuple[bool, bool]:  # (ends on the tonic, heard in the mode)
                return (last_bass_pc(tok, last) == tonic_pc,
                        sounds_mode(heard | pitch_classes(tok, last), tonic_pc, key[1]))

            best = None
            for _ in range(FINAL_TRIES):
                last = draw(prefix + new, budget, lambda new: new.count(bar_id) >= 1)
                if best is None or merit(last) > merit(best):
                    best = last
                if all(merit(best)):
                    break
            final_on_tonic = merit(best)[0]
            new = new + best
    else:
        new = draw(prefix, sample_cfg.max_new_tokens, stop_fn)
    if bars is not None and new.count(bar_id) > span:
        new = new[: [i for i, t in enumerate(new) if t == bar_id][span]]
    new = [t for t in new if t != tok.eos_id]
    # the new bars in which something sounds (a silent one, possible only after a silent header
    # bar, is not counted)
    new_bars = None if bars is None else max(
        new.count(bar_id) - silent_bars(prefix + new, tok.tables, after=len(prefix)) - held, 0)
    error_rate = tok.error_rate(header_ids + new)
    decoded_full = tok.decode(header_ids + new)
    decoded_head = tok.decode(header_ids)
    # notes in the decoded whole that the decoded header does not account for are the new ones
    tpq = prompt.ticks_per_quarter
    extra = _note_keys(decoded_full, tpq) - _note_keys(decoded_head, tpq)
    full, only = _merge(prompt, list(extra.elements()))
    source = ("given" if mode and tonic else "tonic given, mode inferred from the header" if tonic
              else "mode given, tonic inferred from the header" if mode
              else "inferred from the header" if infer_key else "")
    return Continuation(full, only, len(prefix), len(new), error_rate, new_bars,
                        key if told else None, source, keep, final_on_tonic)
