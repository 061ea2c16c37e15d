"""`musicgpt train`, `musicgpt continue` and `musicgpt evaluate`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from musicgpt.config import ModelConfig, SampleConfig, TokenizerConfig, TrainConfig, to_dict
from musicgpt.cli import HelpFormatter, whole_number
from musicgpt.errors import MusicGPTError

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "weights" / "default.pt"
_DEFAULTS_T, _DEFAULTS_M = TrainConfig(), ModelConfig(vocab_size=0)


def register(sub: argparse._SubParsersAction) -> None:
    _register_train(sub)
    _register_continue(sub)
    _register_evaluate(sub)


# ---- train ---------------------------------------------------------------------------------
def _register_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train", help="train a language model on a built corpus",
        description="Train a causal transformer on the train split of a corpus, evaluating on its "
        "test split. Writes best.pt, last.pt, metrics.jsonl and config.json to --out.",
        formatter_class=HelpFormatter)
    p.add_argument("--corpus", required=True, help="a built corpus (see `musicgpt corpus list`)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/CORPUS)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = p.add_argument_group("model")
    g.add_argument("--context", type=int, default=_DEFAULTS_M.context, help="tokens of context")
    g.add_argument("--layers", type=int, default=_DEFAULTS_M.n_layer, help="transformer blocks")
    g.add_argument("--heads", type=int, default=_DEFAULTS_M.n_head,
                   help="attention heads per block; must divide --d-model")
    g.add_argument("--d-model", type=int, default=_DEFAULTS_M.d_model, help="width of the hidden states")
    g.add_argument("--dropout", type=float, default=_DEFAULTS_M.dropout, help="dropout rate in training")
    g = p.add_argument_group("tokenizer")
    g.add_argument("--tokenizer", choices=["REMI", "TSD"], default="REMI",
                   help="MidiTok token scheme; continuation by bars needs REMI")
    g.add_argument("--bpe", type=int, default=0, metavar="VOCAB",
                   help="learn MidiTok BPE up to this vocabulary size (0, the default: off; turns off "
                   "transposition)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--steps", type=int, default=_DEFAULTS_T.steps, help="optimiser steps in all")
    g.add_argument("--batch-size", type=int, default=_DEFAULTS_T.batch_size,
                   help="windows of --context tokens per step")
    g.add_argument("--lr", type=float, default=_DEFAULTS_T.lr,
                   help="peak learning rate (AdamW), reached after --warmup steps, then cosine decay")
    g.add_argument("--warmup", type=int, default=_DEFAULTS_T.warmup, help="steps of linear warmup")
    g.add_argument("--eval-every", type=int, default=_DEFAULTS_T.eval_every,
                   help="steps between test-split evaluations (each keeps best.pt if it is the best)")
    g.add_argument("--eval-batches", type=int, default=_DEFAULTS_T.eval_batches,
                   help="test batches read per evaluation")
    g.add_argument("--transpose", type=int, default=_DEFAULTS_T.transpose,
                   help="random transposition up to this many semitones, kept within each voice's range")
    g.add_argument("--control-drop", type=float, default=_DEFAULTS_T.control_drop,
                   help="chance of dropping each style/mode control token")
    g.add_argument("--seed", type=int, default=_DEFAULTS_T.seed, help="random seed (weights, batches)")
    g.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from musicgpt.lm import train_lm

    out = args.out or Path("runs") / args.corpus
    tcfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                       min_lr=args.lr / 10, warmup=args.warmup, eval_every=args.eval_every,
                       eval_batches=args.eval_batches, seed=args.seed, device=args.device,
                       transpose=0 if args.bpe else args.transpose, control_drop=args.control_drop)
    kcfg = TokenizerConfig(kind=args.tokenizer, bpe_vocab_size=args.bpe)
    mcfg = dict(context=args.context, n_layer=args.layers, n_head=args.heads,
                d_model=args.d_model, dropout=args.dropout)
    result = train_lm(args.corpus, out, mcfg, tcfg, kcfg, resume=args.resume,
                      progress=not args.no_progress)
    print(json.dumps(result, indent=2, default=str))
    print(f"best checkpoint: {out / 'best.pt'}", file=sys.stderr)
    return 0


# ---- continue ------------------------------------------------------------------------------
def _register_continue(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "continue", help="continue a theme (a score file or a note string) and write MIDI",
        description="Continue a thematic header. PROMPT is a file (.mid .midi .xml .mxl "
        ".musicxml .krn .abc) or a note string such as \"C4 D4 E4 F4 G4:h\" (letter, #/b, octave, "
        "optional :duration w h q e s t or quarter notes; durations stay in force until changed; "
        "C4+E4 is a chord, R a rest, a leading 3/4 sets the meter). The output MIDI holds the "
        "header's notes unchanged, then the continuation.",
        formatter_class=HelpFormatter)
    p.add_argument("prompt", help="score file or note string")
    p.add_argument("--bars", type=int, help="use only the first N bars of the prompt as the header")
    p.add_argument("--out", type=Path, default=argparse.SUPPRESS,
                   help="output MIDI, .mid or .midi; a JSON record of the settings goes beside it "
                   "(default: FILE-continued.mid for a file, theme-continued.mid for a note string)")
    p.add_argument("--length", default="4bars",
                   help="how much to add: N or Nbars (bars; the model may not end the piece "
                   "sooner), or Ntokens")
    p.add_argument("--temperature", type=_temperature, default=SampleConfig.temperature,
                   help="sampling temperature, 0 or more; 0 picks the most likely token")
    p.add_argument("--top-k", type=whole_number(0, "0 turns it off"), default=SampleConfig.top_k,
                   help="sample only from the K likeliest tokens; 0: off")
    p.add_argument("--top-p", type=_top_p, default=SampleConfig.top_p,
                   help="sample only from the likeliest tokens that together hold this share of "
                   "the probability, above 0 and at most 1; 1.0: off")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed repeats the result")
    p.add_argument("--samples", type=int, default=1, help="how many continuations to write")
    p.add_argument("--model", type=Path, default=argparse.SUPPRESS,
                   help="checkpoint (default: the shipped model, musicgpt/weights/default.pt)")
    p.add_argument("--style", help="style control token, e.g. chorale (see the model card)")
    p.add_argument("--mode", help="mode control token: ionian, dorian, ..., aeolian")
    p.add_argument("--only-continuation", action="store_true", help="write the new notes only")
    p.add_argument("--render", action="store_true",
                   help="also write each output's audio (.wav), piano roll (.png) and score (.musicxml)")
    p.set_defaults(func=cmd_continue)


def parse_length(text: str) -> tuple[int | None, int]:
    """'8', '8bars' -> (8 bars, token cap); '300tokens' -> (None, 300)."""
    m = re.fullmatch(r"\s*(\d+)\s*(bars?|b|tokens?|t)?\s*", text)
    if not m or int(m.group(1)) < 1:
        raise MusicGPTError(f"bad --length {text!r}: write e.g. 4bars or 256tokens")
    n, unit = int(m.group(1)), (m.group(2) or "bars")
    if unit.startswith("t"):
        return None, n
    return n, max(256, 160 * n)  # a cap for runaway bars: dense 4-voice bars take ~100 tokens


def _temperature(text: str) -> float:
    value = _finite(text)
    if not value >= 0:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text} is not 0 or more (0 picks the likeliest token)")
    return value


def _top_p(text: str) -> float:
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not above 0 and at most 1 (1.0 turns it off)")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def continue_outputs(out: Path, samples: int, render: bool) -> list[list[Path]]:
    """Every file `continue` will write, per sample: the MIDI, its JSON record, and with
    `render` the WAV, PNG and MusicXML."""
    from musicgpt.render.outputs import KINDS, output_path

    paths = []
    for k in range(samples):
        mid = out if samples == 1 else out.with_name(f"{out.stem}-{k + 1}{out.suffix}")
        extra = [output_path(mid.with_suffix(""), kind) for kind in KINDS] if render else []
        paths.append([mid, mid.with_suffix(".json"), *extra])
    return paths


def check_continue_outputs(paths: list[list[Path]], prompt: str) -> None:
    """Refuse, before sampling, outputs that would overwrite the prompt or each other, or that
    cannot be written, so a failure never leaves half a set behind."""
    from musicgpt.atomic import check_writable

    flat = [p for group in paths for p in group]
    source = Path(prompt).expanduser()
    try:
        is_file = source.is_file()
    except OSError:  # a note string too long to be a file name
        is_file = False
    if is_file:
        for p in flat:
            if p.exists() and p.resolve() == source.resolve():
                raise MusicGPTError(f"writing {p} would overwrite the prompt; choose another --out")
    seen: set[Path] = set()
    for p in flat:
        key = p.resolve() if p.parent.exists() else p.absolute()
        if key in seen:
            raise MusicGPTError(f"two outputs would both be {p}; choose another --out")
        seen.add(key)
    check_writable(flat)


def cmd_continue(args: argparse.Namespace) -> int:
    import torch

    from musicgpt.atomic import write_text_atomic
    from musicgpt.continuation import continue_score, load_prompt
    from musicgpt.lm import load_model
    from musicgpt.scores import MIDI_SUFFIXES, write_midi

    model_path = getattr(args, "model", DEFAULT_MODEL)
    if not model_path.exists():
        raise MusicGPTError(f"no model at {model_path}; train one (scripts/train_default.sh) "
                            "or pass --model PATH")
    if args.samples < 1:
        raise MusicGPTError("--samples must be at least 1")
    out = getattr(args, "out", None) or Path(_default_stem(args.prompt) + "-continued.mid")
    if out.suffix.lower() not in MIDI_SUFFIXES:
        raise MusicGPTError(f"--out {out} is not a MIDI file name; end it in .mid or .midi "
                            "(the JSON record and any rendered files go beside it)")
    outputs = continue_outputs(out, args.samples, args.render)
    check_continue_outputs(outputs, args.prompt)
    # batch-1 sampling is a chain of tiny matmuls: one thread is several times faster than two
    # (docs/benchmarks.md)
    torch.set_num_threads(1)
    bars, max_tokens = parse_length(args.length)
    prompt = load_prompt(args.prompt, args.bars)
    model, tok, meta = load_model(model_path)
    scfg = SampleConfig(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                        max_new_tokens=max_tokens, seed=args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    for k in range(args.samples):
        result = continue_score(model, tok, prompt, sample_cfg=scfg, bars=bars, style=args.style,
                                mode=args.mode, generator=gen)
        path = outputs[k][0]
        written = result.continuation if args.only_continuation else result.score
        record = {"prompt": args.prompt, "bars": args.bars, "length": args.length,
                  "model": str(model_path), "style": args.style, "mode": args.mode,
                  "sample": to_dict(scfg), "sample_index": k, "prompt_tokens": result.prompt_tokens,
                  "new_tokens": result.new_tokens, "new_bars": result.new_bars,
                  "grammar_error_rate": result.error_rate, "notes_written": written.note_num()}
        write_midi(written, path)
        write_text_atomic(outputs[k][1], json.dumps(record, indent=2))
        made = "" if result.new_bars is None else f"{result.new_bars} new bars, "
        print(f"wrote {path} ({made}{result.new_tokens} new tokens, "
              f"{result.continuation.note_num()} new notes, grammar errors {result.error_rate:.3f})")
        if bars is not None and result.new_bars is not None and result.new_bars < bars:
            print(f"musicgpt: note: only {result.new_bars} of the {bars} bars asked for: sampling "
                  f"stopped at its cap of {max_tokens} tokens", file=sys.stderr)
        if args.render:
            from musicgpt.cli.render import render_outputs
            from musicgpt.render.outputs import KINDS, SAMPLE_RATE

            # the piano roll marks where the header ends and the model's notes begin
            starts = [n.time for t in result.continuation.tracks for n in t.notes]
            marks = () if args.only_continuation or not starts else (min(starts),)
            for line in render_outputs(written, path.with_suffix(""), KINDS, SAMPLE_RATE, marks=marks):
                print(line)
    return 0


def _default_stem(prompt: str) -> str:
    """The prompt file's name without its suffix, or "theme" for a note string."""
    from musicgpt.scores import SCORE_SUFFIXES

    path = Path(prompt).expanduser()
    return path.stem if path.suffix.lower() in SCORE_SUFFIXES else "theme"


# ---- evaluate ------------------------------------------------------------------------------
def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="bits/token, bits/note and accuracy on a corpus's test split, beside n-grams",
        description="Score a language model on the test split of a built corpus, and n-gram "
        "baselines trained on the train split of the same tokens.")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                   help="checkpoint to score (default: the shipped model, musicgpt/weights/default.pt)")
    p.add_argument("--corpus", required=True, help="a built corpus (see `musicgpt corpus list`)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from musicgpt.lm import evaluate_lm

    if not args.model.exists():
        raise MusicGPTError(f"no model at {args.model}; pass --model PATH")
    r = evaluate_lm(args.model, args.corpus)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{args.corpus} test split, {r['test_pieces']} pieces, model {args.model}")
    print(f"{'model':<14}{'bits/token':>12}{'bits/note':>12}{'accuracy':>10}")
    rows = [("transformer", r["transformer"])] + list(r["ngram"].items())
    for name, m in rows:
        print(f"{name:<14}{m['bits_per_token']:>12.3f}{m['bits_per_note']:>12.3f}{m['accuracy']:>10.3f}")
    print(f"transformer / best n-gram ({r['best_ngram']}) bits/note: {r['ratio_to_best_ngram']:.3f}")
    return 0
