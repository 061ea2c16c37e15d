"""`musicgpt classify`, `musicgpt evaluate-classifier` and `musicgpt train-classifier`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from musicgpt.cli.options import HelpFormatter, add_options, config_from, probability, whole_number
from musicgpt.config import SHIPPED_CLASSIFIER, UNSURE_BELOW, ClassifierTrainConfig, shipped
from musicgpt.errors import MusicGPTError

DEFAULT_MODEL = shipped(SHIPPED_CLASSIFIER)
BARS = dict(type=whole_number(1, "a bar at least"), help="look only at the first N bars")
# the config fields train-classifier sets from its options, in the order --help lists them
TRAIN_OPTIONS = ("freeze", "keep_style_head", "key_style_input", "style_balance", "scratch", "steps",
                 "probe_passes", "probe_per_style", "probe_iters", "batch_size", "lr", "head_lr",
                 "window", "transpose", "derived_mode_weight", "seed", "device")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify", help="style, mode and key of score files, with probabilities",
        description="Predict the style, the mode, the tonic and tonic + mode of each file "
        "(.mid .midi .xml .mxl .musicxml .krn .abc). A file that cannot be read is reported and "
        "the others are still classified; the exit status is then non-zero.",
        formatter_class=HelpFormatter)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                   help="checkpoint with heads (default: the shipped classifier)")
    p.add_argument("--bars", **BARS)
    p.add_argument("--tune", type=int, metavar="N",
                   help="from an ABC tune book, the tune numbered N (its X: field); default: the first")
    p.add_argument("--top", type=whole_number(1, "at least one label is shown"), default=3, metavar="N",
                   help="labels shown per question (style, mode, tonic, tonic+mode), at least 1")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--unsure-below", type=probability, default=UNSURE_BELOW, metavar="P",
                   help="answer \"unsure\" to a question whose best calibrated probability is below P "
                   "(0 always answers)")
    p.add_argument("--explain", action="store_true",
                   help="also show the evidence for the mode: how much of the music is on the minor or "
                   "major third, sixth and seventh of the tonic, the finals, and three rules' answers")
    p.add_argument("--together", action="store_true",
                   help="the files are parts of one work (the sections of a mass): also give one "
                   "answer for the whole work, from all of them")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser(
        "evaluate-classifier", help="classification accuracy on a corpus's test split",
        description="Style accuracy, macro-F1 and confusion; mode, tonic and tonic+mode accuracy "
        "(all and human-labelled pieces); calibration error.",
        formatter_class=HelpFormatter)
    p.add_argument("--corpus", required=True, help="a built corpus (see `musicgpt corpus list`)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                   help="checkpoint with heads (default: the shipped classifier)")
    p.add_argument("--bars", **BARS)
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--device", default="auto", help="auto (a GPU when present), cpu or cuda")
    p.add_argument("--confusion", type=Path, metavar="PNG",
                   help="also draw the style and mode confusion matrices into this PNG")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser(
        "train-classifier", help="fine-tune style and key heads from a language-model checkpoint",
        description="Train the style head and the (tonic, mode) head on the pooled hidden states "
        "of a pre-trained LM, on a corpus's train split; fit calibration temperatures on held-out "
        "train groups; evaluate on the test split. With --freeze the body reads whole pieces "
        "(--passes, --per-style) and the heads are fitted on its cached features (--probe-iters); "
        "with --unfreeze or --scratch, --steps batches of crops train body and heads together. "
        "Writes OUT/classifier.pt (self-contained: "
        "weights, heads, tokenizer, labels, temperatures) and OUT/metrics.json.",
        formatter_class=HelpFormatter)
    p.add_argument("--init", type=Path, required=True, help="language-model checkpoint")
    p.add_argument("--corpus", default="all",
                   help="a built corpus (see `musicgpt corpus list`); all: the named corpora together")
    p.add_argument("--out", type=Path, required=True,
                   help="output folder for classifier.pt, metrics.json and config.json")
    add_options(p, ClassifierTrainConfig, TRAIN_OPTIONS)
    p.add_argument("--half", action="store_true", help="store fp16 weights (for shipping)")
    p.add_argument("--no-eval", action="store_true", help="skip the test-split evaluation")
    p.set_defaults(func=cmd_train)


def cmd_classify(args: argparse.Namespace) -> int:
    import numpy as np

    from musicgpt.classifier.classify import combine, describe, load_classifier
    from musicgpt.scores import first_bars, load_score

    if not args.model.exists():
        raise MusicGPTError(f"no model at {args.model}; check the path, or leave out "
                            "--model to use the shipped classifier")
    clf = load_classifier(args.model)
    results: list[dict] = []
    encoded: list[tuple[int, np.ndarray]] = []  # (index in results, token ids) of readable files
    scores: dict[int, object] = {}  # for --explain
    for name in args.files:
        try:
            score = load_score(name, args.tune)
            encoded.append((len(results), clf.encode(score, args.bars)))
            scores[len(results)] = first_bars(score, args.bars) if args.bars else score
            results.append({"file": name})
        except MusicGPTError as exc:
            msg = str(exc) if str(name) in str(exc) else f"{name}: {exc}"
            print(f"musicgpt: error: {msg}", file=sys.stderr)
            results.append({"file": name, "error": msg})
    work = None
    if encoded:
        ps, pk = clf.probabilities([ids for _, ids in encoded])  # one batched pass over all files
        for (i, _), p_style, p_key in zip(encoded, ps, pk):
            results[i].update(describe(p_style, p_key, clf.styles, args.top, args.unsure_below))
            if args.explain:
                from musicgpt.classifier.explain import mode_evidence

                results[i]["explain"] = mode_evidence(scores[i], results[i]["tonic"][0][0])
        if args.together:
            work = {"files": [results[i]["file"] for i, _ in encoded],
                    **describe(combine(ps), combine(pk), clf.styles, args.top, args.unsure_below)}
    if args.json:
        print(json.dumps({"files": results, "work": work} if args.together else results, indent=2))
    else:
        for r in results:
            if "error" not in r:
                print(_text(r["file"], r))
                if "explain" in r:
                    from musicgpt.classifier.explain import explain_lines

                    print("\n".join(explain_lines(r["explain"])))
        if work is not None:
            print(_text(f"all {len(work['files'])} readable files as one work", work))
    return 1 if any("error" in r for r in results) else 0


def _text(name: str, r: dict) -> str:
    a = r["answer"]
    style = "style unsure" if a["style"] == "unsure" else a["style"]
    key = "key unsure" if a["key"] == "unsure" else a["key"]
    lines = [f"{name}: {style}, {key}"]
    for key, title in (("style", "style"), ("mode", "mode"), ("tonic", "tonic"), ("key", "tonic+mode")):
        lines.append(f"  {title:<11}" + "   ".join(f"{lab} {p:.2f}" for lab, p in r[key]))
    return "\n".join(lines)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from musicgpt.classifier.classify import load_classifier
    from musicgpt.classifier.data import corpus_data
    from musicgpt.classifier.evaluation import evaluate

    if not args.model.exists():
        raise MusicGPTError(f"no model at {args.model}; check the path, or leave out --model "
                            "to use the shipped one")
    if args.confusion is not None:  # before the evaluation, not after
        from musicgpt.atomic import check_writable

        if args.confusion.suffix.lower() != ".png":
            raise MusicGPTError(f"--confusion {args.confusion} should end in .png")
        check_writable([args.confusion])
    import torch

    from musicgpt.trainer import resolve_device

    device = resolve_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MusicGPTError("--device cuda: no CUDA device is available; use --device cpu")
    clf = load_classifier(args.model, device=str(device))
    _, test, _ = corpus_data(clf.tok, args.corpus, clf.styles)
    r = {"model": str(args.model), "corpus": args.corpus, "device": str(device),
         **evaluate(clf, test, args.bars, progress=not args.no_progress)}
    print(json.dumps(r, indent=2) if args.json else summary(r))
    if args.confusion is not None:
        from musicgpt.config import MODES
        from musicgpt.rendering.charts import write_confusion

        drawn = [("style", r["style"]["labels"], r["style"]["confusion"])] if "style" in r else []
        if "all" in r["key"]:
            drawn.append(("mode", list(MODES), r["key"]["all"]["mode_confusion"]))
        if not drawn:
            raise MusicGPTError(f"{args.corpus}'s test pieces have no style or mode labels: "
                                "no confusion matrix to draw")
        write_confusion(args.confusion, drawn)
        print(f"wrote {args.confusion}", file=sys.stderr)
    return 0


def summary(r: dict) -> str:
    """A few lines a person reads; --json has everything."""
    lines = [f"{r.get('corpus', '')} test split: {r['pieces']} pieces, bars {r['bars']}, "
             f"{1000 * r['seconds_per_piece']:.0f} ms/piece"
             + (f" on {r['device']}" if "device" in r else "")]
    if "style" in r:
        s = r["style"]
        lines.append(f"style       accuracy {s['accuracy']:.3f}  macro-F1 {s['macro_f1']:.3f}  "
                     f"ECE {s['ece']:.3f}")
    for name, k in r["key"].items():
        if name == "human_work":
            lines.append(f"key (human, per work: a mass is one work) {k['works']} works  "
                         f"mode {k['mode_accuracy']:.3f}  tonic+mode {k['key_accuracy']:.3f}")
            continue
        lines.append(f"key ({name:<5}) {k['pieces']:>5} pieces  mode {k['mode_accuracy']:.3f}  "
                     f"tonic {k['tonic_accuracy']:.3f}  tonic+mode {k['key_accuracy']:.3f}  "
                     f"ECE {k['key_ece']:.3f}")
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses
    import logging

    from musicgpt.atomic import write_text_atomic
    from musicgpt.classifier.classify import save_classifier
    from musicgpt.classifier.evaluation import evaluate
    from musicgpt.classifier.training import train_classifier

    cfg = config_from(args, ClassifierTrainConfig, TRAIN_OPTIONS)
    log = logging.getLogger("musicgpt.train-classifier")
    clf, test = train_classifier(args.init, args.corpus, cfg,
                                 on_log=lambda r: print(json.dumps(r), file=sys.stderr))
    args.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out / "config.json", json.dumps(dataclasses.asdict(cfg), indent=2))
    result = {"init": str(args.init), "corpus": args.corpus, "config": dataclasses.asdict(cfg),
              "temperature": clf.temperature}
    if not args.no_eval:
        result["test"] = evaluate(clf, test)
        clf.meta["classifier_metrics"] = {"corpus": args.corpus,
                                          "style": result["test"].get("style", {}).get("macro_f1"),
                                          "key": result["test"]["key"]}
        log.info("%s", summary({"corpus": args.corpus, **result["test"]}))
    save_classifier(args.out / "classifier.pt", clf, half=args.half)
    write_text_atomic(args.out / "metrics.json", json.dumps(result, indent=2))
    if "test" in result:
        print(summary({"corpus": args.corpus, **result["test"]}))
    print(f"wrote {args.out / 'classifier.pt'}", file=sys.stderr)
    return 0
