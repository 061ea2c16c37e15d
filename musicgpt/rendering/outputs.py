"""What people listen to and look at, in one call: audio (WAV), a piano roll (PNG), a score (MusicXML)
and, when asked for, its engraving (SVG pages, by verovio: an optional dependency).

Everything starts from the package's one score type (`symusic.Score`), so a continuation, a
corpus MIDI file and a user's MusicXML render the same way. Every file is written atomically.
Each kind lives in its own module: audio.py, pianoroll.py, score.py, engrave.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import symusic

from musicgpt.config import MAX_AUDIO_S, MAX_SCORE_NOTES, SAMPLE_RATE
from musicgpt.errors import MusicGPTError
from musicgpt.rendering.audio import synthesize, write_wav
from musicgpt.rendering.engrave import require_verovio, write_svg
from musicgpt.rendering.pianoroll import piano_roll, write_png
from musicgpt.rendering.score import write_musicxml

KINDS = ("wav", "roll", "score")  # what `render` writes unless told otherwise
SUFFIX = {"wav": ".wav", "roll": ".png", "score": ".musicxml", "svg": ".svg"}


def output_path(stem: str | Path, kind: str) -> Path:
    """Where `render` writes one kind: STEM.wav, STEM.png, STEM.musicxml or STEM.svg (an engraving
    of several pages is STEM-1.svg, STEM-2.svg, ...: engrave.svg_paths)."""
    if kind not in SUFFIX:
        raise MusicGPTError(f"unknown render kind {kind!r}; expected one of {', '.join(SUFFIX)}")
    stem = Path(stem)
    return stem.with_name(stem.name + SUFFIX[kind])


def render(score: symusic.Score, stem: str | Path, kinds: tuple[str, ...] = KINDS,
           sample_rate: int = SAMPLE_RATE, marks: Sequence[int] = (),
           max_seconds: float = MAX_AUDIO_S, max_notes: int = MAX_SCORE_NOTES,
           header_end: int | None = None) -> list[Path]:
    """Write STEM.wav, STEM.png, STEM.musicxml and/or the SVG pages; return the paths written.

    `marks`: ticks to draw as dashed lines on the piano roll; notes that begin before
    `header_end` are drawn pale on it (a continuation's header). A score longer than
    `max_seconds` gets no audio and one with more than `max_notes` notes no MusicXML or SVG:
    each is refused, before anything is made, with a MusicGPTError that says how to raise the
    cap; so is an SVG when verovio is not installed."""
    stem = Path(stem)
    if "wav" in kinds and score.to("second").end() > max_seconds:
        raise MusicGPTError(f"it lasts {score.to('second').end():.0f} s, more than the {max_seconds:g} s "
                            "of audio one render makes; render fewer --bars, or raise --max-seconds")
    if "svg" in kinds:
        require_verovio()
    if ("score" in kinds or "svg" in kinds) and score.note_num() > max_notes:
        raise MusicGPTError(f"it has {score.note_num()} notes, more than the {max_notes} one MusicXML "
                            "score is made of; render fewer --bars, or raise --max-notes")
    written = []
    for kind in kinds:
        path = output_path(stem, kind)
        if kind == "wav":
            write_wav(synthesize(score, sample_rate), path, sample_rate)
        elif kind == "roll":
            write_png(piano_roll(score, marks=marks, header_end=header_end), path)
        elif kind == "score":
            write_musicxml(score, path, title=stem.name)
        else:
            continue
        written.append(path)
    if "svg" in kinds:  # engraved from the MusicXML written above, or from one made for it
        xml = output_path(stem, "score")
        if "score" in kinds:
            written += write_svg(xml, stem)
        else:
            with tempfile.TemporaryDirectory() as d:
                write_musicxml(score, Path(d) / xml.name, title=stem.name)
                written += write_svg(Path(d) / xml.name, stem)
    return written
