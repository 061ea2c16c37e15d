"""A piano roll of a score as a PNG image.

The roll is drawn into a numpy array and written as PNG with zlib (no image library is among
the dependencies, and a PNG is ~30 lines).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import symusic

from musicgpt.atomic import write_bytes_atomic
from musicgpt.errors import MusicGPTError

# one colour per track, in track order (blue, red, green, orange, purple, ...); the MIDI that
# continue writes has the top voice first (scores.normalize)
PALETTE = np.array([
    (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14),
    (148, 103, 189), (140, 86, 75), (227, 119, 194), (23, 190, 207),
], dtype=np.uint8)
BLACK_KEYS = {1, 3, 6, 8, 10}
# 3 x 5 pixel glyphs for the octave labels in the piano roll's left margin ("C4" = middle C)
GLYPHS = {ch: np.array([[c == "#" for c in row] for row in rows.split()], dtype=bool) for ch, rows in {
    "C": "### #.. #.. #.. ###", "0": "### #.# #.# #.# ###", "1": ".#. ##. .#. .#. ###",
    "2": "### ..# ### #.. ###", "3": "### ..# ### ..# ###", "4": "#.# #.# ### ..# ..#",
    "5": "### #.. ### ..# ###", "6": "### #.. ### #.# ###", "7": "### ..# ..# ..# ..#",
    "8": "### #.# ### #.# ###", "9": "### #.# ### ..# ###"}.items()}


def piano_roll(score: symusic.Score, px_per_quarter: int = 24, px_per_semitone: int = 10,
               max_width: int = 12000, marks: Sequence[int] = ()) -> np.ndarray:
    """(H, W, 3) uint8 image: time left to right, pitch bottom to top, one colour per track.

    Rows of black keys are shaded, every C has a line under it and its name in the left margin
    (C4 is middle C, when rows are at least 5 pixels high), bar lines are grey, and each
    note's first column is darker so that repeated notes stay apart. Each tick in `marks` gets
    a dashed black line (where a continuation starts)."""
    from miditok.utils import get_bars_ticks  # miditok imports torch: only when drawing

    notes = [(i, n.time, n.duration, n.pitch) for i, t in enumerate(score.tracks) if not t.is_drum
             for n in t.notes]
    if not notes:
        raise MusicGPTError("nothing to draw: the score has no pitched notes")
    margin = 10  # left and right; the octave labels sit in the left one
    tpq, end = score.ticks_per_quarter, max(t + d for _, t, d, _ in notes)
    px_per_quarter = max(1, min(px_per_quarter, (max_width - 2 * margin) * tpq // max(1, end)))
    lo = min(p for *_, p in notes) - 2
    hi = max(p for *_, p in notes) + 2
    width = margin * 2 + math.ceil(end / tpq * px_per_quarter) + 1
    height = (hi - lo + 1) * px_per_semitone

    def x_of(tick: int) -> int:
        return margin + round(tick / tpq * px_per_quarter)

    def y_of(pitch: int) -> int:  # top row of the pitch's band
        return (hi - pitch) * px_per_semitone

    img = np.full((height, width, 3), 255, dtype=np.uint8)
    for p in range(lo, hi + 1):
        if p % 12 in BLACK_KEYS:
            img[y_of(p):y_of(p) + px_per_semitone] = 243
        if p % 12 == 0:
            img[y_of(p) + px_per_semitone - 1] = 190
            if px_per_semitone >= 5 and p >= 12:  # "C4" in the margin, bottom-aligned in its row
                for k, ch in enumerate(f"C{p // 12 - 1}"):
                    y = y_of(p) + px_per_semitone - 5
                    img[y:y + 5, 1 + 4 * k:4 + 4 * k][GLYPHS[ch]] = 60
    for b in get_bars_ticks(score):  # MidiTok's bar lines, following time-signature changes
        img[:, min(x_of(b), width - 1)] = 170
    for i, time, dur, pitch in notes:
        colour = PALETTE[i % len(PALETTE)]
        x0, x1 = x_of(time), max(x_of(time + dur), x_of(time) + 2)
        y0 = y_of(pitch)
        img[y0:y0 + px_per_semitone - 1, x0:x1 - 1] = colour
        img[y0:y0 + px_per_semitone - 1, x0] = colour // 2
    for tick in marks:
        x = min(x_of(tick), width - 1)
        dashes = (np.arange(height) // 4) % 2 == 0
        img[dashes, max(0, x - 1):x + 1] = 0
    return img


def encode_png(img: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 array as PNG bytes (8-bit RGB, no filtering)."""
    h, w, _ = img.shape
    raw = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * 3)], axis=1).tobytes()

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6))
            + chunk(b"IEND", b""))


def write_png(img: np.ndarray, path: str | Path) -> None:
    write_bytes_atomic(path, encode_png(img))
