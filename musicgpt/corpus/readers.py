"""Reading one corpus source file into manifest rows: parts, labels, grouping keys, MIDI.

Runs inside build workers. Every label records its origin: "human" when the source states it,
else "derived:<rule>" with the rules below.

- derived:final+keysig: tonic = lowest note sounding at the last onset (the bass final); mode =
  the diatonic rotation on that tonic that best fits the duration-weighted pitch-class histogram,
  preferring the key signature's own rotation when it fits within HINT_MARGIN of the best.
- derived:K-tonic+scale: ABC tunes whose K: gives a tonic but no church mode (K:G, K:Em, Essen's
  tonic-only K:); tonic from K:, mode = best-fitting rotation on it, K:'s major/minor breaking ties.
- Either rule says "other" when no rotation covers FIT_MIN of the notes' duration.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from musicgpt import scores

PC_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
STEPS = {
    "ionian": (0, 2, 4, 5, 7, 9, 11), "dorian": (0, 2, 3, 5, 7, 9, 10),
    "phrygian": (0, 1, 3, 5, 7, 8, 10), "lydian": (0, 2, 4, 6, 7, 9, 11),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10), "aeolian": (0, 2, 3, 5, 7, 8, 10),
    "locrian": (0, 1, 3, 5, 6, 8, 10),
}
ROTATION = {0: "ionian", 2: "dorian", 4: "phrygian", 5: "lydian", 7: "mixolydian", 9: "aeolian", 11: "locrian"}
PREFERENCE = ("ionian", "aeolian", "dorian", "mixolydian", "phrygian", "lydian", "locrian")
MAJOR_THIRD = {"ionian", "lydian", "mixolydian"}
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


class Skip(Exception):
    """This piece cannot be used; the message says why."""


# --------------------------------------------------------------------------- labels


def pc_histogram(score: symusic.Score) -> np.ndarray:
    hist = np.zeros(12)
    for t in score.tracks:
        a = t.notes.numpy()
        np.add.at(hist, a["pitch"].astype(np.int64) % 12, a["duration"].astype(np.float64))
    return hist


def final_bass_pc(score: symusic.Score) -> int | None:
    """Pitch class of the lowest note sounding at the last onset."""
    arrays = [t.notes.numpy() for t in score.tracks if len(t.notes)]
    if not arrays:
        return None
    time = np.concatenate([a["time"] for a in arrays]).astype(np.int64)
    end = time + np.concatenate([a["duration"] for a in arrays])
    pitch = np.concatenate([a["pitch"] for a in arrays]).astype(np.int64)
    last = time.max()
    sounding = (time <= last) & (end > last)
    return int(pitch[sounding].min() % 12)


def scale_fits(hist: np.ndarray, tonic: int) -> dict[str, float]:
    total = hist.sum() or 1.0
    return {m: float(sum(hist[(tonic + s) % 12] for s in steps) / total) for m, steps in STEPS.items()}


def best_mode(hist: np.ndarray, tonic: int, hint: str | None) -> str:
    fits = scale_fits(hist, tonic)
    top = max(fits.values())
    if hint in fits and fits[hint] >= top - HINT_MARGIN and fits[hint] >= FIT_MIN:
        return hint
    if top < FIT_MIN:
        return "other"
    return next(m for m in PREFERENCE if fits[m] >= top - 1e-9)


def keysig_rotation(score: symusic.Score, tonic: int) -> str | None:
    if not len(score.key_signatures):
        return None
    major = (7 * int(score.key_signatures[0].key)) % 12
    return ROTATION.get((tonic - major) % 12)


def parse_k(value: str) -> tuple[int, str, str] | None:
    """ABC K: -> (tonic pc, tonic name, mode word) or None (K:none, K:HP...)."""
    m = ABC_K.match(value)
    if not m:
        return None
    letter, acc, word = m.group(1), m.group(2), m.group(3).lower()
    word3 = word[:3] if word not in ("m",) else "m"
    if word3 not in MODE_WORDS:
        word3 = ""  # e.g. "K:G -8va" or clef words: a plain major key
    pc = ("C", "D", "E", "F", "G", "A", "B").index(letter)
    pc = ((0, 2, 4, 5, 7, 9, 11)[pc] + {"#": 1, "b": -1, "": 0}[acc]) % 12
    return pc, letter + acc, word3


def key_fields(mode: str, tonic_pc: int | None, tonic_name: str | None, source: str) -> dict[str, Any]:
    name = tonic_name or (PC_NAMES[tonic_pc] if tonic_pc is not None else None)
    key_mode = None if mode == "other" else ("major" if mode in MAJOR_THIRD else "minor")
    return {"tonic": name, "key_mode": key_mode, "key_source": source}


def derived_final(score: symusic.Score) -> dict[str, Any]:
    tonic = final_bass_pc(score)
    if tonic is None:
        raise Skip("no notes")
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
    pc = parse_k(name)
    mode = MODE_WORDS[m.group(3)]
    return {"mode": mode, "mode_source": "human", **key_fields(mode, pc[0] if pc else None, name, "human")}


# --------------------------------------------------------------------------- grouping keys


def melody_line(score: symusic.Score, grid: str = "note", skeleton: bool = False) -> list[int]:
    """The top voice's pitches with repeats collapsed: every onset ("note", highest pitch per
    onset) or the pitch sounding on each quarter beat ("beat": skips passing notes, so two
    harmonisations of one chorale tune that ornament it differently still match); `skeleton`
    also drops neighbour notes (a b a -> a) from the beat line."""
    if not len(score.tracks) or not len(score.tracks[0].notes):
        return []
    a = score.tracks[0].notes.numpy()
    start = a["time"].astype(np.int64)
    pitch = a["pitch"].astype(np.int64)
    if grid == "beat":
        end = start + a["duration"]
        tpq = score.ticks_per_quarter
        seq = []
        for b in range(0, int(end.max()), tpq):
            on = (start <= b) & (end > b)
            if on.any():
                seq.append(int(pitch[on].max()))
        out: list[int] = []
        for p in seq:
            if out and out[-1] == p:
                continue
            if skeleton and len(out) >= 2 and out[-2] == p:
                out.pop()
                continue
            out.append(p)
        return out
    else:
        order = np.lexsort((-pitch, start))
        first = np.ones(len(order), dtype=bool)
        first[1:] = start[order][1:] != start[order][:-1]
        seq = [int(p) for p in pitch[order][first]]
    return [p for i, p in enumerate(seq) if i == 0 or seq[i - 1] != p]


LINE_KEEP = 40  # pitches of each melody line kept in the cache for grouping


def melody_lines(score: symusic.Score, grid: str = "note") -> list[list[int]]:
    """The opening of the top voice's line(s) used for grouping: one line, or two for "beat"."""
    skeletons = (False, True) if grid == "beat" else (False,)
    return [melody_line(score, grid, sk)[:LINE_KEEP] for sk in skeletons]


def melody_keys(lines: list[list[int]], length: int, offsets: tuple[int, ...] = (0,)) -> list[str]:
    """Transposition-invariant signatures: windows of `length` intervals of each line, starting
    at each of `offsets` (a later window still matches when the openings differ)."""
    keys = set()
    for line in lines:
        iv = [b - a for a, b in zip(line, line[1:])]
        keys.update("mel:" + ",".join(map(str, iv[o: o + length])) for o in offsets if len(iv) >= o + length)
    return sorted(keys)


def notes_key(score: symusic.Score) -> str:
    h = hashlib.sha1()
    for t in score.tracks:
        a = t.notes.numpy()
        h.update(np.stack([a["time"], a["duration"], a["pitch"].astype(np.int32)]).tobytes())
    return "notes:" + h.hexdigest()[:20]


def norm_title(title: str | None) -> str | None:
    if not title:
        return None
    t = re.sub(r"^[\d\s.()]+", "", title.lower())
    t = re.sub(r"^the\s+", "", t)
    t = re.sub(r"[^a-zäöüß]+", "", t)
    return t if len(t) >= 5 and t not in GENERIC_TITLES else None


GENERIC_TITLES = {"untitled", "noname", "anonymous", "reel", "jig", "hornpipe", "strathspey", "air", "march", "song", "lied", "tune"}


def sha(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha1(data).hexdigest()[:20]


# --------------------------------------------------------------------------- readers

DEFAULT_COMPOSER = {
    "bach-chorales": "Johann Sebastian Bach", "monteverdi": "Claudio Monteverdi",
    "josquin": "Josquin des Prez", "palestrina": "Giovanni Pierluigi da Palestrina",
}
VOICE_WORDS = ("soprano", "alto", "tenor", "bass")
TITLE_TAGS = re.compile(r"<(?:credit-words|work-title|movement-title)[^>]*>([^<]*)<")


def read_source(recipe: Any, rel: str, path: Path, pid: str, corpus_dir: Path) -> dict[str, Any]:
    """All pieces of one source file as manifest rows (with `_keys`), MIDI written."""
    reader = recipe.reader
    if reader == "files":
        suffix = path.suffix.lower()
        if suffix in scores.MIDI_SUFFIXES:
            reader = "midi"
        elif suffix == ".abc":
            reader = "abc-tunes"
        elif suffix in scores.M21_SUFFIXES:
            reader = "score"
        else:
            raise Skip(f"unknown file type {suffix or '(none)'}; expected {', '.join(scores.SCORE_SUFFIXES)}")
    pieces, skipped = [], []
    if reader == "abc-tunes":
        for tune_id, text, meta in split_abc(path.read_text(encoding="utf-8", errors="replace"), pid):
            try:
                score = scores.m21_to_score(_parse_abc(text))
                pieces.append(_finish(recipe, rel, tune_id, score, meta, corpus_dir))
            except Exception as exc:  # one bad tune never costs the book
                skipped.append([f"{rel} {tune_id.rsplit('/', 1)[-1]}", scores.one_line(exc)])
        return {"pieces": pieces, "skipped": skipped}
    read = {"bach": _read_bach, "score": _read_score, "josquin": _read_josquin, "midi": _read_midi}[reader]
    score, meta = read(recipe, rel, path)
    return {"pieces": [_finish(recipe, rel, pid, score, meta, corpus_dir)], "skipped": []}


def _finish(recipe: Any, rel: str, pid: str, score: symusic.Score, meta: dict[str, Any], corpus_dir: Path) -> dict[str, Any]:
    if score.note_num() == 0:
        raise Skip("no pitched notes")
    keys = set(meta.get("keys", ()))
    keys.add(notes_key(score))
    labels = _mode_labels(recipe, score, meta)
    style, style_source = _style(recipe, rel, meta)
    midi_rel = f"midi/{pid}.mid"
    scores.write_midi(score, corpus_dir / midi_rel)
    ts = score.time_signatures
    return {
        "id": pid, "corpus": recipe.name, "source": rel, "midi": midi_rel,
        "composer": DEFAULT_COMPOSER.get(recipe.name) or meta.get("composer"),
        "title": meta.get("title"), "style": style, "style_source": style_source, **labels,
        "voices": len(score.tracks), "notes": int(score.note_num()),
        "meter": f"{ts[0].numerator}/{ts[0].denominator}" if len(ts) else None,
        "_keys": sorted(keys),
        "_lines": melody_lines(score, recipe.melody_grid) if "melody" in recipe.group_rules else [],
    }


def _mode_labels(recipe: Any, score: symusic.Score, meta: dict[str, Any]) -> dict[str, Any]:
    if recipe.mode_rule == "label":
        mode = dict(recipe.labels)["mode"]
        tonic = final_bass_pc(score)
        return {"mode": mode, "mode_source": "human", **key_fields(mode, tonic, None, "derived:final+keysig")}
    if recipe.mode_rule == "kern" and meta.get("text"):
        return from_kern(score, meta["text"])
    if recipe.mode_rule in ("abc-K", "abc-K-modal") and meta.get("k"):
        return from_k(score, meta["k"], modal_editor=recipe.mode_rule == "abc-K-modal")
    return derived_final(score)


def _style(recipe: Any, rel: str, meta: dict[str, Any]) -> tuple[str | None, str | None]:
    if recipe.style:
        return recipe.style, "human"
    rule = recipe.style_rule
    if rule == "folk-book":
        return ("folk-song" if rel.startswith("essenFolksong/") else "fiddle-tune"), "human"
    if rule == "josquin-table":
        return {"4vPerIlludAveProlatum": "motet"}.get(Path(rel).stem, "chanson"), "human"
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


def _m21_meta(s: Any, path: Path) -> dict[str, Any]:
    md = s.metadata
    title = movement = composer = None
    if md is not None:
        title, movement, composer = md.title, md.movementName, md.composer
    if movement and movement.lower().endswith((".xml", ".mxl", ".krn", ".musicxml")):
        movement = None
    return {"title": title or movement or path.stem, "movement": movement, "composer": composer}


def title_from_filename(stem: str) -> str:
    """'PMFC_06_Giovanni-03-Chon_brachi_assai' -> 'Chon brachi assai'."""
    t = re.sub(r"^PMFC[\d_ ]*[a-z]?[-_ ]*", "", stem)
    t = re.sub(r"^(?:Jacopo|Giovanni|Piero)[-_ ]*\d+[a-z]?[-_ ]*", "", t)
    t = re.sub(r"^\d+[a-z]?[-_ ]+", "", t)
    return " ".join(re.sub(r"[-_]+", " ", t).split()) or stem


def _voice_word(name: str | None) -> bool:
    words = re.split(r"[\s\r\n]+", (name or "").strip().lower())
    return bool(words) and words[0] in VOICE_WORDS


def _read_bach(recipe: Any, rel: str, path: Path) -> tuple[symusic.Score, dict[str, Any]]:
    from music21 import stream

    s = scores.parse_m21(path)
    parts = list(s.parts)
    voices = [p for p in parts if _voice_word(p.partName)]
    if not voices and len(parts) == 4:  # kern files name no parts
        voices = parts
    if len(voices) < 4:
        raise Skip(f"no S/A/T/B parts among {[p.partName for p in parts]}")
    satb = stream.Score()
    for p in voices:
        satb.insert(0, p)
    score = scores.assign_voice_programs(scores.m21_to_score(satb))
    meta = _m21_meta(s, path)
    title = _chorale_title(path.name) or meta["title"]
    meta["title"] = re.sub(r"^\d+\.\s*", "", title) if title else None
    stem = re.sub(r"-[a-z0-9]+$", "", path.stem)
    meta["keys"] = [f"stem:{stem}", "src:" + sha(path.read_bytes())]
    return score, meta


def _chorale_title(filename: str) -> str | None:
    m = re.fullmatch(r"bwv(\d+)\.(?:mxl|xml|krn)", filename)
    if not m:
        return None
    entry = _chorale_list().get(int(m.group(1)))
    return entry["title"] if entry else None


_CHORALES: dict[int, dict] | None = None


def _chorale_list() -> dict[int, dict]:
    global _CHORALES
    if _CHORALES is None:
        from music21.corpus import chorales

        _CHORALES = {int(k): v for k, v in chorales.ChoraleList().byBWV.items()}
    return _CHORALES


def _read_score(recipe: Any, rel: str, path: Path) -> tuple[symusic.Score, dict[str, Any]]:
    s = scores.parse_m21(path)
    score = scores.m21_to_score(s)
    meta = _m21_meta(s, path)
    if recipe.title_rule == "filename":  # "PMFC_24_21-O proles hispanie.xml" -> "O proles hispanie"
        meta["title"] = title_from_filename(path.stem)
    analysis = path.with_suffix(".rntxt")  # Monteverdi: the analysis file beside it names the piece
    if analysis.is_file():
        found = re.search(r"^Title:\s*(.+?)\s*$", analysis.read_text(encoding="utf-8", errors="replace"), re.M)
        if found:
            meta["title"] = found.group(1)
    raw = path.read_bytes()
    meta["keys"] = ["src:" + sha(raw)]
    if path.suffix.lower() in (".krn", ".xml", ".musicxml"):
        meta["text"] = raw.decode("utf-8", errors="replace")
    if path.suffix.lower() == ".krn":
        ref = dict(re.findall(r"^!!!(\w+):\s*(.*?)\s*$", meta["text"], re.M))
        if ref.get("OPR"):
            meta["title"] = f"{ref['OPR']}: {ref.get('OTL') or ref.get('OMD') or path.stem}"
            meta["keys"].append("mass:" + ref["OPR"].lower())
        meta["composer"] = ref.get("COM") or meta["composer"]
    return score, meta


def _read_midi(recipe: Any, rel: str, path: Path) -> tuple[symusic.Score, dict[str, Any]]:
    score = scores.assign_voice_programs(scores.load_score(path))
    if score.ticks_per_quarter != 480:
        score = score.resample(480)
    return score, {"title": path.stem, "keys": ["src:" + sha(path.read_bytes())]}


def _read_josquin(recipe: Any, rel: str, path: Path) -> tuple[symusic.Score, dict[str, Any]]:
    """Each X: tune of the file is one voice of the piece: merge them into one score."""
    text = path.read_text(encoding="utf-8", errors="replace")
    score = scores.m21_to_score(scores.merge_voices(scores.parse_m21_all(path)))
    titles = re.findall(r"^T:\s*(.+?)\s*$", text, re.M)
    return score, {
        "title": titles[0] if titles else path.stem,
        "k": re.findall(r"^K:\s*(.+?)\s*$", text, re.M),
        "keys": ["src:" + sha(text)],
    }


def split_abc(text: str, base_id: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(piece id, header + tune text, meta) for each X: tune of an ABC book."""
    lines = text.splitlines()
    starts = [i for i, ln in enumerate(lines) if re.match(r"^X:", ln)]
    header = "\n".join(ln for ln in lines[: starts[0] if starts else 0] if not ln.startswith("%"))
    out, seen = [], set()
    for n, start in enumerate(starts):
        body = lines[start: starts[n + 1] if n + 1 < len(starts) else len(lines)]
        x = re.sub(r"[^A-Za-z0-9]+", "", body[0][2:]) or str(n + 1)
        tune_id = f"{base_id}/{x}"
        if tune_id in seen:
            tune_id = f"{base_id}/{x}-{n + 1}"
        seen.add(tune_id)
        fields = {}
        for ln in body:
            m = re.match(r"^([TCK]):\s*(.*?)\s*$", ln)
            if m and m.group(1) not in fields:
                fields[m.group(1)] = m.group(2)
        music = " ".join(" ".join(ln.split()) for ln in body[1:] if ln.strip() and not ln.startswith("%"))
        out.append((tune_id, header + "\n" + "\n".join(body) + "\n", {
            "title": fields.get("T") or None, "composer": fields.get("C") or None,
            "k": [fields["K"]] if fields.get("K") else [], "keys": ["src:" + sha(music)],
        }))
    return out


def _parse_abc(text: str) -> Any:
    from music21 import converter, stream

    parsed = converter.parse(text, format="abc")
    if isinstance(parsed, stream.Opus):
        parsed = parsed.scores[0]
    return parsed
