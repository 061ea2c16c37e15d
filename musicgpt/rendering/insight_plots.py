"""Pictures of the model's insides: an attention matrix and the pitch embeddings (PNG).

Drawn with matplotlib's object API (a `Figure`, no pyplot: no global state, no display needed);
matplotlib is imported here only, and this module only when a command draws. The arrays come
from musicgpt.insight. Every PNG carries a "Software: musicgpt ..." text chunk, so a command can
tell a picture it made earlier (and may replace) from someone else's file.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from musicgpt.atomic import write_bytes_atomic
from musicgpt.errors import MusicGPTError
from musicgpt.insight import FIFTHS, TokenRoles
from musicgpt.rendering.pianoroll import PALETTE
from musicgpt.theory import PITCH_CLASSES

SOFTWARE = "musicgpt"  # the PNG's Software text starts so: "musicgpt attention", "musicgpt embeddings"
BAR_RGB = (0.0, 0.0, 0.0)
OTHER_RGB = (0.86, 0.86, 0.86)
HIDDEN_RGB = (0.95, 0.95, 0.95)  # above the diagonal: keys a causal model cannot see


def _figure(width: float, height: float):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise MusicGPTError("drawing needs matplotlib, which is not installed: "
                            "pip install matplotlib") from None
    return Figure(figsize=(width, height), dpi=110)


def save_png(fig, path: str | Path, software: str) -> None:
    """Write the figure as a PNG atomically, tagged `software` (see `made_here`)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": software})
    write_bytes_atomic(path, buf.getvalue())


def made_here(path: str | Path) -> bool:
    """Whether `path` is a PNG whose Software text chunk says musicgpt made it."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return False
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    at = 8
    while at + 8 <= len(data):
        (size,), tag = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        body = data[at + 8:at + 8 + size]
        if tag == b"tEXt" and body.startswith(b"Software\x00"):
            return body[9:].decode("latin-1").startswith(SOFTWARE)
        if tag == b"zTXt" and body.startswith(b"Software\x00"):
            try:
                return zlib.decompress(body[10:]).decode("latin-1").startswith(SOFTWARE)
            except zlib.error:
                return False
        if tag == b"IDAT":  # text chunks come before the image data
            return False
        at += 12 + size
    return False


def _voice_rgb(v: int) -> tuple[float, float, float]:
    return tuple(PALETTE[v % len(PALETTE)] / 255.0)


def _token_colours(roles: TokenRoles) -> np.ndarray:
    """(T, 3) one colour per token: its voice's (the piano roll's palette), black for a bar line,
    light grey for the rest (positions, time signatures, controls)."""
    out = np.empty((len(roles.voice), 3))
    for i, (v, bar) in enumerate(zip(roles.voice, roles.bar)):
        out[i] = BAR_RGB if bar else (_voice_rgb(int(v)) if v >= 0 else OTHER_RGB)
    return out


def attention_figure(weights: np.ndarray, roles: TokenRoles, title: str, subtitle: str = ""):
    """A Figure of one (T, T) attention map: queries down, keys across, square-root colour scale,
    bar lines drawn across it and a strip of voice colours along each edge."""
    from matplotlib import colormaps
    from matplotlib.colors import PowerNorm
    from matplotlib.patches import Patch

    T = weights.shape[0]
    fig = _figure(9.5, 10.2)
    grid = fig.add_gridspec(2, 3, width_ratios=(0.025, 1, 0.035), height_ratios=(0.025, 1),
                            left=0.09, right=0.9, top=0.9, bottom=0.11, wspace=0.02, hspace=0.02)
    ax = fig.add_subplot(grid[1, 1])
    top, left, bar_ax = fig.add_subplot(grid[0, 1]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 2])
    hidden = np.triu(np.ones((T, T), dtype=bool), 1)
    cmap = colormaps["viridis"].with_extremes(bad=HIDDEN_RGB)
    vmax = max(float(weights[~hidden].max()), 1e-9)
    im = ax.imshow(np.ma.masked_array(weights, hidden), cmap=cmap, norm=PowerNorm(0.5, 0, vmax),
                   interpolation="nearest", aspect="auto")
    bars = np.flatnonzero(roles.bar)
    for b in bars:
        ax.axvline(b - 0.5, color="white", lw=0.5, alpha=0.6)
        ax.axhline(b - 0.5, color="white", lw=0.5, alpha=0.6)
    colours = _token_colours(roles)
    top.imshow(colours[None], aspect="auto", interpolation="nearest")
    left.imshow(colours[:, None], aspect="auto", interpolation="nearest")
    step = max(1, int(np.ceil(len(bars) / 24)))  # at most ~24 bar numbers along an axis
    shown = bars[::step]
    labels = [str(1 + i * step) for i in range(len(shown))]
    top.set_xticks([])
    top.set_yticks([])
    left.set_xticks([])
    left.set_yticks(shown, labels, fontsize=7)  # the map's own left edge is hidden by the strip
    ax.set_yticks([])
    ax.set_xticks(shown, labels, fontsize=7)
    ax.set_xlabel("key: the token attended to (numbers: the bar lines of bars 1, 2, ...)")
    left.set_ylabel("query: the token attending")
    fig.colorbar(im, cax=bar_ax, label="attention weight (square-root scale; each row sums to 1)")
    fig.suptitle(title, fontsize=13, y=0.975)
    if subtitle:
        fig.text(0.5, 0.94, subtitle, ha="center", fontsize=9)
    voices = sorted(set(int(v) for v in roles.voice if v >= 0))
    handles = [Patch(color=_voice_rgb(v), label=f"voice {v + 1}" + (" (top)" if v == 0 else ""))
               for v in voices]
    handles += [Patch(color=BAR_RGB, label="Bar token (white lines across the map)"),
                Patch(color=OTHER_RGB, label="position, time signature, BOS, controls"),
                Patch(facecolor=HIDDEN_RGB, edgecolor="0.7", label="hidden: later tokens (causal)")]
    fig.legend(handles=handles, loc="lower center", ncol=min(4, len(handles)), fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, 0.005))
    return fig


def _pc_colour(pc: int):
    from matplotlib import colormaps

    return colormaps["hsv"](pc / 12)


def embeddings_figure(names: Sequence[str], pitches: np.ndarray, coords: np.ndarray, share: np.ndarray,
                      pc_points: np.ndarray, pc_share: np.ndarray, fits: dict[str, float],
                      title: str, note: str = ""):
    """Two panels: every (learned) pitch token's embedding on the first two principal axes,
    coloured by pitch class and joined semitone by semitone; and the twelve pitch-class means on
    their own two axes, joined in fifths order (solid) and chromatic order (dotted)."""
    from matplotlib.lines import Line2D

    fig = _figure(15, 7.4)
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    pitches = np.asarray(pitches)
    left.plot(coords[:, 0], coords[:, 1], color="0.8", lw=0.8, zorder=1)
    for (x, y), name, p in zip(coords, names, pitches):
        left.scatter([x], [y], color=_pc_colour(int(p) % 12), s=18 + 4 * (int(p) // 12 - 1), zorder=2,
                     edgecolors="0.3", linewidths=0.4)
        left.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    left.set_xlabel(f"principal axis 1 ({share[0]:.0%} of the variance)")
    left.set_ylabel(f"principal axis 2 ({share[1]:.0%})")
    left.set_title("each pitch token's embedding, coloured by pitch class\n(grey line: up by semitones; "
                   "bigger dot: higher octave)", fontsize=9)
    centre = pc_points.mean(axis=0)
    for order, style, grey in ((FIFTHS, "-", "0.45"), (tuple(range(12)), ":", "0.7")):
        ring = pc_points[list(order) + [order[0]]]
        right.plot(ring[:, 0], ring[:, 1], style, color=grey, lw=1.2, zorder=1)
    for pc, (x, y) in enumerate(pc_points):
        right.scatter([x], [y], color=_pc_colour(pc), s=120, zorder=2, edgecolors="0.3")
        right.annotate(PITCH_CLASSES[pc], (x, y), fontsize=12, xytext=(6, 4), textcoords="offset points")
    right.scatter([centre[0]], [centre[1]], marker="+", color="0.4", s=60)
    right.set_aspect("equal", adjustable="datalim")
    right.set_xlabel(f"axis 1 of the 12 means ({pc_share[0]:.0%})")
    right.set_ylabel(f"axis 2 ({pc_share[1]:.0%})")
    right.set_title(f"the 12 pitch-class means (each over its octaves); circle fit:\nfifths order "
                    f"{fits['fifths']:.2f}, chromatic order {fits['chromatic']:.2f} (1 = a perfect "
                    "circle, random about 0.35)", fontsize=9)
    right.legend(handles=[Line2D([], [], color="0.45", ls="-", label="joined in fifths order"),
                          Line2D([], [], color="0.7", ls=":", label="joined in chromatic order")],
                 fontsize=8, loc="best")
    fig.suptitle(title, fontsize=13, y=0.98)
    if note:
        fig.text(0.5, 0.015, note, ha="center", fontsize=8, wrap=True)
    fig.subplots_adjust(left=0.05, right=0.98, top=0.87, bottom=0.12, wspace=0.15)
    return fig
