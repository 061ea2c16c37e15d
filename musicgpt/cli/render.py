"""`musicgpt render`: audio, piano roll and score of any score file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musicgpt.cli.classify import BARS
from musicgpt.cli.options import HelpFormatter
from musicgpt.config import MAX_AUDIO_S, MAX_SCORE_NOTES, SAMPLE_RATE
from musicgpt.errors import MusicGPTError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "render", help="listen to and look at a score: WAV audio, piano-roll PNG, MusicXML score, SVG",
        description="Write FILE's audio (STEM.wav: an organ-like synthesis, no sound font "
        "needed), its piano roll (STEM.png: one colour per track, in the file's track order "
        "blue, red, green, orange, purple; bar lines grey) and its score (STEM.musicxml, for "
        "MuseScore and other notation programs), beside FILE or in --out-dir; --svg writes its "
        "engraved score (STEM.svg, or STEM-1.svg, STEM-2.svg, ... for several pages; needs "
        "verovio). FILE is .mid .midi .xml .mxl .musicxml .krn or .abc. With none of "
        "--wav --roll --score --svg, the first three are written. A file that cannot be read is "
        "reported and the others are still rendered; the exit status is then non-zero.",
        formatter_class=HelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--wav", action="store_true", help="write the audio")
    p.add_argument("--roll", action="store_true", help="write the piano roll")
    p.add_argument("--score", action="store_true", help="write the MusicXML score")
    p.add_argument("--svg", action="store_true", help="write the engraved score, one SVG per page "
                   "(needs verovio: pip install -e '.[engrave]')")
    p.add_argument("--out-dir", type=Path, default=argparse.SUPPRESS,
                   help="folder for the outputs (default: beside each FILE)")
    p.add_argument("--bars", type=BARS["type"], help="render only the first N bars")
    p.add_argument("--max-seconds", type=float, default=MAX_AUDIO_S,
                   help="refuse audio for music longer than this (memory grows with the length)")
    p.add_argument("--max-notes", type=int, default=MAX_SCORE_NOTES,
                   help="refuse a MusicXML score of more notes than this (notation time grows with them)")
    p.add_argument("--sample-rate", type=int, default=SAMPLE_RATE,
                   help=f"audio sample rate in Hz, {MIN_RATE} to {MAX_RATE}")
    p.set_defaults(func=cmd_render)


MIN_RATE, MAX_RATE = 8000, 192000


def kinds_of(args: argparse.Namespace) -> tuple[str, ...]:
    from musicgpt.rendering.outputs import KINDS

    chosen = tuple(k for k, on in zip((*KINDS, "svg"), (args.wav, args.roll, args.score, args.svg)) if on)
    return chosen or KINDS


def describe(path: Path, score) -> str:
    """'wrote X.wav (12.3 s)' and the like, for the user."""
    if path.suffix == ".wav":
        return f"wrote {path} ({score.to('second').end():.1f} s of audio)"
    return f"wrote {path}"


def render_outputs(score, stem: Path, kinds: tuple[str, ...], sample_rate: int,
                   source: Path | None = None, marks: tuple[int, ...] = (),
                   limits: dict | None = None, header_end: int | None = None) -> list[str]:
    """Render `score` to STEM.*; never over the file it was read from (that kind is left out,
    with a note saying how to get it). `marks` and `header_end`: as outputs.render."""
    from musicgpt.rendering.outputs import output_path, render

    keep = []
    for kind in kinds:
        target = output_path(stem, kind)
        if source is not None and target.exists() and target.resolve() == source.resolve():
            if len(kinds) == 1:
                continue
            print(f"musicgpt: note: not writing {target}: it is the file being rendered; pass "
                  "--out-dir DIR to write it elsewhere", file=sys.stderr)
        else:
            keep.append(kind)
    if kinds and not keep:
        raise MusicGPTError(f"{source}: rendering it would overwrite it; pass --out-dir DIR")
    made = render(score, stem, tuple(keep), sample_rate, marks, header_end=header_end, **(limits or {}))
    return [describe(p, score) for p in made]


def cmd_render(args: argparse.Namespace) -> int:
    from musicgpt.scores import first_bars, load_score

    if not MIN_RATE <= args.sample_rate <= MAX_RATE:
        raise MusicGPTError(f"--sample-rate {args.sample_rate} is out of range; use {MIN_RATE} to "
                            f"{MAX_RATE} Hz (22050 is plenty for these sounds)")
    kinds = kinds_of(args)
    out_dir = getattr(args, "out_dir", None)
    failed = 0
    stems: dict[Path, str] = {}  # output stem -> the file that claimed it
    for name in args.files:
        path = Path(name)
        try:
            stem = (out_dir or path.parent) / path.stem
            key = stem.absolute()
            if key in stems and stems[key] != name:
                raise MusicGPTError(f"{name}: its outputs would overwrite those of {stems[key]} "
                                    "(same name); render it on its own, or with another --out-dir")
            stems[key] = name
            score = load_score(path)
            if args.bars:
                score = first_bars(score, args.bars)
            limits = {"max_seconds": args.max_seconds, "max_notes": args.max_notes}
            for line in render_outputs(score, stem, kinds, args.sample_rate, source=path, limits=limits):
                print(line)
        except MusicGPTError as exc:
            print(f"musicgpt: error: {exc if name in str(exc) else f'{name}: {exc}'}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0
