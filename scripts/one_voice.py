"""Style from one voice: does a single voice of a test piece get the style the full score gets
(issue #15, "tell a motet from a chorale ... even when it is given just one voice")?

    python scripts/one_voice.py --out docs/one_voice.json > docs/one_voice.md

Every test-split piece of two voices or more (chorales, Palestrina, trecento, Monteverdi, Josquin)
is classified whole and voice by voice, each voice on its own as a one-track MIDI would be. Reports
per corpus: how often a voice's style agrees with the full score's, and how often each is right.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import symusic

from musicgpt import corpus as corpora
from musicgpt.classifier.classify import load_classifier
from musicgpt.errors import MusicGPTError
from musicgpt.scores import normalize

CORPORA = ("bach-chorales", "palestrina", "trecento", "monteverdi", "josquin")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", type=Path, help="classifier checkpoint (default: the shipped one)")
    ap.add_argument("--max-per-corpus", type=int, default=120, help="test pieces per corpus, for time")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    clf = load_classifier(args.model)
    rng = np.random.default_rng(0)
    report: dict = {"model": str(args.model or "shipped classifier.pt"), "date": time.strftime("%Y-%m-%d"),
                    "machine": platform.node(), "corpora": {}}
    for name in CORPORA:
        rows = [r for r in corpora.load_manifest(name)
                if r["split"] == "test" and (r.get("voices") or 1) >= 2]
        rows = [rows[i] for i in sorted(rng.permutation(len(rows))[: args.max_per_corpus])]
        n = defaultdict(int)
        for r in rows:
            score = normalize(symusic.Score(str(corpora.midi_path(name, r))))
            try:
                whole = clf.classify_score(score)["style"][0][0]
            except MusicGPTError:
                continue
            n["pieces"] += 1
            n["whole right"] += whole == r["style"]
            for t in score.tracks:
                one = score.copy()
                one.tracks = [t.copy()]  # type: ignore[assignment]
                try:
                    got = clf.classify_score(one)["style"][0][0]
                except MusicGPTError:  # a voice with no notes in range
                    continue
                n["voices"] += 1
                n["voice agrees"] += got == whole
                n["voice right"] += got == r["style"]
        report["corpora"][name] = {"pieces": n["pieces"], "voices": n["voices"],
                                   "voice agrees with the full score": _share(n["voice agrees"], n["voices"]),
                                   "full score right": _share(n["whole right"], n["pieces"]),
                                   "voice right": _share(n["voice right"], n["voices"])}
    tot = {k: sum(c[k] for c in report["corpora"].values()) for k in ("pieces", "voices")}
    agree = sum(c["voice agrees with the full score"] * c["voices"] for c in report["corpora"].values()
                if c["voices"])
    report["all"] = {**tot, "voice agrees with the full score": _share(agree, tot["voices"])}
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"Style from one voice, {report['date']}, {report['machine']}, {report['model']}.\n")
    print("| corpus | test pieces | voices | a voice agrees with the full score | full score right | "
          "a voice right |\n|---|---|---|---|---|---|")
    for name, c in report["corpora"].items():
        print(f"| {name} | {c['pieces']} | {c['voices']} | {c['voice agrees with the full score']} | "
              f"{c['full score right']} | {c['voice right']} |")
    a = report["all"]
    print(f"| all | {a['pieces']} | {a['voices']} | {a['voice agrees with the full score']} | | |")


def _share(k: float, n: int) -> float | None:
    return round(k / n, 3) if n else None


if __name__ == "__main__":
    main()
