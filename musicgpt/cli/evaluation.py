"""`musicgpt evaluate-continuation`: sampled continuations of test headers against the real ones."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from musicgpt.cli.options import HelpFormatter, add_options, config_from
from musicgpt.config import (
    SHIPPED_CLASSIFIER,
    SHIPPED_MODEL,
    ContinuationEvalConfig,
    SampleConfig,
    shipped,
)
from musicgpt.errors import MusicGPTError

EVAL_OPTIONS = ("pieces", "header_bars", "bars", "samples", "split", "seed", "infer_key", "free")
SAMPLING = ("temperature", "top_k", "top_p")  # as `continue` samples


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate-continuation",
        help="continue test headers and compare with the real continuations, per corpus",
        description="Take the first bars of test pieces as headers, sample a continuation of "
        "each, and compare it with the piece's own next bars: density, in-key rate, pitch-class "
        "distance, voices, silent bars, rhythm (onset patterns), the MIREX cardinality score, "
        "grammar errors, and memorisation (the longest run of bars copied from a train piece). "
        "With --adherence, also ask for each of ionian, dorian, mixolydian and aeolian on "
        "one-voice headers and count the samples that the final-note rule and the classifier "
        "both hear in that mode.", formatter_class=HelpFormatter)
    p.add_argument("--model", type=Path, default=argparse.SUPPRESS,
                   help="checkpoint (default: the shipped model, musicgpt/weights/default.pt)")
    p.add_argument("--corpus", required=True, help="a built corpus, or all (each corpus reported apart)")
    add_options(p, ContinuationEvalConfig, EVAL_OPTIONS)
    add_options(p.add_argument_group("sampling, as in `continue`"), SampleConfig, SAMPLING)
    p.add_argument("--adherence", metavar="CORPUS", help="also measure mode adherence on this "
                   "corpus's one-voice test headers (e.g. folk)")
    p.add_argument("--classifier", type=Path, default=argparse.SUPPRESS,
                   help="the classifier that judges adherence (default: musicgpt/weights/classifier.pt)")
    p.add_argument("--out", type=Path, help="also write the report, every sample included, as JSON here")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_evaluate_continuation)


ROWS = [  # (label, key, format, key of the real continuation's figure or None)
    ("samples", "samples", "{:.0f}", None),
    ("notes per bar", "density", "{:.2f}", "real_density"),
    ("density ratio", "density_ratio", "{:.2f}", None),
    ("in-key rate", "in_key", "{:.3f}", "real_in_key"),
    ("pitch-class distance", "pc_distance", "{:.3f}", None),
    ("voices", "voices", "{:.2f}", "real_voices"),
    ("voices kept", "voices_kept", "{:.2f}", None),
    ("silent bars", "silent_bars", "{:.0f}", "real_silent_bars"),
    ("new bars", "new_bars", "{:.2f}", "bars_asked"),
    ("groove similarity", "groove_similarity", "{:.3f}", None),
    ("groove consistency", "groove_consistency", "{:.3f}", "real_groove_consistency"),
    ("cardinality 2-10 beats", "cardinality_mean", "{:.3f}", None),
    ("grammar errors", "grammar_errors", "{:.0f}", None),
    ("most bars copied", "copied_bars_max", "{:.0f}", None),
    ("samples copying > 4 bars", "copied_over_4", "{:.0f}", None),
    ("seconds per sample", "seconds_median", "{:.2f}", None),
]


def _cell(fmt: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(float(value))


def cmd_evaluate_continuation(args: argparse.Namespace) -> int:
    import torch
    from tqdm import tqdm

    from musicgpt.atomic import write_text_atomic
    from musicgpt.evaluation.continuations import evaluate_continuations, mode_adherence
    from musicgpt.lm import load_model

    cfg = config_from(args, ContinuationEvalConfig, EVAL_OPTIONS)
    scfg = config_from(args, SampleConfig, SAMPLING)
    model_path = getattr(args, "model", None) or shipped(SHIPPED_MODEL)
    if not model_path.exists():
        raise MusicGPTError(f"no model at {model_path}; check the path, or leave out --model "
                            "to use the shipped one")
    if args.out is not None and args.out.suffix.lower() != ".json":
        raise MusicGPTError(f"--out {args.out} should end in .json")
    torch.set_num_threads(1)  # batch-1 sampling: one thread is fastest (docs/benchmarks.md)
    model, tok, _ = load_model(model_path)
    bar = tqdm(desc="continue", unit="sample", disable=args.no_progress, dynamic_ncols=True)
    report = evaluate_continuations(model, tok, args.corpus, cfg, sample_cfg=scfg,
                                    tick=lambda: bar.update(1))
    report.update(model=str(model_path), corpus=args.corpus, config=cfg.__dict__, sample=scfg.__dict__)
    if args.adherence:
        from musicgpt.classifier.classify import load_classifier

        clf_path = getattr(args, "classifier", None) or shipped(SHIPPED_CLASSIFIER)
        report["adherence"] = mode_adherence(model, tok, args.adherence, cfg, load_classifier(clf_path),
                                             sample_cfg=scfg, tick=lambda: bar.update(1))
        report["adherence"]["classifier"] = str(clf_path)
    bar.close()
    if args.out is not None:
        write_text_atomic(args.out, json.dumps(report, indent=2))
        print(f"wrote {args.out}", file=sys.stderr)
    summary = {k: v for k, v in report.items() if k != "samples"}
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    names = [n for n, r in report["corpora"].items() if r.get("samples")]
    print(f"{cfg.header_bars}-bar headers, {cfg.bars} new bars, model {model_path}; "
          "each cell: model (real continuation)")
    print(f"{'':<26}" + "".join(f"{n:>22}" for n in names))
    for label, key, fmt, real in ROWS:
        cells = []
        for n in names:
            r = report["corpora"][n]
            cell = _cell(fmt, r.get(key))
            cells.append(f"{cell} ({_cell(fmt, r.get(real))})" if real else cell)
        print(f"{label:<26}" + "".join(f"{c:>22}" for c in cells))
    if "adherence" in report:
        a = report["adherence"]
        how = "told only (--free)" if cfg.free else "held to the mode's scale, ending on the tonic"
        print(f"mode adherence on {a['headers']} one-voice {args.adherence} headers, {how} "
              "(share both judges hear; rule / classifier alone):")
        for m, v in a["per_mode"].items():
            print(f"  {m:<11} {v['both']:.2f}  ({v['rule']:.2f} / {v['classifier']:.2f})")
        print(f"  mean {a['both_mean']:.2f}; header pairs with identical output for two modes: "
              f"{a['identical_pairs']}")
    return 0
