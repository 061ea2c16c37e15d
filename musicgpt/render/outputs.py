"""What people listen to and look at: audio (WAV), a piano roll (PNG) and a score (MusicXML).

Everything starts from the package's one score type (`symusic.Score`), so a continuation, a
corpus MIDI file and a user's MusicXML render the same way. Every file is written atomically.

- Audio is synthesised here, not by pretty_midi's `synthesize`: that one decays every note
  exponentially (a held note falls to a third of its level in one second, like a plucked
  string), while this music is sung or played on the organ, and the long notes of a mass would
  fade out half-way. Ours holds each note at a steady level, with a few organ-like harmonics
  (the MIDI programs we write are organ sounds), a 10 ms attack and an 80 ms release. No sound
  font is needed, so it works on any machine.
- The piano roll is drawn into a numpy array and written as PNG with zlib (no image library is
  among the dependencies, and a PNG is ~30 lines).
- The score is music21's: it reads our MIDI (quantising onsets and durations, splitting
  overlapping notes into voices) and writes MusicXML, which MuseScore, Finale, Sibelius and
  Dorico open. Rendering the notation to an image needs one of those, or LilyPond.
"""

from __future__ import annotations

import math
import struct
import tempfile
import wave
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import symusic
from miditok.utils import get_bars_ticks

from musicgpt.atomic import atomic_path
from musicgpt.errors import MusicGPTError
from musicgpt.scores import one_line

SAMPLE_RATE = 22050
HARMONICS = (1.0, 0.5, 0.3, 0.15)  # amplitude of partials 1..4: a soft organ flue stop
ATTACK_S = 0.01
RELEASE_S = 0.08
# one colour per track, in track order (blue, red, green, orange, purple, ...); the MIDI that
# continue writes has the top voice first (scores.assign_voice_programs)
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


# ---------------------------------------------------------------------------------- audio
def synthesize(score: symusic.Score, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(n_samples,) float32 in [-1, 1]: every note of every track, tempo map applied."""
    sec = score.to("second")
    total = int(math.ceil((sec.end() + RELEASE_S) * sample_rate)) + 1
    out = np.zeros(total, dtype=np.float64)
    attack = max(1, int(ATTACK_S * sample_rate))
    release = max(1, int(RELEASE_S * sample_rate))
    for track in sec.tracks:
        if track.is_drum:
            continue
        for note in track.notes:
            held = max(1, int(note.duration * sample_rate))
            n = held + release
            start = int(note.time * sample_rate)
            t = np.arange(n) / sample_rate
            freq = 440.0 * 2.0 ** ((note.pitch - 69) / 12)
            wave_ = sum(a * np.sin(2 * np.pi * k * freq * t)
                        for k, a in enumerate(HARMONICS, start=1) if k * freq < sample_rate / 2)
            env = np.ones(n)
            env[:attack] = np.linspace(0.0, 1.0, attack, endpoint=False)[:n]
            env[held:] = np.linspace(1.0, 0.0, n - held)
            out[start:start + n] += (note.velocity / 127.0) * env * wave_
    peak = np.abs(out).max()
    if peak > 0:
        out *= 0.9 / peak  # loudness is normalised per piece; the notes' relative levels stay
    return out.astype(np.float32)


def write_wav(audio: np.ndarray, path: str | Path, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit mono PCM WAV, written atomically."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(sample_rate)
            w.writeframes(pcm.tobytes())


# ------------------------------------------------------------------------------ piano roll
def piano_roll(score: symusic.Score, px_per_quarter: int = 24, px_per_semitone: int = 5,
               max_width: int = 12000, marks: Sequence[int] = ()) -> np.ndarray:
    """(H, W, 3) uint8 image: time left to right, pitch bottom to top, one colour per track.

    Rows of black keys are shaded, every C has a line under it and its name in the left margin
    (C4 is middle C, when rows are at least 5 pixels high), bar lines are grey, and each
    note's first column is darker so that repeated notes stay apart. Each tick in `marks` gets
    a dashed black line (where a continuation starts)."""
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
    with atomic_path(path) as tmp:
        tmp.write_bytes(encode_png(img))


# ---------------------------------------------------------------------------------- score
def to_music21(score: symusic.Score):
    """A music21 Score of `score`: music21 reads our MIDI, quantising and splitting voices."""
    from music21 import converter

    with tempfile.TemporaryDirectory() as d:
        mid = Path(d) / "score.mid"
        score.dump_midi(str(mid))
        try:
            m21 = converter.parse(str(mid), format="midi", forceSource=True)
        except Exception as exc:  # music21 raises many types on MIDI it cannot notate
            raise MusicGPTError(f"music21 could not notate this score ({one_line(exc)}); "
                                "the audio and piano roll do not need it (--wav --roll)") from exc
    names = [t.name for t in score.tracks if not t.is_drum and len(t.notes)]
    for k, part in enumerate(m21.parts):
        name = names[k] if k < len(names) and names[k] else f"Voice {k + 1}"
        part.partName = name
        part.partAbbreviation = name[:3] + "."
    return m21


def write_musicxml(score: symusic.Score, path: str | Path, title: str | None = None) -> None:
    """MusicXML for notation programs, written atomically."""
    from music21 import metadata

    m21 = to_music21(score)
    m21.metadata = m21.metadata or metadata.Metadata()
    m21.metadata.title = title or Path(path).stem
    with atomic_path(path) as tmp:
        try:
            m21.write("musicxml", fp=str(tmp))
        except Exception as exc:  # music21's MusicXML exporter refuses some streams
            raise MusicGPTError(f"music21 could not write MusicXML for this score ({one_line(exc)}); "
                                "the audio and piano roll do not need it (--wav --roll)") from exc


# -------------------------------------------------------------------------------- together
KINDS = ("wav", "roll", "score")
SUFFIX = {"wav": ".wav", "roll": ".png", "score": ".musicxml"}


def output_path(stem: str | Path, kind: str) -> Path:
    """Where `render` writes one kind: STEM.wav, STEM.png or STEM.musicxml."""
    if kind not in SUFFIX:
        raise MusicGPTError(f"unknown render kind {kind!r}; expected one of {', '.join(KINDS)}")
    stem = Path(stem)
    return stem.with_name(stem.name + SUFFIX[kind])


def render(score: symusic.Score, stem: str | Path, kinds: tuple[str, ...] = KINDS,
           sample_rate: int = SAMPLE_RATE, marks: Sequence[int] = ()) -> list[Path]:
    """Write STEM.wav, STEM.png and/or STEM.musicxml; return the paths written.

    `marks`: ticks to draw as dashed lines on the piano roll."""
    stem = Path(stem)
    written = []
    for kind in kinds:
        path = output_path(stem, kind)
        if kind == "wav":
            write_wav(synthesize(score, sample_rate), path, sample_rate)
        elif kind == "roll":
            write_png(piano_roll(score, marks=marks), path)
        else:
            write_musicxml(score, path, title=stem.name)
        written.append(path)
    return written
