"""`musicgpt attention` and `musicgpt embeddings`: pictures of the model's insides, for learners."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from musicgpt.cli.classify import BARS
from musicgpt.cli.options import HelpFormatter, whole_number
from musicgpt.config import SHIPPED_MODEL, shipped
from musicgpt.errors import MusicGPTError

DEFAULT_TOKENS = 256  # about 10 bars of a chorale: each token still a few pixels wide


def head_number(text: str) -> int | None:
    """An argparse type: a head number, or `all` (None: the mean over the layer's heads)."""
    if text.strip().lower() == "all":
        return None
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a head number nor all") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "attention", help="draw what each token of a score attends to, in one layer and head",
        description="Draw the causal self-attention of one layer and head of the model over the "
        "start of FILE (a score file or a note string, read as `continue` reads its prompt): row i "
        "shows how token i shares its attention among tokens 0..i. Bar lines are drawn across the "
        "map, and a strip along each edge colours every token by its voice (black: a Bar token). "
        "Layers and heads count from 0 (`musicgpt info` says how many there are).",
        formatter_class=HelpFormatter)
    p.add_argument("file", metavar="FILE")
    p.add_argument("--layer", type=int, required=True, metavar="L", help="layer, 0 = nearest the tokens")
    p.add_argument("--head", type=head_number, required=True, metavar="H",
                   help="head, or all for the mean over the layer's heads")
    p.add_argument("--bars", type=BARS["type"], metavar="N", help="read only the first N bars of FILE")
    p.add_argument("--tokens", type=whole_number(2, "two tokens at least"), default=DEFAULT_TOKENS,
                   metavar="N", help="draw at most the first N tokens (up to the model's context; "
                   "more than a few hundred are hard to read)")
    p.add_argument("--tune", type=int, metavar="N", help="the tune numbered N (X:) of an ABC tune book")
    _common(p, "FILE's name + -attention-L{L}-H{H}.png, in the current folder")
    p.set_defaults(func=cmd_attention)

    p = sub.add_parser(
        "embeddings", help="draw the model's pitch embeddings in 2-D: octaves, circle of fifths?",
        description="Project the model's pitch-token embeddings onto their first two principal "
        "axes (PCA), each point named and coloured by its pitch class, and beside them the 12 "
        "pitch-class means (over octaves), joined in fifths and in chromatic order, with how well "
        "each order goes round a circle. Pitches the model almost never saw in training are left "
        "out (their rows collapse onto one shared vector; the picture says which).",
        formatter_class=HelpFormatter)
    _common(p, "the model file's name + -embeddings.png, in the current folder")
    p.set_defaults(func=cmd_embeddings)


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--out", type=Path, default=argparse.SUPPRESS, metavar="PNG",
                   help=f"the picture to write (default: {default_out})")
    p.add_argument("--model", type=Path, default=argparse.SUPPRESS,
                   help="checkpoint (default: the shipped model, musicgpt/weights/default.pt)")
    p.add_argument("--force", action="store_true",
                   help="replace an existing file at the default --out that musicgpt did not draw")


def _model_path(args: argparse.Namespace) -> Path:
    path = getattr(args, "model", None) or shipped(SHIPPED_MODEL)
    if not path.exists():
        raise MusicGPTError(f"no model at {path}; check the path, or leave out --model to use the "
                            "shipped one")
    return path


def check_out(out: Path, named: bool, force: bool, source: Path | None = None) -> None:
    """Refuse, before any work, an --out that is the input, a folder, not a .png, or (unless
    `force`) a file at the default path that the user did not name and musicgpt did not draw."""
    from musicgpt.atomic import check_writable
    from musicgpt.rendering.insight_plots import made_here

    if out.suffix.lower() != ".png":
        raise MusicGPTError(f"--out {out} is not a PNG file name; end it in .png")
    if source is not None and out.exists() and source.exists() and out.resolve() == source.resolve():
        raise MusicGPTError(f"writing {out} would overwrite the score being read; choose another --out")
    check_writable([out])
    if out.is_file() and not named and not force and not made_here(out):
        raise MusicGPTError(f"{out} already exists and musicgpt did not draw it; pass --force to "
                            "replace it, or choose another --out")


def _default_stem(file: str) -> str:
    from musicgpt.scores import SCORE_SUFFIXES

    path = Path(file).expanduser()
    return path.stem if path.suffix.lower() in SCORE_SUFFIXES else "theme"


def _share(x: float) -> str:
    return "-" if x != x else f"{x:.2f}"  # NaN: the measure does not apply (no such queries)


def cmd_attention(args: argparse.Namespace) -> int:
    head_word = "all" if args.head is None else str(args.head)
    named = hasattr(args, "out")
    out = args.out if named else Path(f"{_default_stem(args.file)}-attention-L{args.layer}-H{head_word}.png")
    check_out(out, named, args.force, Path(args.file).expanduser())
    model_path = _model_path(args)

    import torch

    from musicgpt.continuation import load_prompt
    from musicgpt.insight import (
        attention_map,
        attention_profile,
        check_layer_head,
        token_roles,
        uniform_attention,
    )
    from musicgpt.lm import load_model
    from musicgpt.rendering.insight_plots import SOFTWARE, attention_figure, save_png

    torch.set_num_threads(1)  # one short forward pass: threads only add start-up time
    model, tok, _ = load_model(model_path)
    check_layer_head(model, args.layer, args.head)
    score = load_prompt(args.file, args.bars, args.tune)
    sounding = len({t.program for t in score.tracks if t.notes})
    ids = tok.header(voices=sounding) + tok.encode(score)  # what `continue` gives the model, less a key
    if len(ids) <= len(tok.header(voices=sounding)):
        raise MusicGPTError(f"{args.file}: no notes the tokenizer can read (A0-C8)")
    cap = min(args.tokens, model.cfg.context)
    if len(ids) > cap:
        why = "the model's context" if cap == model.cfg.context else "--tokens"
        print(f"musicgpt: note: drawing the first {cap} of {len(ids)} tokens ({why}); "
              + ("--bars N picks fewer bars" if cap == model.cfg.context
                 else f"--tokens up to {model.cfg.context} draws more, --bars N fewer bars"), file=sys.stderr)
        ids = ids[:cap]
    weights = attention_map(model, ids, args.layer, args.head)
    roles = token_roles(tok, ids)
    heads = f"head {args.head}" if args.head is not None else f"mean of its {model.cfg.n_head} heads"
    bars = int(roles.bar.sum())
    title = f"{Path(args.file).name}: layer {args.layer}, {heads}"
    subtitle = (f"{len(ids)} tokens ({bars} bar line{'s' * (bars != 1)}), model {model_path.name}; "
                "a row is one token, its colours where that token's attention goes")
    save_png(attention_figure(weights, roles, title, subtitle), out, f"{SOFTWARE} attention")
    print(f"wrote {out} (layer {args.layer}, {heads}, {len(ids)} tokens)")
    got, even = attention_profile(weights, roles), attention_profile(uniform_attention(len(ids)), roles)
    print("  mass per token on (spread evenly over the tokens before it, it would be):")
    for key, words in (("previous", "the token just before"), ("first", "the first token (BOS)"),
                       ("bars", "bar lines"), ("positions", "position tokens"),
                       ("onset", "its onset so far (notes starting with it)"),
                       ("same_voice", "earlier notes of its own voice"),
                       ("other_voices", "notes of the other voices"),
                       ("prev_note", "the previous note of its voice")):
        print(f"    {words:<44} {_share(float(got[key]))} ({_share(float(even[key]))})")
    return 0


def cmd_embeddings(args: argparse.Namespace) -> int:
    model_path = _model_path(args)
    named = hasattr(args, "out")
    out = args.out if named else Path(f"{model_path.stem}-embeddings.png")
    check_out(out, named, args.force)

    from musicgpt.insight import pitch_geometry
    from musicgpt.lm import load_model
    from musicgpt.rendering.insight_plots import SOFTWARE, embeddings_figure, save_png

    model, tok, _ = load_model(model_path)
    g = pitch_geometry(model, tok)
    note = ""
    if g.left_out:
        note = (f"Not drawn: {len(g.left_out)} pitch tokens the model (almost) never read in training "
                f"({_ranges(g.left_out)}); their embeddings collapsed onto one shared vector.")
    title = (f"Pitch embeddings of {model_path.name}: {len(g.names)} pitches, "
             f"{g.names[0]} to {g.names[-1]}")
    fig = embeddings_figure(g.names, g.pitches, g.coords, g.share, g.pc_points, g.pc_share, g.fits,
                            title, note)
    save_png(fig, out, f"{SOFTWARE} embeddings")
    print(f"wrote {out} ({len(g.names)} pitch tokens, {g.names[0]}-{g.names[-1]}; "
          f"{len(g.left_out)} rarely seen in training left out)")
    print(f"  pitch-class means: circle fit in fifths order {g.fits['fifths']:.2f}, in chromatic "
          f"order {g.fits['chromatic']:.2f} (1 = a perfect circle, random points about 0.35)")
    print(f"  their variance by circular frequency: chromatic (k=1) {g.fourier[1]:.2f}, fifths (k=5) "
          f"{g.fourier[5]:.2f}, k=2 {g.fourier[2]:.2f}, k=3 {g.fourier[3]:.2f}, k=4 {g.fourier[4]:.2f}, "
          f"tritone (k=6) {g.fourier[6]:.2f} (even: 0.18 each, 0.09 for k=6)")
    return 0


def _ranges(names: list[str]) -> str:
    """'A0, Bb0, ..., B1, C#2' -> a short list: runs of three or more become 'A0-B1'."""
    from musicgpt.theory import PITCH_CLASSES

    def midi(n: str) -> int:
        pc, octave = n[:-1], int(n[-1])
        return PITCH_CLASSES.index(pc) + 12 * (octave + 1)

    runs: list[list[str]] = []
    for n in names:
        if runs and midi(n) == midi(runs[-1][-1]) + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 2 else ", ".join(r) for r in runs)
