"""Charts as PNG: a training run's curves, and a classifier's confusion matrices.

Drawn with matplotlib's object API on its Agg canvas (no pyplot: no global state, no display).
matplotlib comes with music21; it is imported only when a chart is drawn, so the command line
stays quick to start.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from musicgpt.atomic import write_bytes_atomic
from musicgpt.errors import MusicGPTError

LOG = "metrics.jsonl"  # what the trainer writes (trainer.Recorder)
TRAIN_RGB, VALID_RGB = "#1f77b4", "#d62728"  # the piano roll's first two track colours


@dataclass
class Run:
    """A training run's logged figures, each a {step: value} map in step order."""

    name: str
    train_loss: dict[int, float] = field(default_factory=dict)
    valid_loss: dict[int, float] = field(default_factory=dict)
    valid_bits: dict[int, float] = field(default_factory=dict)
    bits_name: str = "bits/note"
    corpus: str = ""

    def best(self) -> tuple[int, float] | None:
        """(step, loss) of the lowest validation loss: where best.pt was kept."""
        finite = [(v, s) for s, v in self.valid_loss.items() if math.isfinite(v)]
        return (min(finite)[1], min(finite)[0]) if finite else None


def read_run(run_dir: str | Path) -> Run:
    """The curves in RUN_DIR/metrics.jsonl. After a resume at step S the trainer logs steps after
    S again; those later lines replace the earlier ones, as they replaced the checkpoints."""
    folder = Path(run_dir)
    if not folder.is_dir():
        raise MusicGPTError(f"{folder}: no such folder (give the --out folder of `musicgpt train`)")
    log = folder / LOG
    if not log.is_file():
        raise MusicGPTError(f"{folder}: no {LOG} in it; is it the --out folder of `musicgpt train`?")
    run = Run(folder.resolve().name)
    try:
        run.corpus = str(json.loads((folder / "config.json").read_text(encoding="utf-8")).get("corpus", ""))
    except (OSError, ValueError, AttributeError):
        pass  # the title goes without it
    bits: dict[str, dict[int, float]] = {"bits/note": {}, "bits/token": {}}
    curves = (run.train_loss, run.valid_loss, *bits.values())
    with open(log, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
                step = int(event["step"])
            except (ValueError, KeyError, TypeError):
                if line.endswith("\n"):  # a last line cut short by a kill is no error
                    raise MusicGPTError(f"{log}, line {number}: not a metrics record") from None
                continue
            kind = event.get("event")
            if kind == "resume":
                for curve in curves:
                    for s in [s for s in curve if s > step]:
                        del curve[s]
            elif kind == "train" and "loss" in event:
                run.train_loss[step] = float(event["loss"])
            elif kind == "eval" and "eval_loss" in event:
                run.valid_loss[step] = float(event["eval_loss"])
                for name, key in (("bits/note", "eval_bits_per_note"), ("bits/token", "eval_bits_per_token")):
                    if key in event:
                        bits[name][step] = float(event[key])
    if not run.train_loss and not run.valid_loss:
        raise MusicGPTError(f"{log}: no training step is logged in it yet")
    run.bits_name = "bits/note" if bits["bits/note"] else "bits/token"
    run.valid_bits = bits[run.bits_name]
    for curve in curves:  # in step order, whatever order resumes left them in
        items = sorted(curve.items())
        curve.clear()
        curve.update(items)
    return run


def _figure(width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # music21 depends on it, so only a broken install gets here
        raise MusicGPTError("drawing a chart needs matplotlib: pip install matplotlib") from None
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def curves_figure(run: Run):
    """Train and validation loss against step, and validation bits beside them."""
    fig = _figure(10, 4)
    loss, bits = fig.subplots(1, 2)
    if run.train_loss:
        loss.plot(list(run.train_loss), list(run.train_loss.values()), color=TRAIN_RGB, lw=1.2,
                  label="train (mean since the last log line)")
    if run.valid_loss:
        loss.plot(list(run.valid_loss), list(run.valid_loss.values()), "o-", color=VALID_RGB, ms=3,
                  lw=1.2, label="validation")
        best = run.best()
        if best is not None:
            loss.plot([best[0]], [best[1]], "*", color="black", ms=10,
                      label=f"best.pt: step {best[0]}, {best[1]:.3f}")
    loss.set(xlabel="step", ylabel="loss (nats per token)", title="loss")
    loss.legend(frameon=False, fontsize=8)
    if run.valid_bits:
        bits.plot(list(run.valid_bits), list(run.valid_bits.values()), "o-", color=VALID_RGB, ms=3, lw=1.2)
        last = max(run.valid_bits)
        bits.annotate(f"{run.valid_bits[last]:.2f}", (last, run.valid_bits[last]), fontsize=8,
                      textcoords="offset points", xytext=(4, 4))
    else:
        bits.text(0.5, 0.5, "no evaluation logged yet", ha="center", va="center", transform=bits.transAxes)
    bits.set(xlabel="step", ylabel=run.bits_name, title=f"validation {run.bits_name}")
    for ax in (loss, bits):
        ax.grid(alpha=0.3)
    fig.suptitle(run.name + (f" ({run.corpus})" if run.corpus else ""))
    return fig


def write_curves(run_dir: str | Path, path: str | Path) -> Run:
    """Draw RUN_DIR's training curves into the PNG `path` (atomically); the run read."""
    run = read_run(run_dir)
    write_bytes_atomic(path, png_bytes(curves_figure(run)))
    return run


def _matrix(ax, counts: np.ndarray, labels: Sequence[str], title: str) -> None:
    """Counts in each cell, shaded by the share of its row (rows: true labels)."""
    rows = counts.sum(1, keepdims=True)
    share = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(counts):
        if n:
            ax.text(j, i, str(n), ha="center", va="center", fontsize=7,
                    color="white" if share[i, j] > 0.6 else "black")
    ticks = range(len(labels))
    ax.set_xticks(ticks, labels, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(ticks, labels, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)


def write_confusion(path: str | Path, matrices: Sequence[tuple[str, Sequence[str], Sequence[Sequence[int]]]]
                    ) -> None:
    """One confusion matrix per (title, labels, counts) side by side, as the PNG `path`."""
    if not matrices:
        raise MusicGPTError("no confusion matrix to draw")
    side = max(3.0, 0.45 * max(len(labels) for _, labels, _ in matrices) + 1.5)
    fig = _figure(side * len(matrices), side)
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (title, labels, counts) in zip(axes, matrices):
        counts = np.asarray(counts, dtype=np.int64)
        if counts.shape != (len(labels), len(labels)):
            raise MusicGPTError(f"a {counts.shape} confusion matrix for {len(labels)} labels")
        right, total = int(np.trace(counts)), int(counts.sum())
        _matrix(ax, counts, labels, f"{title}: {right} of {total} right" if total else title)
    write_bytes_atomic(path, png_bytes(fig))
