"""Built corpora on disk: where they lie, their recipes and manifest rows, and summary counts."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from musicgpt.corpus.recipes import ALL, CORPORA, Recipe, recipe_from_dict
from musicgpt.errors import MusicGPTError

MANIFEST = "manifest.jsonl"
RECIPE = "recipe.json"


def corpora_root() -> Path:
    env = os.environ.get("MUSICGPT_CORPORA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "corpora"


def music21_corpus_dir() -> Path:
    import music21.corpus

    return Path(music21.corpus.__file__).resolve().parent


def root_dir(root: Path | str | None) -> Path:
    """`root`, or the default corpora folder for None."""
    return Path(root) if root is not None else corpora_root()


def get_recipe(name: str, root: Path | None = None) -> Recipe:
    """A named recipe, or a user corpus's recipe.json (made by `build --from`)."""
    if name in CORPORA:
        return CORPORA[name]
    path = root_dir(root) / name / RECIPE
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return recipe_from_dict(data)
    known = ", ".join([*CORPORA, ALL])
    raise MusicGPTError(f"unknown corpus {name!r}; known corpora: {known} "
                        "(or build one from a folder, `src`)")


def names(root: Path | None = None) -> list[str]:
    """Named corpora first, then user corpora found under the root."""
    out = list(CORPORA)
    base = root_dir(root)
    if base.is_dir():
        out += sorted(p.parent.name for p in base.glob(f"*/{RECIPE}") if p.parent.name not in CORPORA)
    return out


def load_manifest(name: str, root: Path | None = None) -> list[dict[str, Any]]:
    """Rows of a built corpus; 'all' is the union of the named corpora."""
    if name == ALL:
        return [row for n in CORPORA for row in load_manifest(n, root)]
    path = root_dir(root) / name / MANIFEST
    if not path.is_file():
        get_recipe(name, root)  # unknown names get the clearer message
        raise MusicGPTError(f"corpus {name} is not built; run `musicgpt corpus build {name}`")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def midi_path(name: str, row: dict[str, Any], root: Path | None = None) -> Path:
    """Where a row's built MIDI lies (the row's own corpus when `name` is 'all')."""
    return root_dir(root) / row.get("corpus", name) / row["midi"]


def info(name: str, root: Path | None = None) -> dict[str, Any]:
    """Counts a README table or `corpus info` shows: pieces, groups, splits, label distributions."""
    rows = load_manifest(name, root)
    split = Counter(r["split"] for r in rows)
    return {
        "corpus": name,
        "pieces": len(rows),
        "groups": len({(r["corpus"], r["group"]) for r in rows}),
        "train": split.get("train", 0),
        "test": split.get("test", 0),
        "notes": sum(r["notes"] for r in rows),
        "style": dict(Counter(r["style"] for r in rows).most_common()),
        "style_source": dict(Counter(r["style_source"] for r in rows).most_common()),
        "mode": dict(Counter(r["mode"] for r in rows).most_common()),
        "mode_source": dict(Counter(r["mode_source"] for r in rows).most_common()),
        "voices": dict(sorted(Counter(r["voices"] for r in rows).items())),
        "meter": dict(Counter(r["meter"] for r in rows).most_common(8)),
    }

