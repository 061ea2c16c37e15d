"""Reading one corpus source file into manifest rows (parts, labels, grouping keys) and its MIDI.

Runs inside build workers. A reader turns a source file into one Score per piece and its
metadata; `_finish` normalises the Score (scores.normalize), labels it (labels.py), computes its
grouping keys (grouping.py) and writes its MIDI.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import symusic

from musicgpt import scores
from musicgpt.corpus.grouping import melody_lines, notes_key, sha
from musicgpt.corpus.labels import mode_labels, style_label
from musicgpt.corpus.recipes import Recipe
from musicgpt.theory import TICKS_PER_QUARTER


class Skip(Exception):
    """This piece cannot be used; the message says why."""



DEFAULT_COMPOSER = {
    "bach-chorales": "Johann Sebastian Bach", "monteverdi": "Claudio Monteverdi",
    "josquin": "Josquin des Prez", "palestrina": "Giovanni Pierluigi da Palestrina",
}
VOICE_WORDS = ("soprano", "alto", "tenor", "bass")


def read_source(recipe: Recipe, rel: str, path: Path, pid: str, corpus_dir: Path) -> dict[str, Any]:
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


def _finish(recipe: Recipe, rel: str, pid: str, score: symusic.Score, meta: dict[str, Any],
            corpus_dir: Path) -> dict[str, Any]:
    score = scores.normalize(score)  # the tokenizer's one input form, for every corpus
    if score.note_num() == 0:
        raise Skip("no pitched notes")
    keys = set(meta.get("keys", ()))
    keys.add(notes_key(score))
    labels = mode_labels(recipe, score, meta)
    style, style_source = style_label(recipe, rel, meta)
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


def _read_bach(recipe: Recipe, rel: str, path: Path) -> tuple[symusic.Score, dict[str, Any]]:
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
    score = scores.m21_to_score(satb)
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


def _read_score(recipe: Recipe, rel: str, path: Path) -> tuple[symusic.Score, dict[str, Any]]:
    s = scores.parse_m21(path)
    score = scores.m21_to_score(s)
    meta = _m21_meta(s, path)
    if recipe.title_rule == "filename":  # "PMFC_24_21-O proles hispanie.xml" -> "O proles hispanie"
        meta["title"] = title_from_filename(path.stem)
    analysis = path.with_suffix(".rntxt")  # Monteverdi: the analysis file beside it names the piece
    if analysis.is_file():
        text = analysis.read_text(encoding="utf-8", errors="replace")
        found = re.search(r"^Title:\s*(.+?)\s*$", text, re.M)
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


def _read_midi(recipe: Recipe, rel: str, path: Path) -> tuple[symusic.Score, dict[str, Any]]:
    score = scores.load_score(path)
    if score.ticks_per_quarter != TICKS_PER_QUARTER:
        score = score.resample(TICKS_PER_QUARTER)
    return score, {"title": path.stem, "keys": ["src:" + sha(path.read_bytes())]}


def _read_josquin(recipe: Recipe, rel: str, path: Path) -> tuple[symusic.Score, dict[str, Any]]:
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
