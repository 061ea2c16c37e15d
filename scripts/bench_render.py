"""Time and size of `musicgpt render`'s three outputs on real scores of different lengths.

    python scripts/bench_render.py                      # prints a Markdown table
    python scripts/bench_render.py --out docs/benchmarks.md   # and appends it there

Each figure is the best of --repeat runs of one output kind (read and parse time excluded).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from music21 import corpus

from musicgpt.rendering import outputs as render
from musicgpt.scores import load_score

PIECES = ("bach/bwv66.6", "monteverdi/madrigal.3.1", "palestrina/Credo_26")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pieces", default=",".join(PIECES), help="music21 corpus works, comma-separated")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, help="append the table to this Markdown file")
    args = ap.parse_args(argv)
    lines = [f"## {datetime.date.today()}: `python scripts/bench_render.py"
             + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])) + "`", "",
             f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
             f"{platform.system()}; Python {platform.python_version()}",
             f"- audio at {render.SAMPLE_RATE} Hz mono; best of {args.repeat}", "",
             "| piece | notes | seconds of music | WAV | piano roll PNG | MusicXML |",
             "|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as d:
        for work in args.pieces.split(","):
            found = corpus.getWork(work)
            score = load_score(found[0] if isinstance(found, list) else found)
            cells = []
            for kind in render.KINDS:
                best = float("inf")
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    (path,) = render.render(score, Path(d) / "x", (kind,))
                    best = min(best, time.perf_counter() - t0)
                cells.append(f"{best:.2f} s, {path.stat().st_size / 1024:,.0f} KiB")
            lines.append(f"| {work} | {score.note_num():,} | {score.to('second').end():.0f} | "
                         + " | ".join(cells) + " |")
    table = "\n".join(lines) + "\n"
    print(table)
    if args.out:
        with args.out.open("a") as f:
            f.write("\n" + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
