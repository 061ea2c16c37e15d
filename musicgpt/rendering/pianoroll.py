"""A piano roll of a score as a PNG image.

Time runs left to right in systems of whole bars, stacked like the lines of a score, so a long
piece wraps instead of becoming a strip thousands of pixels wide. Each system has its bar
numbers along the top and the pitch names down the left. The roll is drawn into a numpy array
and written as PNG with zlib (no image library is among the dependencies, and a PNG is ~30
lines).
"""

from __future__ import annotations

import bisect
import math
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import symusic

from musicgpt.atomic import write_bytes_atomic
from musicgpt.errors import MusicGPTError
from musicgpt.theory import PITCH_CLASSES

# one colour per track, in track order (blue, red, green, orange, purple, ...); the MIDI that
# continue writes has the top voice first (scores.normalize)
PALETTE = np.array([
    (31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14),
    (148, 103, 189), (140, 86, 75), (227, 119, 194), (23, 190, 207),
], dtype=np.uint8)
HEADER_SHARE = 0.35  # a header note's colour: this share of its track's colour, the rest white
BLACK_KEYS = {1, 3, 6, 8, 10}
LEFT, RIGHT = 24, 10  # margins; the pitch names ("Eb4": 17 px) sit in the left one
STRIP = 10  # px above each system for its bar numbers
GAP = 12  # white px between systems
GRID, BAR_LINE, C_LABEL, LABEL = 190, 170, 40, 120  # grey levels
# 5 x 7 pixel glyphs for pitch names ("C4" is middle C, "Eb4", "F#4") and bar numbers
GLYPHS = {ch: np.array([[c == "#" for c in row] for row in rows.split()], dtype=bool) for ch, rows in {
    "A": ".###. #...# #...# ##### #...# #...# #...#", "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.", "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####", "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####", "#": ".#.#. .#.#. ##### .#.#. ##### .#.#. .#.#.",
    "b": "#.... #.... #.##. ##..# #...# #...# ####.", "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.", "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.", "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.", "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...", "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
}.items()}
GLYPH_H, GLYPH_W = 7, 6  # a glyph's height, and its width with the space after it


def draw_text(img: np.ndarray, x: int, y: int, text: str, grey: int) -> int:
    """Draw `text` with its top-left corner at (x, y), clipped to the image; the x after it."""
    for ch in text:
        glyph = GLYPHS[ch]
        y0, x0 = max(0, y), max(0, x)
        y1, x1 = min(img.shape[0], y + GLYPH_H), min(img.shape[1], x + GLYPH_W - 1)
        if y1 > y0 and x1 > x0:
            img[y0:y1, x0:x1][glyph[y0 - y:y1 - y, x0 - x:x1 - x]] = grey
        x += GLYPH_W
    return x


def pitch_name(pitch: int) -> str:
    """'C4' for MIDI 60, 'Eb4', 'F#4' (the package's one spelling per pitch class)."""
    return f"{PITCH_CLASSES[pitch % 12]}{pitch // 12 - 1}"


def systems(bars: Sequence[int], end: int, tpq: int, px_per_quarter: float, width: int
            ) -> list[tuple[int, int]]:
    """(first tick, end tick) of each system: as many whole bars (`bars`: their first ticks) as fit
    in `width` pixels at `px_per_quarter`; a bar wider than that alone is cut where it must be."""
    fits = max(1, int(width * tpq / px_per_quarter))  # ticks in one system's width
    edges = [b for b in bars if 0 < b < end] + [end]
    out, start, last = [], 0, 0
    for edge in edges:
        while edge - start > fits:
            cut = last if last > start else start + fits  # the last bar line that fits, else mid-bar
            out.append((start, cut))
            start = last = cut
        last = edge
    out.append((start, end))
    return out


def piano_roll(score: symusic.Score, px_per_quarter: int = 24, px_per_semitone: int = 10,
               max_width: int = 2000, marks: Sequence[int] = (), header_end: int | None = None,
               max_height: int = 12000) -> np.ndarray:
    """(H, W, 3) uint8 image: time left to right, pitch bottom to top, one colour per track.

    The bars are laid out in systems at most `max_width` pixels wide, stacked top to bottom
    (time is squeezed when more than `max_height` pixels would be needed). Each system
    has its bar numbers above it and each pitch's name at its left (only the Cs when rows are
    under 8 pixels; C4 is middle C). Rows of black keys are shaded, every C has a line under it,
    bar lines are grey, and each note's first column is darker so that repeated notes stay apart.
    Notes that begin before `header_end` (a tick: where a continuation starts) are drawn pale,
    the model's in full colour; each tick in `marks` gets a dashed black line."""
    from miditok.utils import get_bars_ticks  # miditok imports torch: only when drawing

    notes = [(i, n.time, n.duration, n.pitch) for i, t in enumerate(score.tracks) if not t.is_drum
             for n in t.notes]
    if not notes:
        raise MusicGPTError("nothing to draw: the score has no pitched notes")
    tpq, end = score.ticks_per_quarter, max(max(t + d for _, t, d, _ in notes), 1)
    lo = max(0, min(p for *_, p in notes) - 2)
    hi = min(127, max(p for *_, p in notes) + 2)
    band = (hi - lo + 1) * px_per_semitone  # one system's rows
    bars = get_bars_ticks(score)  # MidiTok's bar lines, following time-signature changes
    content = max(1, max_width - LEFT - RIGHT - 1)
    ppq = float(max(1, px_per_quarter))
    while True:  # a few rounds: the height is about proportional to the pixels per quarter
        rows = systems(bars, end, tpq, ppq, content)
        height = len(rows) * (STRIP + band) + (len(rows) - 1) * GAP
        if height <= max_height or len(rows) == 1:
            break
        ppq *= min(0.95, max_height / height)
    width = LEFT + RIGHT + 1 + max(math.ceil((t1 - t0) / tpq * ppq) for t0, t1 in rows)
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    tops = [k * (STRIP + band + GAP) + STRIP for k in range(len(rows))]  # each system's top row
    starts = [t0 for t0, _ in rows]

    def x_of(tick: int, k: int) -> int:
        return min(width - 1, LEFT + round((tick - rows[k][0]) / tpq * ppq))

    def y_of(pitch: int, k: int) -> int:  # top row of the pitch's band in system k
        return tops[k] + (hi - pitch) * px_per_semitone

    all_names = px_per_semitone >= GLYPH_H + 1
    for k, (t0, t1) in enumerate(rows):
        right = x_of(t1, k) + 1
        for p in range(lo, hi + 1):
            y = y_of(p, k)
            if p % 12 in BLACK_KEYS:
                img[y:y + px_per_semitone, LEFT:right] = 243
            if p % 12 == 0:
                img[y + px_per_semitone - 1, LEFT:right] = GRID
            if p >= 12 and (all_names or p % 12 == 0):  # centred in its row, or bottom-aligned
                ty = y + (px_per_semitone - GLYPH_H) // 2 if all_names else y + px_per_semitone - GLYPH_H
                draw_text(img[tops[k]:tops[k] + band], 2, ty - tops[k], pitch_name(p),
                          C_LABEL if p % 12 == 0 else LABEL)
        free = 0  # the first column a bar number may start at
        for number in range(bisect.bisect_left(bars, t0), bisect.bisect_right(bars, t1)):
            x = x_of(bars[number], k)
            img[tops[k]:tops[k] + band, x] = BAR_LINE
            if bars[number] < t1 and x + 2 >= free:
                free = draw_text(img, x + 2, tops[k] - STRIP + 1, str(number + 1), C_LABEL) + GLYPH_W
    for i, time, dur, pitch in notes:
        colour = PALETTE[i % len(PALETTE)]
        header = header_end is not None and time < header_end
        fill = (255 - HEADER_SHARE * (255 - colour.astype(float))).astype(np.uint8) if header else colour
        first = colour if header else colour // 2
        stop, k = time + dur, max(0, bisect.bisect_right(starts, time) - 1)
        while True:  # in its system, and in the next ones while it is held
            t0, t1 = rows[k]
            x0, x1, y0 = x_of(max(time, t0), k), x_of(min(stop, t1), k), y_of(pitch, k)
            if time >= t0:
                x1 = max(x1, x0 + 2)
            img[y0:y0 + px_per_semitone - 1, x0:x1 - 1] = fill
            if time >= t0:
                img[y0:y0 + px_per_semitone - 1, x0] = first
            k += 1
            if k == len(rows) or rows[k][0] >= stop:
                break
    dashes = (np.arange(band) // 4) % 2 == 0
    for tick in marks:
        k = max(0, bisect.bisect_right(starts, tick) - 1)
        x = x_of(tick, k)
        img[tops[k]:tops[k] + band][dashes, max(0, x - 1):x + 1] = 0
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
