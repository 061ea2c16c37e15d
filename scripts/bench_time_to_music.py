"""Time to music: seconds from the command to a written MIDI for an 8-bar header continued by 8
bars, end to end through `musicgpt continue` (interpreter start, imports, model load, sampling,
writing), and the sampling alone in-process. Headers: a chorale and a fiddle tune from
tests/fixtures/golden/src, so the run needs no built corpus.

    python scripts/bench_time_to_music.py --repeats 5 --out docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from musicgpt.config import SampleConfig
from musicgpt.continuation import continue_score, load_prompt
from musicgpt.lm import load_model

SRC = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "golden" / "src"
HEADERS = {"chorale (bwv66.6)": SRC / "chorales" / "bwv66.6.mxl", "fiddle tune": SRC / "AmateurHornpipe.abc"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--model", type=Path, default=None, help="checkpoint (default: the shipped model)")
    ap.add_argument("--out", type=Path, help="append a markdown section to this file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model, tok, _ = load_model(args.model)
    rows = []
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in HEADERS.items():
            cli, inproc = [], []
            prompt = load_prompt(str(path), 8)
            for k in range(args.repeats):  # interleaved: one CLI run, then one in-process run
                cmd = [sys.executable, "-m", "musicgpt", "continue", str(path), "--bars", "8",
                       "--length", "8bars", "--seed", str(k), "--out", f"{tmp}/c{k}.mid"]
                if args.model:
                    cmd += ["--model", str(args.model)]
                t0 = time.perf_counter()
                subprocess.run(cmd, check=True, capture_output=True)
                cli.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                cfg = SampleConfig(seed=k, max_new_tokens=1280)  # the CLI's cap for 8 bars
                continue_score(model, tok, prompt, sample_cfg=cfg, bars=8,
                               generator=torch.Generator().manual_seed(k))
                inproc.append(time.perf_counter() - t0)
            rows.append((name, statistics.median(cli), max(cli), statistics.median(inproc)))
            print(f"{name}: end to end median {rows[-1][1]:.2f} s (max {rows[-1][2]:.2f}), "
                  f"sampling alone {rows[-1][3]:.2f} s", flush=True)
    if args.out:
        lines = [f"\n## {datetime.date.today()}: time to music, `python scripts/bench_time_to_music.py "
                 f"--repeats {args.repeats}`", "",
                 f"{platform.machine()}, {os.cpu_count()} logical cores, one sampling thread; load "
                 f"average {load:.1f} at the start (other jobs running). 8-bar header, 8 new bars, "
                 f"median of {args.repeats} seeds.", "",
                 "| header | `musicgpt continue`, end to end (s) | worst (s) | sampling alone (s) |",
                 "|---|---|---|---|"]
        lines += [f"| {n} | {a:.2f} | {b:.2f} | {c:.2f} |" for n, a, b, c in rows]
        with open(args.out, "a") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
