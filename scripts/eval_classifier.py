"""The classification report: baselines and fine-tuned heads on one corpus's test split.

    python scripts/eval_classifier.py --corpus all --lm runs/all/best.pt --steps 400 \
        --out docs/classification-all.json > docs/classification-all.md

Prints Markdown tables; writes every figure (confusion matrices included) as JSON to --out.
Without --lm only the baselines run. Key baselines are fitted with the same label weights as
the heads (human 1, derived --derived-weight).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import symusic

from musicgpt import corpus as corpora
from musicgpt.classifier.classify import load_classifier, save_classifier
from musicgpt.classifier.data import Labelled, corpus_data, hold_out
from musicgpt.classifier.evaluation import evaluate, key_metrics
from musicgpt.classifier.training import train_classifier
from musicgpt.config import MODES, ClassifierTrainConfig
from musicgpt.data.splits import split_rows
from musicgpt.evaluation import baselines as bl
from musicgpt.evaluation.metrics import accuracy, confusion, expected_calibration_error, macro_f1
from musicgpt.lm import load_model
from musicgpt.tokens.tokenizer import MusicTokenizer

BARS = (4, 8, 16, None)


def features(rows: list[dict], corpus: str, bars: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(profiles (N, 4, 12), stats (N, 10)) of the first `bars` bars of each row's MIDI."""
    from musicgpt.scores import first_bars

    prof, stats = [], []
    for r in rows:
        s = symusic.Score(str(corpora.midi_path(corpus, r)))
        if bars is not None:
            try:
                s = first_bars(s, bars)
            except Exception:  # no notes in the first bars: keep the whole piece
                pass
        prof.append(bl.pitch_profiles(s))
        stats.append(bl.style_stats(s))
    return np.stack(prof), np.stack(stats)


def labels(tok: MusicTokenizer, corpus: str, rows: dict, styles: list[str]) -> tuple[Labelled, Labelled]:
    """(train, test) labels of ROWS' pieces, read as the heads read them: through the token sets.

    ROWS' lists are narrowed in place to the pieces the token sets hold (an empty piece is not
    encoded), so the features computed from them line up with the labels.
    """
    train, test, _ = corpus_data(tok, corpus, styles)
    wanted = {r["id"] for r in rows["test"]}
    test = test.subset([i for i, p in enumerate(test.piece_ids) if p in wanted])
    for split, lab in (("train", train), ("test", test)):
        byid = {r["id"]: r for r in rows[split]}
        rows[split] = [byid[p] for p in lab.piece_ids]
    return train, test


def onehot_key(tonic: np.ndarray, mode: np.ndarray) -> np.ndarray:
    pk = np.full((len(tonic), 12, len(MODES)), 1e-9)
    pk[np.arange(len(tonic)), tonic, mode] = 1.0
    return pk / pk.sum(axis=(1, 2), keepdims=True)


def baselines(tok: MusicTokenizer, corpus: str, rows: dict, styles: list[str], w_derived: float,
              bars: int | None, m21_limit: int) -> dict:
    tr, te = labels(tok, corpus, rows, styles)
    # fitted on the same number of bars they are tested on: a cut piece's last note is no final
    ptr, str_ = features(rows["train"], corpus, bars)
    pte, ste = features(rows["test"], corpus, bars)
    ok = (tr.mode >= 0) & (tr.tonic >= 0)
    w = np.where(tr.human_mode, 1.0, w_derived)[ok]
    out: dict = {}
    # majority: the most common (tonic, mode) and style of the train split
    keys = tr.tonic[ok] * len(MODES) + tr.mode[ok]
    top = np.bincount(keys, minlength=96).argmax()
    majority_key = onehot_key(np.full(len(te), top // 8), np.full(len(te), top % 8))
    out["majority"] = {"key": key_metrics(majority_key, te)}
    sv = te.style >= 0
    maj_style = np.bincount(tr.style[tr.style >= 0], minlength=len(styles)).argmax()
    out["majority"]["style"] = {"accuracy": accuracy(te.style[sv], np.full(sv.sum(), maj_style)),
                                "macro_f1": macro_f1(te.style[sv], np.full(sv.sum(), maj_style), len(styles))}
    t, m = bl.final_scale_rule(pte)
    out["final note + scale"] = {"key": key_metrics(onehot_key(t, m), te)}
    for name, channels in (("pc histogram LR", ("hist",)), ("pc profiles LR", None)):
        lr = bl.KeyLR(**({"channels": channels} if channels else {}))
        lr.fit(ptr[ok], tr.tonic[ok], tr.mode[ok], w)
        out[name] = {"key": key_metrics(lr.predict_proba(pte), te)}
    # style from pitch profiles rotated to the profile LR's tonic, plus texture statistics
    t_tr = lr.predict_proba(ptr).sum(2).argmax(1)
    t_te = lr.predict_proba(pte).sum(2).argmax(1)
    svt = tr.style >= 0
    slr = bl.SoftmaxLR(len(styles)).fit(bl.style_features(ptr, str_, t_tr)[svt], tr.style[svt])
    ps = slr.predict_proba(bl.style_features(pte, ste, t_te))[sv]
    pred = ps.argmax(1)
    out["pc profiles LR"]["style"] = {
        "accuracy": accuracy(te.style[sv], pred), "macro_f1": macro_f1(te.style[sv], pred, len(styles)),
        "confusion": confusion(te.style[sv], pred, len(styles)).tolist(),
        "ece": expected_calibration_error(ps, te.style[sv])}
    if m21_limit and bars is None:
        rng = np.random.default_rng(0)
        pick = np.sort(rng.permutation(len(te))[:m21_limit])
        t0 = time.time()
        got = [bl.music21_key(corpora.midi_path(corpus, rows["test"][i])) for i in pick]
        sub = te.subset(pick)
        r = key_metrics(onehot_key(np.array([g[0] for g in got]), np.array([g[1] for g in got])), sub)
        out["music21 analyze('key')"] = {"key": r, "seconds_per_piece": (time.time() - t0) / len(pick)}
    return out


def sample_test(rows: list[dict], per_style: int, seed: int = 0) -> list[dict]:
    """Every test piece with a human mode label, plus up to per_style others of each style."""
    if not per_style:
        return rows
    rng = np.random.default_rng(seed)
    keep = [r for r in rows if r.get("mode_source") == "human"]
    for style in sorted({r.get("style") or "" for r in rows}):
        rest = [r for r in rows if (r.get("style") or "") == style and r.get("mode_source") != "human"]
        keep += [rest[i] for i in sorted(rng.permutation(len(rest))[:per_style])]
    return sorted(keep, key=lambda r: r["id"])


def transposition_agreement(clf, data: Labelled, shift: int = 6) -> float:
    """Share of pieces whose predicted mode survives a token-level tritone transposition."""
    table = clf.tok.pitch_shift_table()
    pitch_of_id, id_of_pitch = table
    moved = []
    for ids in data.ids:
        p = pitch_of_id[ids]
        k = shift if (p[p >= 0] + shift <= clf.tok.cfg.pitch_range[1] - 1).all() else shift - 12
        moved.append(np.where(p >= 0, id_of_pitch[np.clip(p + k, 0, 127)], ids))
    _, a = clf.probabilities(data.ids)
    _, b = clf.probabilities(moved)
    return float((a.sum(1).argmax(1) == b.sum(1).argmax(1)).mean())


def end_to_end_seconds(clf, corpus: str, rows: list[dict], n: int = 20) -> float:
    """Seconds per file for what `musicgpt classify` does: read MIDI, encode, classify."""
    from musicgpt.scores import load_score

    paths = [corpora.midi_path(corpus, r) for r in rows[:n]]
    clf.classify_score(load_score(paths[0]))  # warm up
    t0 = time.time()
    for p in paths:
        clf.classify_score(load_score(p))
    return (time.time() - t0) / len(paths)


def row(name: str, k: dict, style: dict | None) -> str:
    cells = [name]
    for sub in ("human", "human_work", "all"):
        r = k.get(sub)
        cells += [f"{r['mode_accuracy']:.3f}", f"{r['key_accuracy']:.3f}"] if r else ["-", "-"]
    cells += [f"{style['macro_f1']:.3f}" if style else "-"]
    return "| " + " | ".join(cells) + " |"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="all")
    ap.add_argument("--lm", type=Path, help="pre-trained LM checkpoint; without it, baselines only")
    ap.add_argument("--steps", type=int, default=ClassifierTrainConfig.steps)
    ap.add_argument("--window", type=int, default=ClassifierTrainConfig.window)
    ap.add_argument("--variants", default="unfrozen,frozen,scratch",
                    help="comma-separated: unfrozen, frozen, scratch, frozen-random, frozen-masses")
    ap.add_argument("--derived-weight", type=float, default=ClassifierTrainConfig.derived_mode_weight)
    ap.add_argument("--m21-limit", type=int, default=150, help="test pieces for music21 (slow)")
    ap.add_argument("--test-per-style", type=int, default=0,
                    help="score all human-labelled test pieces and at most this many others per style")
    ap.add_argument("--skip-baselines", action="store_true")
    ap.add_argument("--merge", type=Path, nargs="+", metavar="JSON",
                    help="print the tables of earlier --out files together (baselines + heads)")
    ap.add_argument("--classifier", action="append", default=[], metavar="NAME=PATH",
                    help="also score an already trained classifier "
                    "(e.g. shipped=musicgpt/weights/classifier.pt)")
    ap.add_argument("--passes", type=int, default=ClassifierTrainConfig.probe_passes,
                    help="frozen variants: passes over the probe's pieces")
    ap.add_argument("--save", type=Path, help="write the unfrozen classifier here")
    ap.add_argument("--holdout", action="store_true",
                    help="score the --classifier models on the calibration hold-out of the train split "
                    "(the train groups held out in training; whole pieces, sampled by --test-per-style) "
                    "instead of the test sample: the place to choose between models")
    ap.add_argument("--out", type=Path, help="all figures as JSON")
    args = ap.parse_args()
    if args.holdout:
        return holdout_report(args)

    if args.merge:
        parts = [json.loads(p.read_text()) for p in args.merge]
        merged = {**parts[0], "baselines": {}, "heads": {}}
        for p in parts:
            merged["baselines"].update(p["baselines"])
            merged["heads"].update(p["heads"])
        merged["command"] = " ; ".join(p["command"] for p in parts)
        print(markdown(merged))
        return 0
    rows = split_rows(args.corpus)
    all_test = rows["test"]
    rows["test"] = sample_test(all_test, args.test_per_style)
    styles = sorted({r["style"] for r in rows["train"] if r.get("style")})
    result: dict = {"corpus": args.corpus, "train_pieces": len(rows["train"]),
                    "test_pieces": len(rows["test"]), "test_pieces_in_split": len(all_test),
                    "styles": styles, "command": "python " + " ".join(sys.argv),
                    "style_train_pieces": [sum(r.get("style") == st for r in rows["train"]) for st in styles],
                    "human_mode_test": sum(r.get("mode_source") == "human" for r in rows["test"]),
                    "baselines": {}, "heads": {}}
    print(f"corpus {args.corpus}: {len(rows['train'])} train, {len(rows['test'])} test pieces "
          f"({result['human_mode_test']} with human mode labels)", file=sys.stderr)
    # The baselines read no tokens, but their labels come through the token sets like the heads':
    # the shipped model's tokenizer when no --lm is given.
    tok = None if args.skip_baselines else load_model(args.lm)[1]
    for bars in () if args.skip_baselines else BARS:
        t0 = time.time()
        result["baselines"][str(bars or "all")] = baselines(
            tok, args.corpus, rows, styles, args.derived_weight, bars, args.m21_limit)
        print(f"baselines, bars {bars or 'all'}: {time.time() - t0:.0f} s", file=sys.stderr)
    jobs = [tuple(c.split("=", 1)) for c in args.classifier]
    jobs += [(v, None) for v in (args.variants.split(",") if args.lm else [])]
    for variant, path in jobs:
        t0 = time.time()
        if path is None:
            # "frozen-random": the frozen recipe on a randomly initialised body;
            # "frozen-masses": the key head without hidden states (pitch-class masses only)
            cfg = ClassifierTrainConfig(steps=args.steps, window=args.window,
                                        freeze=variant.startswith("frozen"),
                                        scratch=variant in ("scratch", "frozen-random"),
                                        derived_mode_weight=args.derived_weight, probe_passes=args.passes,
                                        key_proj=(0 if variant == "frozen-masses"
                                                  else ClassifierTrainConfig.key_proj))
            clf, test = train_classifier(args.lm, args.corpus, cfg)
            train_s = time.time() - t0
        else:
            clf = load_classifier(Path(path))
            _, test, _ = corpus_data(clf.tok, args.corpus, clf.styles)
            train_s = float(clf.meta.get("classifier", {}).get("train_seconds", float("nan")))
        wanted = {r["id"] for r in rows["test"]}
        test = test.subset([i for i, p in enumerate(test.piece_ids) if p in wanted])
        r = {"train_seconds": train_s, "temperature": clf.temperature, "bars": {}}
        for bars in BARS:
            r["bars"][str(bars or "all")] = evaluate(clf, test, bars)
        r["tritone_mode_agreement"] = transposition_agreement(clf, test)
        r["end_to_end_seconds_per_file"] = end_to_end_seconds(clf, args.corpus, rows["test"])
        result["heads"][variant] = r
        print(f"{variant}: trained {train_s:.0f} s", file=sys.stderr)
        if variant == "unfrozen" and args.save:
            save_classifier(args.save, clf)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))
    print(markdown(result))
    return 0


def holdout_sample(clf, corpus: str, per_style: int) -> tuple[Labelled, dict[str, dict]]:
    """The calibration hold-out (train groups train-classifier holds out), sampled like the test
    sample; and the train rows by id."""
    cfg = ClassifierTrainConfig()
    byid = {r["id"]: r for r in split_rows(corpus)["train"]}
    train, _, _ = corpus_data(clf.tok, corpus, clf.styles)
    _, cal = hold_out(train, cfg.calib_fraction, cfg.seed)
    wanted = {r["id"] for r in sample_test([byid[p] for p in cal.piece_ids], per_style)}
    return cal.subset([i for i, p in enumerate(cal.piece_ids) if p in wanted]), byid


def holdout_report(args: argparse.Namespace) -> int:
    """Whole-piece figures of trained classifiers on the calibration hold-out (its temperatures
    were fitted there, so its ECE is in-sample; accuracies are not)."""
    out: dict = {"command": "python " + " ".join(sys.argv), "heads": {}}
    print("| model | pieces (human) | mode (human) | tonic+mode (human) | mode (human, per work) "
          "| mode (all) | tonic+mode (all) | style acc | style macro-F1 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, path in (c.split("=", 1) for c in args.classifier):
        clf = load_classifier(Path(path))
        cal, _ = holdout_sample(clf, args.corpus, args.test_per_style)
        e = evaluate(clf, cal)
        k, st = e["key"], e["style"]
        out["heads"][name] = e
        print(f"| {name} | {len(cal)} ({k['human']['pieces']}) | {k['human']['mode_accuracy']:.3f} "
              f"| {k['human']['key_accuracy']:.3f} | {k['human_work']['mode_accuracy']:.3f} "
              f"({k['human_work']['works']} works) | {k['all']['mode_accuracy']:.3f} "
              f"| {k['all']['key_accuracy']:.3f} | {st['accuracy']:.3f} | {st['macro_f1']:.3f} |", flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=2))
    return 0


def per_style_f1(conf: list[list[int]]) -> np.ndarray:
    """F1 of each style from a confusion matrix (rows true, columns predicted); nan if unseen."""
    c = np.asarray(conf, dtype=float)
    support = c.sum(0) + c.sum(1)
    return np.where(support > 0, 2 * np.diag(c) / np.maximum(support, 1), np.nan)


def markdown(r: dict) -> str:
    head = ("| model | mode (human) | tonic+mode (human) | mode (human, per work) "
            "| tonic+mode (human, per work) | mode (all) | tonic+mode (all) | style macro-F1 |\n"
            "|---|---|---|---|---|---|---|---|")
    out = [f"Corpus `{r['corpus']}`: {r['train_pieces']} train pieces; {r['test_pieces']} of "
           f"{r['test_pieces_in_split']} test pieces scored, {r['human_mode_test']} of them with "
           f"human mode labels. Per work: the sections of one Palestrina mass are answered once, "
           f"from all of them (`classify --together`); any other file is a work of its own. "
           f"Command: `{r['command']}`", ""]
    for bars in ("all", "16", "8", "4"):
        out += [f"### First {bars} bars" if bars != "all" else "### Whole pieces", "", head]
        for name, b in r["baselines"].get(bars, {}).items():
            out.append(row(name, b["key"], b.get("style")))
        for variant, h in r["heads"].items():
            e = h["bars"].get(bars)
            if e:
                out.append(row(f"heads, {variant}", e["key"], e.get("style")))
        out.append("")
    for variant, h in r["heads"].items():
        e = h["bars"]["all"]
        s, k = e.get("style", {}), e["key"]["all"]
        nan = float("nan")
        out.append(f"- heads {variant}: trained {h['train_seconds']:.0f} s; "
                   f"{1000 * e['seconds_per_piece']:.0f} ms per test piece (model only), "
                   f"{1000 * h['end_to_end_seconds_per_file']:.0f} ms per MIDI file end to end; "
                   f"temperature {h['temperature']}; style ECE {s.get('ece', nan):.3f} "
                   f"(uncalibrated {s.get('ece_uncalibrated', nan):.3f}); key ECE "
                   f"{k['key_ece']:.3f} (uncalibrated {k.get('key_ece_uncalibrated', nan):.3f}); "
                   f"same mode after a tritone shift: {h['tritone_mode_agreement']:.3f}")
        # per-style F1 beside the corpus's train counts, when the model's styles are the corpus's
        if "style" in e and "style_train_pieces" in r and e["style"].get("labels") == r["styles"]:
            f1, n_train = per_style_f1(e["style"]["confusion"]), np.array(r["style_train_pieces"])
            common = n_train >= 20
            out.append("  style F1 by style (train pieces): " + ", ".join(
                f"{st} {f:.2f} ({n})" for st, f, n in zip(r["styles"], f1, n_train)) +
                f"; macro-F1 over the {common.sum()} styles with >= 20 train pieces: "
                f"{np.nanmean(f1[common]):.3f}")
        if "style" in e:
            labels = ", ".join(e["style"]["labels"])
            out.append(f"  style confusion (rows true, columns predicted; {labels}): "
                       f"{e['style']['confusion']}")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
