"""`musicgpt train`, `musicgpt continue` and `musicgpt evaluate`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from musicgpt.cli.options import HelpFormatter, add_options, config_from, whole_number
from musicgpt.config import (
    SHIPPED_MODEL,
    ModelConfig,
    SampleConfig,
    TokenizerConfig,
    TrainConfig,
    lm_train_config,
    shipped,
    to_dict,
)
from musicgpt.errors import MusicGPTError

# the config fields each command sets from its options, in the order --help lists them
MODEL_OPTIONS = ("context", "n_layer", "n_head", "d_model", "dropout", "rope")
TOKENIZER_OPTIONS = ("kind", "bpe_vocab_size", "texture_controls")
TRAIN_OPTIONS = ("steps", "batch_size", "lr", "warmup", "eval_every", "save_every", "eval_batches",
                 "transpose", "control_drop", "windows", "balance", "valid_share", "seed", "device")
SAMPLE_OPTIONS = ("temperature", "top_k", "top_p", "seed")


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
    add_options(p.add_argument_group("model"), ModelConfig, MODEL_OPTIONS)
    add_options(p.add_argument_group("tokenizer"), TokenizerConfig, TOKENIZER_OPTIONS)
    add_options(p.add_argument_group("optimisation"), TrainConfig, TRAIN_OPTIONS)
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    from musicgpt.lm import train_lm

    out = args.out or Path("runs") / args.corpus
    kcfg = config_from(args, TokenizerConfig, TOKENIZER_OPTIONS)
    tcfg = lm_train_config(config_from(args, TrainConfig, TRAIN_OPTIONS), kcfg)
    mcfg = {name: getattr(args, name) for name in MODEL_OPTIONS}  # vocab_size: the tokenizer's
    result = train_lm(args.corpus, out, mcfg, tcfg, kcfg, resume=args.resume,
                      progress=not args.no_progress)
    from musicgpt.distributed import world

    if world()[0] == 0:  # under torchrun, one report
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
    p.add_argument("--bars", type=whole_number(1, "a header needs a bar"),
                   help="use only the first N bars of the prompt as the header")
    p.add_argument("--out", type=Path, default=argparse.SUPPRESS,
                   help="output MIDI, .mid or .midi; a JSON record of the settings goes beside it "
                   "(default: FILE-continued.mid for a file, theme-continued.mid for a note string)")
    p.add_argument("--length", default="4bars",
                   help="how much to add: N or Nbars (bars; the model may not end the piece "
                   "sooner), or Ntokens")
    add_options(p, SampleConfig, SAMPLE_OPTIONS)
    p.add_argument("--samples", type=int, default=1, help="how many continuations to write")
    p.add_argument("--tune", type=int, metavar="N",
                   help="from an ABC tune book, the tune numbered N (its X: field); default: the first")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bar (shown on stderr for 16 bars or more in all)")
    p.add_argument("--force", action="store_true",
                   help="replace files beside --out (its .json, and with --render its .wav, .png and "
                   ".musicxml, with --svg its .svg pages; OUT-1.mid ... with --samples) that an "
                   "earlier continue did not write")
    p.add_argument("--model", type=Path, default=argparse.SUPPRESS,
                   help="checkpoint (default: the shipped model, musicgpt/weights/default.pt)")
    p.add_argument("--style", help="style control token, e.g. chorale (see the model card)")
    p.add_argument("--mode", help="continue in this mode (ionian, dorian, phrygian, lydian, "
                   "mixolydian, aeolian, locrian; major and minor too), on the header's tonic "
                   "unless --key names one")
    p.add_argument("--key", metavar="KEY", help="continue in this key: a tonic (D, F#, Bb; the mode "
                   "then fits the header) or a tonic and mode (\"D dorian\", \"A minor\")")
    p.add_argument("--free", action="store_true",
                   help="with --mode/--key, only tell the model the key (its control tokens) "
                   "instead of also holding the new notes to the key's scale and ending on its "
                   "tonic; without them the header's own key is inferred and told, never held")
    p.add_argument("--voices", type=whole_number(1, "at least one voice"), metavar="N",
                   help="continue in N voices, the header's first (e.g. --voices 4 harmonises a "
                   "one-voice theme; at most 8); default: the header's own voices")
    p.add_argument("--only-continuation", action="store_true", help="write the new notes only")
    p.add_argument("--render", action="store_true",
                   help="also write each output's audio (.wav), piano roll (.png) and score (.musicxml)")
    p.add_argument("--svg", action="store_true", help="also write each output's engraved score "
                   "(.svg, or -1.svg, -2.svg, ... for several pages; needs verovio: pip install -e "
                   "'.[engrave]')")
    p.set_defaults(func=cmd_continue)


KEY_WORDS = {"major": "ionian", "minor": "aeolian"}


def parse_key(key: str | None, mode: str | None) -> tuple[str | None, str | None]:
    """--key and --mode -> (tonic, mode): 'D', 'D dorian', 'A minor', 'Bb major'; the words
    major and minor mean ionian and aeolian."""
    from musicgpt.config import MODES
    from musicgpt.theory import PITCH_CLASSES, pitch_class

    def mode_name(word: str) -> str:
        word = KEY_WORDS.get(word.lower(), word.lower())
        if word not in MODES[:7]:
            raise MusicGPTError(f"unknown mode {word!r}: use one of {', '.join(MODES[:7])}, "
                                "major or minor")
        return word

    mode = mode_name(mode) if mode else None
    if not key:
        return None, mode
    parts = key.split()
    if len(parts) > 2:
        raise MusicGPTError(f"bad --key {key!r}: write a tonic (D, F#, Bb) or a tonic and a mode "
                            "(\"D dorian\")")
    tonic = PITCH_CLASSES[pitch_class(parts[0])]
    if len(parts) == 2:
        named = mode_name(parts[1])
        if mode and named != mode:
            raise MusicGPTError(f"--key {key!r} and --mode {mode} disagree; give the mode once")
        mode = named
    return tonic, mode


def parse_length(text: str) -> tuple[int | None, int]:
    """'8', '8bars' -> (8 bars, token cap); '300tokens' -> (None, 300)."""
    m = re.fullmatch(r"\s*(\d+)\s*(bars?|b|tokens?|t)?\s*", text)
    if not m or int(m.group(1)) < 1:
        raise MusicGPTError(f"bad --length {text!r}: write e.g. 4bars or 256tokens")
    n, unit = int(m.group(1)), (m.group(2) or "bars")
    if unit.startswith("t"):
        if n > MAX_TOKENS:
            raise MusicGPTError(f"--length {text} is more than this command samples: at most "
                                f"{MAX_TOKENS} tokens (a few minutes on a CPU); continue the result again "
                                "for more")
        return None, n
    if n > MAX_BARS:
        raise MusicGPTError(f"--length {text} is more than this command samples: at most {MAX_BARS} bars "
                            "(a few minutes on a CPU); continue the result again for more")
    return n, max(256, 160 * n)  # a cap for runaway bars: dense 4-voice bars take ~100 tokens


MAX_BARS, MAX_TOKENS, MAX_SAMPLES = 128, 20_000, 100  # what one `continue` will do
PROGRESS_FROM_BARS = 16  # bars in all (samples x length) from which `continue` shows progress


def continue_outputs(out: Path, samples: int, render: bool, svg: bool = False) -> list[list[Path]]:
    """Every file `continue` will write, per sample: the MIDI, its JSON record, with `render`
    the WAV, PNG and MusicXML, and with `svg` STEM.svg and the pages of an earlier engraving
    that it may replace (the number of pages is known only once the music is)."""
    from musicgpt.rendering.engrave import existing_pages
    from musicgpt.rendering.outputs import KINDS, output_path

    paths = []
    for k in range(samples):
        mid = out if samples == 1 else out.with_name(f"{out.stem}-{k + 1}{out.suffix}")
        stem = mid.with_suffix("")
        extra = [output_path(stem, kind) for kind in KINDS] if render else []
        if svg:
            extra += sorted({output_path(stem, "svg"), *existing_pages(stem)})
        paths.append([mid, mid.with_suffix(".json"), *extra])
    return paths


def _a_record(path: Path) -> bool:
    """Whether `path` is a JSON record that `continue` wrote."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and {"prompt", "sample", "new_tokens"} <= data.keys()


def check_continue_outputs(paths: list[list[Path]], prompt: str, force: bool = False) -> None:
    """Refuse, before sampling, outputs that would overwrite the prompt or each other, or that
    cannot be written, so a failure never leaves half a set behind; and, unless `force`, files
    the user did not name that an earlier `continue` did not write (a set whose JSON record is
    one of ours is ours to replace)."""
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
    named = paths[0][0] if len(paths) == 1 else None
    foreign = [p for group in paths if not _a_record(group[1]) for p in group
               if p != named and p.exists()]
    if foreign and not force:
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        one = len(foreign) == 1
        raise MusicGPTError(f"{', '.join(map(str, foreign[:3]))}{more} already exist{'s' if one else ''} "
                            f"and no earlier continue wrote {'it' if one else 'them'}; pass --force "
                            f"to replace {'it' if one else 'them'}, or choose another --out")


def cmd_continue(args: argparse.Namespace) -> int:
    import torch

    from musicgpt.atomic import write_text_atomic
    from musicgpt.continuation import FINAL_TRIES, continue_score, load_prompt
    from musicgpt.lm import load_model
    from musicgpt.scores import MIDI_SUFFIXES, unreadable_notes, write_midi

    model_path = getattr(args, "model", None) or shipped(SHIPPED_MODEL)
    if not model_path.exists():
        raise MusicGPTError(f"no model at {model_path}; check the path, or leave out "
                            "--model to use the shipped one (scripts/train_default.sh makes it)")
    if not 1 <= args.samples <= MAX_SAMPLES:
        raise MusicGPTError(f"--samples must be 1 to {MAX_SAMPLES}, not {args.samples}")
    out = getattr(args, "out", None) or Path(_default_stem(args.prompt) + "-continued.mid")
    if out.suffix.lower() not in MIDI_SUFFIXES:
        raise MusicGPTError(f"--out {out} is not a MIDI file name; end it in .mid or .midi "
                            "(the JSON record and any rendered files go beside it)")
    outputs = continue_outputs(out, args.samples, args.render, args.svg)
    check_continue_outputs(outputs, args.prompt, force=args.force)
    if args.svg:  # before minutes of sampling, not after
        from musicgpt.rendering.engrave import require_verovio

        require_verovio()
    # batch-1 sampling is a chain of tiny matmuls: one thread is several times faster than two
    # (docs/benchmarks.md)
    torch.set_num_threads(1)
    bars, max_tokens = parse_length(args.length)
    prompt = load_prompt(args.prompt, args.bars, args.tune)
    outside, total = unreadable_notes(prompt)
    if outside == total:
        raise MusicGPTError(f"every note of {args.prompt} lies outside A0-C8 (MIDI 21-108), the range "
                            "the model reads; transpose it into that range")
    if outside:
        print(f"musicgpt: note: {outside} of the prompt's {total} notes lie outside A0-C8 (MIDI "
              "21-108) and are left out of what the model reads", file=sys.stderr)
    model, tok, meta = load_model(model_path)
    scfg = config_from(args, SampleConfig, SAMPLE_OPTIONS, max_new_tokens=max_tokens)
    gen = torch.Generator().manual_seed(args.seed)
    tonic, mode = parse_key(args.key, args.mode)
    done: list[Path] = []  # what this run has written, to name if a later sample fails
    # a progress bar with an ETA for long work (16 bars or more in all), counted in bar lines
    total_bars = (bars + 1) * args.samples if bars is not None else 0
    from tqdm import tqdm

    progress = tqdm(total=total_bars, unit="bar", desc="continue", leave=False,
                    disable=total_bars < PROGRESS_FROM_BARS or args.no_progress)

    def tick() -> None:  # a redrawn last bar is not counted twice
        if progress.n < progress.total:
            progress.update(1)

    try:
        for k in range(args.samples):
            result = continue_score(model, tok, prompt, sample_cfg=scfg, bars=bars, style=args.style,
                                    mode=mode, voices=args.voices, tonic=tonic,
                                    keep_key=not args.free, generator=gen, on_bar=tick)
            path = outputs[k][0]
            written = result.continuation if args.only_continuation else result.score
            record = {"prompt": args.prompt, "bars": args.bars, "length": args.length,
                      "model": str(model_path), "style": args.style, "mode": args.mode,
                      "voices": args.voices, "key": args.key, "free": args.free,
                      "key_used": result.key_name or None, "key_source": result.key_source or None,
                      "key_kept": result.key_kept, "final_on_tonic": result.final_on_tonic,
                      "sample": to_dict(scfg), "sample_index": k, "prompt_tokens": result.prompt_tokens,
                      "new_tokens": result.new_tokens, "new_bars": result.new_bars,
                      "grammar_error_rate": result.error_rate, "notes_written": written.note_num(),
                      "new_notes": result.continuation.note_num()}
            write_midi(written, path)
            done.append(path)
            write_text_atomic(outputs[k][1], json.dumps(record, indent=2))
            done.append(outputs[k][1])
            made = "" if result.new_bars is None else f"{result.new_bars} new bars, "
            print(f"wrote {path} ({made}{result.new_tokens} new tokens, "
                  f"{result.continuation.note_num()} new notes, grammar errors {result.error_rate:.3f})")
            if k == 0 and result.key:
                how = ("held to its scale, ending on its tonic" if result.key_kept
                       else "told to the model, not held")
                print(f"  key: {result.key_name} ({result.key_source}; {how})")
            if result.final_on_tonic is False:
                print(f"musicgpt: note: sample {k + 1} does not end on {result.key[0]} "
                      f"({FINAL_TRIES} tries of its last bar)", file=sys.stderr)
            if bars is not None and result.new_bars is not None and result.new_bars < bars:
                print(f"musicgpt: note: only {result.new_bars} of the {bars} bars asked for: sampling "
                      f"stopped at its cap of {max_tokens} tokens", file=sys.stderr)
            if args.render or args.svg:
                from musicgpt.cli.render import render_outputs
                from musicgpt.config import SAMPLE_RATE
                from musicgpt.rendering.outputs import KINDS

                # the piano roll marks where the header ends and the model's notes begin, and
                # draws the header's notes pale
                starts = [n.time for t in result.continuation.tracks for n in t.notes]
                begin = None if args.only_continuation or not starts else min(starts)
                kinds = (KINDS if args.render else ()) + (("svg",) if args.svg else ())
                for line in render_outputs(written, path.with_suffix(""), kinds, SAMPLE_RATE,
                                           marks=() if begin is None else (begin,), header_end=begin):
                    print(line)
    except (MusicGPTError, OSError):
        progress.close()
        if done:
            print(f"musicgpt: note: written before the failure (kept): {', '.join(map(str, done))}",
                  file=sys.stderr)
        raise
    progress.close()
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
    p.add_argument("--model", type=Path, default=argparse.SUPPRESS,
                   help="checkpoint to score (default: the shipped model, musicgpt/weights/default.pt)")
    p.add_argument("--corpus", required=True, help="a built corpus (see `musicgpt corpus list`)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from musicgpt.evaluation.lm import evaluate_lm

    model = getattr(args, "model", None) or shipped(SHIPPED_MODEL)
    if not model.exists():
        raise MusicGPTError(f"no model at {model}; check the path, or leave out --model "
                            "to use the shipped one")
    r = evaluate_lm(model, args.corpus)
    if args.json:
        print(json.dumps(r, indent=2))
        return 0
    print(f"{args.corpus} test split, {r['test_pieces']} pieces, model {model}")
    print(f"{'model':<14}{'bits/token':>12}{'bits/note':>12}{'accuracy':>10}")
    rows = [("transformer", r["transformer"])]
    if "transformer_no_controls" in r:
        rows.append(("  no controls", r["transformer_no_controls"]))
    rows += list(r["ngram"].items())
    for name, m in rows:
        print(f"{name:<14}{m['bits_per_token']:>12.3f}{m['bits_per_note']:>12.3f}{m['accuracy']:>10.3f}")
    if "kneser_ney" in r:
        kn = r["kneser_ney"]
        print(f"{'KN ' + str(kn['order']) + '-gram':<14}{kn['bits_per_token']:>12.3f}"
              f"{kn['bits_per_note']:>12.3f}{'-':>10}")
    print(f"transformer / best n-gram ({r['best_ngram']}) bits/note: {r['ratio_to_best_ngram']:.3f}")
    if "kneser_ney" in r:
        print(f"transformer / Kneser-Ney bits/note: {r['ratio_to_kneser_ney']:.3f}")
    return 0
