"""`classify --explain`: the evidence a listener weighs for a tune's mode, beside the rule
baselines, so a user can see why an answer is what it is.

Given a tonic (the classifier's), the duration-weighted share of the notes on each of the three
degrees that tell the diatonic modes apart: the third (minor or major), the sixth (minor against
dorian's major) and the seventh (major against mixolydian's minor); the final note, and the
lowest voice's; and three rules: the final note with the best-fitting scale on it, the
tonic/fifth-weighted profile (theory.estimate_key), and music21's Krumhansl-Schmuckler key finder
(major or minor only)."""

from __future__ import annotations

import numpy as np
import symusic

from musicgpt.theory import (
    PITCH_CLASSES,
    best_scale,
    final_bass_pc,
    pc_histogram,
    pitch_class,
    scale_fits,
    score_key,
)

# (degree, (semitones of its lower form, of its upper form), what the choice tells)
DEGREES = (("3rd", (3, 4), "minor: aeolian, dorian, phrygian; major: ionian, lydian, mixolydian"),
           ("6th", (8, 9), "minor: aeolian, phrygian; major: dorian, or a major mode"),
           ("7th", (10, 11), "minor: mixolydian, or a minor mode; major: ionian, lydian"))


def mode_evidence(score: symusic.Score, tonic: str) -> dict:
    """The degrees, finals and rules above, for `score` heard on `tonic`."""
    hist = pc_histogram(score)
    share = hist / (hist.sum() or 1.0)
    t = pitch_class(tonic)
    degrees = {}
    for name, (lower, upper), _ in DEGREES:
        degrees[name] = {"lower": [PITCH_CLASSES[(t + lower) % 12], round(float(share[(t + lower) % 12]), 3)],
                         "upper": [PITCH_CLASSES[(t + upper) % 12], round(float(share[(t + upper) % 12]), 3)]}
    final = _final_pc(score)
    bass = final_bass_pc(score)
    rule_tonic = bass if bass is not None else t
    kt, km = score_key(score)
    return {"tonic": PITCH_CLASSES[t], "degrees": degrees,
            "final": PITCH_CLASSES[final] if final is not None else None,
            "lowest_final": PITCH_CLASSES[bass] if bass is not None else None,
            "rules": {"final + best scale": f"{PITCH_CLASSES[rule_tonic]} "
                                            f"{best_scale(scale_fits(hist, rule_tonic))}",
                      "tonic/fifth profile": f"{PITCH_CLASSES[kt]} {km}",
                      "music21 analyze('key')": music21_key(score)}}


def _final_pc(score: symusic.Score) -> int | None:
    """Pitch class of the top voice's last note (the melody's final)."""
    tracks = [t for t in score.tracks if len(t.notes) and not t.is_drum]
    if not tracks:
        return None
    top = max(tracks, key=lambda t: float(np.mean([n.pitch for n in t.notes])))
    last = max(top.notes, key=lambda n: (n.time, n.pitch))
    return last.pitch % 12


def music21_key(score: symusic.Score) -> str | None:
    """music21's Krumhansl-Schmuckler answer ("G minor"), from the score's notes."""
    from music21 import key, note, stream

    s = stream.Stream()
    tpq = score.ticks_per_quarter
    for t in score.tracks:
        for n in t.notes:
            m = note.Note(n.pitch, quarterLength=max(n.duration / tpq, 1 / 16))
            s.insert(n.time / tpq, m)
    if not len(s.notes):
        return None
    k = s.analyze("key")
    assert isinstance(k, key.Key)
    return f"{k.tonic.name.replace('-', 'b')} {k.mode}"


def explain_lines(evidence: dict) -> list[str]:
    """The evidence as lines for the console."""
    out = [f"  evidence   on {evidence['tonic']} (the classifier's tonic); final {evidence['final']}, "
           f"lowest voice's final {evidence['lowest_final']}"]
    for name, _, tells in DEGREES:
        d = evidence["degrees"][name]
        (lo, lo_share), (hi, hi_share) = d["lower"], d["upper"]
        out.append(f"    {name}: {lo} {lo_share:.2f} against {hi} {hi_share:.2f} of the notes ({tells})")
    out.append("    rules: " + "; ".join(f"{k}: {v}" for k, v in evidence["rules"].items()))
    return out
