"""Mode, key and style labels of one corpus piece. Every label records its origin: "human" when
the source states it, else "derived:<rule>" with the rules below.

- derived:final+keysig: tonic = theory.final_bass_pc (the lowest note sounding at the last
  onset); mode = the diatonic rotation on that tonic that best fits the duration-weighted
  pitch-class histogram, preferring the key signature's own rotation when it fits within
  HINT_MARGIN of the best.
- derived:K-tonic+scale: ABC tunes whose K: gives a tonic but no church mode (K:G, K:Em, Essen's
  tonic-only K:); tonic from K:, mode = best-fitting rotation on it, K:'s major/minor breaking ties.
- Either rule says "other" when no rotation covers FIT_MIN of the notes' duration.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musicgpt.corpus.recipes import Recipe
from musicgpt.errors import MusicGPTError
from musicgpt.theory import (
    MAJOR_THIRD,
    PITCH_CLASSES,
    ROTATION,
    best_scale,
    final_bass_pc,
    keysig_tonic,
    pc_histogram,
    pitch_class,
    scale_fits,
)

FIT_MIN = 0.85
HINT_MARGIN = 0.01
MODE_WORDS = {
    "ion": "ionian", "maj": "ionian", "": "ionian", "dor": "dorian", "phr": "phrygian",
    "lyd": "lydian", "mix": "mixolydian", "aeo": "aeolian", "min": "aeolian", "m": "aeolian",
    "loc": "locrian",
}
STATED_MODES = {"ion", "dor", "phr", "lyd", "mix", "aeo", "loc"}  # a church mode by name
KERN_MODE = re.compile(r"^\*([A-Ga-g])([#-]?):([a-z]{3})?", re.M)
ABC_K = re.compile(r"^\s*([A-G])([#b]?)\s*([A-Za-z]*)")
TRECENTO_GENRES = (
    ("caccia", r"caccia"), ("ballata", r"ballat[ae]"), ("madrigal", r"madrigal"),
    ("mass", r"gloria|credo|kyrie|sanctus|agnus"), ("benedicamus", r"benedicamus"),
)
TITLE_TAGS = re.compile(r"<(?:credit-words|work-title|movement-title)[^>]*>([^<]*)<")
JOSQUIN_STYLE = {"4vPerIlludAveProlatum": "motet"}  # the rest are chansons


# --------------------------------------------------------------------------- mode and key
def best_mode(hist: np.ndarray, tonic: int, hint: str | None) -> str:
    fits = scale_fits(hist, tonic)
    top = max(fits.values())
    if hint in fits and fits[hint] >= top - HINT_MARGIN and fits[hint] >= FIT_MIN:
        return hint
    if top < FIT_MIN:
        return "other"
    return best_scale(fits)


def keysig_rotation(score: symusic.Score, tonic: int) -> str | None:
    if not len(score.key_signatures):
        return None
    return ROTATION.get((tonic - keysig_tonic(score.key_signatures[0].key)) % 12)


def parse_k(value: str) -> tuple[int, str, str] | None:
    """ABC K: -> (tonic pc, tonic name, mode word) or None (K:none, K:HP...)."""
    m = ABC_K.match(value)
    if not m:
        return None
    letter, acc, word = m.group(1), m.group(2), m.group(3).lower()
    word3 = word[:3] if word not in ("m",) else "m"
    if word3 not in MODE_WORDS:
        word3 = ""  # e.g. "K:G -8va" or clef words: a plain major key
    return pitch_class(letter + acc), letter + acc, word3


def key_fields(mode: str, tonic_pc: int | None, tonic_name: str | None, source: str) -> dict[str, Any]:
    name = tonic_name or (PITCH_CLASSES[tonic_pc] if tonic_pc is not None else None)
    key_mode = None if mode == "other" else ("major" if mode in MAJOR_THIRD else "minor")
    return {"tonic": name, "key_mode": key_mode, "key_source": source}


def derived_final(score: symusic.Score) -> dict[str, Any]:
    tonic = final_bass_pc(score)
    if tonic is None:
        raise MusicGPTError("no notes")
    mode = best_mode(pc_histogram(score), tonic, keysig_rotation(score, tonic))
    rule = "derived:final+keysig"
    return {"mode": mode, "mode_source": rule, **key_fields(mode, tonic, None, rule)}


def from_k(score: symusic.Score, k_values: list[str], modal_editor: bool = False) -> dict[str, Any]:
    """Mode from ABC K: lines: a named church mode is human; else derived on K:'s tonic.

    `modal_editor`: the editor wrote K: as a mode (Josquin), so K:A min is Aeolian and K:F Ionian.
    """
    parsed = [p for p in (parse_k(v) for v in k_values) if p]
    if not parsed:
        return derived_final(score)
    stated = [p for p in parsed if modal_editor or p[2] in STATED_MODES]
    if stated:  # the most common stated mode among voices (Josquin), first on ties
        best = max(stated, key=lambda p: sum(q[2] == p[2] and q[0] == p[0] for q in stated))
        mode = MODE_WORDS[best[2]]
        return {"mode": mode, "mode_source": "human", **key_fields(mode, best[0], best[1], "human")}
    pc, name, word = parsed[0]
    mode = best_mode(pc_histogram(score), pc, MODE_WORDS[word])
    return {"mode": mode, "mode_source": "derived:K-tonic+scale", **key_fields(mode, pc, name, "human")}


def from_kern(score: symusic.Score, text: str) -> dict[str, Any]:
    m = KERN_MODE.search(text)
    if not m or not m.group(3) or m.group(3) not in MODE_WORDS:
        return derived_final(score)
    name = m.group(1).upper() + {"#": "#", "-": "b", "": ""}[m.group(2)]
    mode = MODE_WORDS[m.group(3)]
    return {"mode": mode, "mode_source": "human", **key_fields(mode, pitch_class(name), name, "human")}


def mode_labels(recipe: Recipe, score: symusic.Score, meta: dict[str, Any]) -> dict[str, Any]:
    """mode, mode_source, tonic, key_mode, key_source of one piece, by the recipe's mode_rule."""
    if recipe.mode_rule == "label":
        mode = dict(recipe.labels)["mode"]
        tonic = final_bass_pc(score)
        return {"mode": mode, "mode_source": "human", **key_fields(mode, tonic, None, "derived:final+keysig")}
    if recipe.mode_rule == "kern" and meta.get("text"):
        return from_kern(score, meta["text"])
    if recipe.mode_rule in ("abc-K", "abc-K-modal") and meta.get("k"):
        return from_k(score, meta["k"], modal_editor=recipe.mode_rule == "abc-K-modal")
    return derived_final(score)


# --------------------------------------------------------------------------- style
def style_label(recipe: Recipe, rel: str, meta: dict[str, Any]) -> tuple[str | None, str | None]:
    """(style, style_source) of one piece, by the recipe's fixed style or its style_rule."""
    if recipe.style:
        return recipe.style, "human"
    rule = recipe.style_rule
    if rule == "folk-book":
        return ("folk-song" if rel.startswith("essenFolksong/") else "fiddle-tune"), "human"
    if rule == "josquin-table":
        return JOSQUIN_STYLE.get(Path(rel).stem, "chanson"), "human"
    if rule == "trecento-genre":
        # the file name first: the Ciconia files' own titles are copy-paste errors ("Gloria" on motets)
        for genre, pattern in TRECENTO_GENRES[3:]:
            if re.search(pattern, rel.lower()):
                return genre, "human"
        words = " ".join(TITLE_TAGS.findall(meta.get("text") or "")).lower()
        for genre, pattern in TRECENTO_GENRES[:3]:
            if re.search(pattern, words):
                return genre, "human"
        if "PMFC_06" in rel:  # PMFC vol. 6: Italian secular music, madrigals and cacce
            return "madrigal", "derived:trecento-volume"
        return "motet", "derived:trecento-volume"  # Vitry (vol. 1), Ciconia (vol. 24), Fava
    return None, None
