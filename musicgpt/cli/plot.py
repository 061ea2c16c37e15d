"""`musicgpt plot`: a training run's curves as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from musicgpt.cli.options import HelpFormatter
from musicgpt.errors import MusicGPTError

DEFAULT_NAME = "curves.png"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "plot", help="draw a training run's loss curves (PNG)",
        description="Draw the train and validation loss, and the validation bits per note, "
        "against the step, from RUN_DIR/metrics.jsonl (the --out folder of `musicgpt train`; "
        "it may still be training). The star marks the step best.pt was kept at.",
        formatter_class=HelpFormatter)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--out", type=Path, default=argparse.SUPPRESS, metavar="PNG",
                   help=f"the PNG to write (default: RUN_DIR/{DEFAULT_NAME})")
    p.set_defaults(func=cmd_plot)


def cmd_plot(args: argparse.Namespace) -> int:
    from musicgpt.rendering.charts import write_curves

    out = getattr(args, "out", None) or args.run_dir / DEFAULT_NAME
    if out.suffix.lower() != ".png":
        raise MusicGPTError(f"--out {out} should end in .png")
    run = write_curves(args.run_dir, out)
    found = run.best()
    best = f"; best validation loss {found[1]:.3f} at step {found[0]}" if found else ""
    last = max([*run.train_loss, *run.valid_loss])
    print(f"wrote {out} (to step {last}: {len(run.train_loss)} train points, "
          f"{len(run.valid_loss)} evaluations{best})")
    return 0
