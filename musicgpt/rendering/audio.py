"""Audio (WAV) of a score, synthesised here, not by pretty_midi's `synthesize`.

pretty_midi decays every note exponentially (a held note falls to a third of its level in one
second, like a plucked string), while this music is sung or played on the organ, and the long
notes of a mass would fade out half-way. Ours holds each note at a steady level, with a few
organ-like harmonics (the MIDI programs we write are organ sounds), a 10 ms attack and an 80 ms
release. No sound font is needed, so it works on any machine.
"""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np
import symusic

from musicgpt.atomic import atomic_path
from musicgpt.config import SAMPLE_RATE

HARMONICS = (1.0, 0.5, 0.3, 0.15)  # amplitude of partials 1..4: a soft organ flue stop
ATTACK_S = 0.01
RELEASE_S = 0.08


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
