"""Where the mode errors are: human-labelled pieces sorted by the degree their last bass note
sits on, the classifier beside the final-note rule, and the share either of them gets right.

    python scripts/mode_ceiling.py                     # shipped classifier, test sample and hold-out
    python scripts/mode_ceiling.py --model runs/x/classifier.pt --sets test

The degree is the lowest pitch sounding at the very end, counted in semitones above the labelled
tonic (0: the piece ends on its final; 7: on the fifth). "Either" counts a piece as right when
the classifier or the rule names its mode: no method that picks one of the two per piece can do
better, so it bounds what combining them could give.
"""

from __future__ import annotations

import argparse
import collections
import sys
from pathlib import Path

import numpy as np
import symusic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_classifier import holdout_sample, sample_test  # noqa: E402
from musicgpt.corpus import corpora  # noqa: E402
from musicgpt.evaluation.baselines import final_scale_rule, pitch_profiles, tonic_index  # noqa: E402
from musicgpt.classifier.classify import load_classifier  # noqa: E402
from musicgpt.classifier.training import corpus_data  # noqa: E402
from musicgpt.lm import split_rows  # noqa: E402

DEGREES = {0: "the final", 7: "the fifth", 5: "the fourth", 3: "the minor third"}


def pieces(clf, which: str, per_style: int):
    """(Labelled subset, rows by id) for the test sample or the calibration hold-out."""
    if which == "holdout":
        return holdout_sample(clf, "all", per_style)
    rows = split_rows("all")["test"]
    _, test, _ = corpus_data(clf.tok, "all", clf.styles)
    wanted = {r["id"] for r in sample_test(rows, per_style)}
    return test.subset([i for i, p in enumerate(test.piece_ids) if p in wanted]), {r["id"]: r for r in rows}


def last_bass_degree(score: symusic.Score, tonic: int) -> int:
    notes = [(n.time + n.duration, n.pitch) for t in score.tracks for n in t.notes]
    end = max(e for e, _ in notes)
    return (min(p for e, p in notes if e == end) - tonic) % 12


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, default=Path("musicgpt/weights/classifier.pt"))
    ap.add_argument("--sets", default="test,holdout", help="comma-separated: test, holdout")
    ap.add_argument("--test-per-style", type=int, default=40)
    args = ap.parse_args(argv)
    clf = load_classifier(args.model)
    for which in args.sets.split(","):
        data, byid = pieces(clf, which, args.test_per_style)
        human = np.flatnonzero(np.asarray(data.human_mode, dtype=bool))
        _, pk = clf.probabilities([data.ids[i] for i in human])
        table: dict = collections.defaultdict(lambda: collections.Counter())
        for j, i in enumerate(human):
            row = byid[data.piece_ids[i]]
            score = symusic.Score(str(corpora.midi_path("all", row)))
            _, rule_mode = final_scale_rule(pitch_profiles(score)[None])
            mode = int(data.mode[i])
            ok_clf = int(pk[j].sum(0).argmax()) == mode
            ok_rule = int(rule_mode[0]) == mode
            group = row["corpus"] if row["corpus"] == "palestrina" else "other"
            deg = last_bass_degree(score, tonic_index(row["tonic"]))
            for key in ((group, DEGREES.get(deg, "another degree")), (group, "all"), ("all", "all")):
                table[key].update(pieces=1, clf=ok_clf, rule=ok_rule, either=ok_clf or ok_rule)
        print(f"\n{which} ({len(human)} human-labelled pieces), {args.model}\n")
        print("| pieces | ends on | n | classifier | final-note rule | either |")
        print("|---|---|---|---|---|---|")
        for (group, deg), c in sorted(table.items(), key=lambda kv: (kv[0][0] == "all", kv[0][1] == "all",
                                                                      kv[0][0], -kv[1]["pieces"])):
            n = c["pieces"]
            print(f"| {group} | {deg} | {n} | {c['clf']} ({c['clf'] / n:.3f}) | {c['rule']} ({c['rule'] / n:.3f}) "
                  f"| {c['either']} ({c['either'] / n:.3f}) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
