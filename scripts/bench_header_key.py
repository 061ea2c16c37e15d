"""How well the key of a header (its first bars) is found, on the validation carve of each corpus:
the profile rule (theory.estimate_key), the key head stored beside the shipped model's body
(what `continue` uses: classify.header_key_finder), the shipped classifier, and the head's
log-probability plus LAMBDA times the rule's score. Tonic accuracy, and tonic + mode, against the
corpus labels. Validation only: this chose what `continue` uses, so it never looks at test.

    python scripts/bench_header_key.py --pieces folk=150 bach-chorales=33 palestrina=80
"""

from __future__ import annotations

import argparse
import datetime
import platform

import numpy as np

from musicgpt.classifier.classify import load_classifier
from musicgpt.config import MODES, SHIPPED_CLASSIFIER, SHIPPED_MODEL, shipped
from musicgpt.evaluation import continuations as C
from musicgpt.scores import first_bars
from musicgpt.theory import key_scores, pc_histogram, pitch_class


def rule_scores(score) -> np.ndarray:
    """(12, 8) estimate_key's score of every (tonic, mode); -inf for "other"."""
    arrays = [t.notes.numpy() for t in score.tracks if len(t.notes)]
    time = np.concatenate([a["time"] for a in arrays])
    pitch = np.concatenate([a["pitch"] for a in arrays])
    first = int(pitch[time == time.min()].min() % 12)
    out = np.full((12, len(MODES)), -np.inf)
    for m, scores in key_scores(pc_histogram(score), first).items():
        out[:, MODES.index(m)] = scores
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pieces", nargs="+", default=["folk=150", "bach-chorales=33", "palestrina=80"],
                    help="CORPUS=N: headers from the first N validation pieces of each corpus")
    ap.add_argument("--header-bars", type=int, default=4)
    ap.add_argument("--lambdas", type=float, nargs="+", default=[1, 2, 4, 8, 16, 32])
    args = ap.parse_args()
    judges = {"model's key head": load_classifier(shipped(SHIPPED_MODEL)),
              "classifier.pt": load_classifier(shipped(SHIPPED_CLASSIFIER))}
    other = MODES.index("other")
    rows = []
    for spec in args.pieces:
        corpus, n = spec.split("=")
        cfg = C.ContinuationEvalConfig(pieces=int(n), split="valid", header_bars=args.header_bars)
        scores: dict[str, list[tuple[bool, bool]]] = {}
        for row, score, _ in C.headers(corpus, C._splits(corpus, cfg, None)["test"], cfg, None):
            if not row.get("tonic"):
                continue
            t, m = pitch_class(row["tonic"]), row.get("mode")
            head = first_bars(score, args.header_bars)
            rs = rule_scores(head)
            cand = {"profile rule": rs}
            for name, clf in judges.items():
                _, pk = clf.probabilities([clf.encode(head)])
                cand[name] = np.log(np.clip(pk[0], 1e-9, None))
            lp = cand["model's key head"]
            for lam in args.lambdas:
                cand[f"head + {lam:g} x rule"] = lp + lam * rs
            for name, s in cand.items():
                s = s.copy()
                s[:, other] = -np.inf
                bt, bm = np.unravel_index(int(np.argmax(s)), s.shape)
                scores.setdefault(name, []).append((bt == t, bt == t and MODES[bm] == m))
        for name, v in scores.items():
            rows.append((corpus, len(v), name, np.mean([a for a, _ in v]), np.mean([b for _, b in v])))
    command = f"python scripts/bench_header_key.py --pieces {' '.join(args.pieces)}"
    print(f"## {datetime.date.today()}: `{command}`")
    print(f"\n{platform.machine()}; {args.header_bars}-bar headers of the validation carve.\n")
    print("| corpus | headers | key finder | tonic | tonic + mode |\n|---|---|---|---|---|")
    for corpus, n, name, a, b in rows:
        print(f"| {corpus} | {n} | {name} | {a:.3f} | {b:.3f} |")


if __name__ == "__main__":
    main()
