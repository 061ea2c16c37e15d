"""Named corpora built from music21's bundled scores: labels, leak-free split, manifest, build.

A corpus lives in `corpora/<name>/`: `recipe.json` (what to read and how to label it),
`manifest.jsonl` (one row per piece, committed) and `midi/` (the built MIDI, a cache).
Labels record where they came from: "human" when the source states them, else the rule name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from musicgpt.config import MODES
from musicgpt.atomic import write_text_atomic
from musicgpt.errors import MusicGPTError

log = logging.getLogger(__name__)

EXTRACT_VERSION = 5  # bump when piece extraction changes: every cached piece is rebuilt
TRAIN_SHARE = 0.8
MANIFEST = "manifest.jsonl"
RECIPE = "recipe.json"
POST_FIELDS = ("description", "melody_len", "melody_offsets")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How to read one corpus. `sources` are globs under `source_root` (music21's corpus dir)."""

    name: str
    description: str
    sources: tuple[str, ...]
    reader: str = "score"  # score | bach | abc-tunes | josquin | files
    exclude: tuple[str, ...] = ()
    style: str = ""  # fixed style label; "" means `style_rule` decides per piece
    style_rule: str = ""  # trecento-genre | folk-book | josquin-table
    mode_rule: str = "final+keysig"  # kern | abc-K | abc-K-modal | final+keysig | label
    group_rules: tuple[str, ...] = ("content",)  # content | melody | title | stem | mass
    melody_len: int = 12  # intervals in the melody signature used for grouping
    melody_grid: str = "note"  # "note": every onset; "beat": the pitch on each quarter beat
    melody_offsets: tuple[int, ...] = (0,)  # where the signature windows start, in intervals
    title_rule: str = "metadata"  # "filename": the file name names the piece (Trecento)
    source_root: str = "music21"  # "music21" or an absolute folder (user corpora)
    labels: tuple[tuple[str, str], ...] = ()  # fixed labels for user corpora (--label)


CORPORA: dict[str, Recipe] = {
    r.name: r
    for r in (
        Recipe(
            "bach-chorales", "J.S. Bach's four-part chorales, S/A/T/B parts only",
            ("bach/*.mxl", "bach/*.xml", "bach/*.krn"), reader="bach", exclude=("bach/bwv846.mxl",),
            style="chorale", mode_rule="final+keysig",
            group_rules=("content", "melody", "title", "stem"), melody_len=10, melody_grid="beat",
            melody_offsets=(0, 3),
        ),
        Recipe(
            "palestrina", "Palestrina's mass sections (Humdrum kern)", ("palestrina/*.krn",),
            style="mass", mode_rule="kern", group_rules=("content", "mass"),
        ),
        Recipe(
            "trecento", "Trecento madrigals, ballate, cacce, motets and mass movements",
            ("trecento/*.xml", "trecento/*.mxl"), style_rule="trecento-genre", title_rule="filename",
            mode_rule="final+keysig", group_rules=("content", "melody"), melody_len=16,
        ),
        Recipe(
            "monteverdi", "Monteverdi's madrigals (books 3-5)", ("monteverdi/*.mxl",),
            style="madrigal", mode_rule="final+keysig", group_rules=("content", "melody"), melody_len=16,
        ),
        Recipe(
            "folk", "Folk songs (Essen) and fiddle tunes (O'Neill, Ryan, Aird, misc.)",
            ("essenFolksong/*.abc", "oneills1850/*.abc", "ryansMammoth/*.abc",
             "airdsAirs/*.abc", "miscFolk/*.abc"),
            reader="abc-tunes", style_rule="folk-book", mode_rule="abc-K",
            group_rules=("content", "melody", "title"), melody_len=16,
        ),
        Recipe(
            "josquin", "Josquin's chansons and a motet (one ABC tune per voice, merged)",
            ("josquin/*.abc",), reader="josquin", style_rule="josquin-table", mode_rule="abc-K-modal",
            group_rules=("content",),
        ),
    )
}
ALL = "all"
JOSQUIN_STYLE = {"4vPerIlludAveProlatum": "motet"}  # the rest are chansons
FIDDLE_BOOKS = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")


def work_of(row: dict[str, Any]) -> str:
    """The work a file belongs to. A recipe grouped by "mass" splits each mass into one file per
    section, and its group is the mass (its mode is labelled per mass), so the group names the
    work; any other file is a work of its own (a tune family's harmonisations are separate works,
    possibly in different keys)."""
    recipe = CORPORA.get(str(row.get("corpus", "")))
    if recipe is not None and "mass" in recipe.group_rules and row.get("group"):
        return str(row["group"])
    return str(row["id"])


def corpora_root() -> Path:
    env = os.environ.get("MUSICGPT_CORPORA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "corpora"


def music21_corpus_dir() -> Path:
    import music21.corpus

    return Path(music21.corpus.__file__).resolve().parent


def _root(root: Path | str | None) -> Path:
    return Path(root) if root is not None else corpora_root()


def get_recipe(name: str, root: Path | None = None) -> Recipe:
    """A named recipe, or a user corpus's recipe.json (made by `build --from`)."""
    if name in CORPORA:
        return CORPORA[name]
    path = _root(root) / name / RECIPE
    if path.is_file():
        data = json.loads(path.read_text(encoding="utf-8"))
        return recipe_from_dict(data)
    known = ", ".join([*CORPORA, ALL])
    raise MusicGPTError(f"unknown corpus {name!r}; known corpora: {known} (or build one with --from DIR)")


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    names = {f.name for f in dataclasses.fields(Recipe)}
    kw = {k: v for k, v in data.items() if k in names}
    for k in ("sources", "exclude", "group_rules", "melody_offsets"):
        kw[k] = tuple(kw.get(k, ()))
    kw["labels"] = tuple(tuple(p) for p in kw.get("labels", ()))
    return Recipe(**kw)


def names(root: Path | None = None) -> list[str]:
    """Named corpora first, then user corpora found under the root."""
    out = list(CORPORA)
    base = _root(root)
    if base.is_dir():
        out += sorted(p.parent.name for p in base.glob(f"*/{RECIPE}") if p.parent.name not in CORPORA)
    return out


# --------------------------------------------------------------------------- manifest access


def load_manifest(name: str, root: Path | None = None) -> list[dict[str, Any]]:
    """Rows of a built corpus; 'all' is the union of the named corpora."""
    if name == ALL:
        return [row for n in CORPORA for row in load_manifest(n, root)]
    path = _root(root) / name / MANIFEST
    if not path.is_file():
        get_recipe(name, root)  # unknown names get the clearer message
        raise MusicGPTError(f"corpus {name} is not built; run `musicgpt corpus build {name}`")
    with path.open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def midi_path(name: str, row: dict[str, Any], root: Path | None = None) -> Path:
    """Where a row's built MIDI lies (the row's own corpus when `name` is 'all')."""
    return _root(root) / row.get("corpus", name) / row["midi"]


# --------------------------------------------------------------------------- grouping and split


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def grouping_keys(recipe: Recipe, piece: dict[str, Any]) -> list[str]:
    """Keys that tie a piece to others: content hashes and file stems (from the worker), melody
    signatures and normalised titles (computed here, so tuning them needs no re-parse)."""
    from musicgpt.corpus import readers as corpus_read

    keys = list(piece.get("_keys", ()))
    rules = recipe.group_rules
    if "melody" in rules:
        keys += corpus_read.melody_keys(piece.get("_lines", []), recipe.melody_len, tuple(recipe.melody_offsets))
    if "title" in rules and (t := corpus_read.norm_title(piece.get("title"))):
        keys.append("title:" + t)
    return [k for k in keys if "stem" in rules or not k.startswith("stem:")]


def assign_groups(pieces: list[dict[str, Any]], recipe: Recipe | None = None) -> None:
    """Set row['group']: pieces sharing any grouping key fall in one group (union-find).

    The group is named by its smallest piece id, so it does not depend on file order.
    """
    pieces.sort(key=lambda p: p["id"])
    uf = _UnionFind(len(pieces))
    first: dict[str, int] = {}
    for i, p in enumerate(pieces):
        for key in (grouping_keys(recipe, p) if recipe else p.get("_keys", ())):
            if key in first:
                uf.union(first[key], i)
            else:
                first[key] = i
    for i, p in enumerate(pieces):
        p["group"] = pieces[uf.find(i)]["id"]


def _stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def assign_split(pieces: list[dict[str, Any]], corpus: str, train_share: float = TRAIN_SHARE) -> None:
    """Whole groups to train or test: groups in sha256 order fill test up to 20% of the pieces.

    Depends only on the group names and sizes (never on file order or a random state), and the
    greedy fill keeps the train share of pieces near 80% even when groups differ in size.
    """
    sizes = Counter(p["group"] for p in pieces)
    budget = round(len(pieces) * (1.0 - train_share))
    test_groups, n_test = set(), 0
    for group in sorted(sizes, key=lambda g: _stable_hash(f"{corpus}:{g}")):
        if n_test + sizes[group] <= budget:
            test_groups.add(group)
            n_test += sizes[group]
    for p in pieces:
        p["split"] = "test" if p["group"] in test_groups else "train"


# --------------------------------------------------------------------------- build


def _list_sources(recipe: Recipe) -> list[tuple[str, Path, str]]:
    """(relative path, absolute path, piece id) of every source file, sorted.

    The id is the relative path without its extension; where two files differ only in
    extension (bwv277.krn beside bwv277.mxl) the extension is kept, as "-krn".
    """
    if recipe.source_root == "music21":
        base = music21_corpus_dir()
    else:
        base = Path(recipe.source_root)
    found: dict[str, Path] = {}
    for pattern in recipe.sources:
        for path in base.glob(pattern):
            if path.is_file():
                rel = path.relative_to(base).as_posix()
                if rel not in recipe.exclude:
                    found[rel] = path
    stems = Counter(rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel for rel in found)
    out = []
    for rel, path in sorted(found.items()):
        stem = rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel
        pid = stem if stems[stem] == 1 else f"{stem}-{path.suffix.lstrip('.').lower()}"
        out.append((rel, path, re.sub(r"[^A-Za-z0-9._/-]+", "_", pid)))
    return out


def _cache_key(recipe: Recipe, path: Path) -> dict[str, Any]:
    st = path.stat()
    # Fields used only after extraction (grouping windows, description) do not invalidate caches,
    # nor do fields left at their default, so adding a field keeps old caches valid. Changing a
    # default, or what extraction does, needs EXTRACT_VERSION bumped.
    defaults = recipe_to_dict(Recipe("", "", ()))
    fields = {
        k: v for k, v in recipe_to_dict(recipe).items()
        if k not in POST_FIELDS and (k in ("name", "sources") or v != defaults[k])
    }
    recipe_hash = _stable_hash(json.dumps(fields, sort_keys=True) + f":{EXTRACT_VERSION}")
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "recipe": recipe_hash[:16]}


def _cache_file(corpus_dir: Path, rel: str) -> Path:
    return corpus_dir / ".cache" / (_stable_hash(rel)[:20] + ".json")


def _read_cache(corpus_dir: Path, rel: str, key: dict[str, Any]) -> dict[str, Any] | None:
    path = _cache_file(corpus_dir, rel)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if data.get("key") != key:
        return None
    if not all((corpus_dir / p["midi"]).is_file() for p in data["pieces"]):
        return None
    return data


def _work(task: tuple[dict[str, Any], str, str, str, str, dict[str, Any]]) -> dict[str, Any]:
    """Worker: extract every piece of one source file, write its MIDI, cache the result."""
    recipe_d, rel, abspath, pid, corpus_dir, key = task
    recipe = recipe_from_dict(recipe_d)
    from musicgpt.corpus import readers as corpus_read
    from musicgpt.scores import one_line

    try:
        result = corpus_read.read_source(recipe, rel, Path(abspath), pid, Path(corpus_dir))
    except Exception as exc:  # never abort a build on one file
        result = {"pieces": [], "skipped": [[rel, one_line(exc)]]}
    result["key"] = key
    result["rel"] = rel
    try:
        write_text_atomic(_cache_file(Path(corpus_dir), rel), json.dumps(result))
    except OSError as exc:
        log.warning("could not cache %s: %s", rel, exc)
    return result


def build(
    name: str, root: Path | None = None, jobs: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Build (or update) a corpus; 'all' builds every named corpus. Returns a report dict."""
    if name == ALL:
        t0 = time.perf_counter()
        reports = [build(n, root, jobs, progress) for n in CORPORA]
        return {
            "corpus": ALL,
            "corpora": reports,
            "pieces": sum(r["pieces"] for r in reports),
            "built": sum(r["built"] for r in reports),
            "cached": sum(r["cached"] for r in reports),
            "skipped": [s for r in reports for s in r["skipped"]],
            "seconds": round(time.perf_counter() - t0, 1),
        }
    recipe = get_recipe(name, root)
    return _build_recipe(recipe, root, jobs, progress)


def build_from(
    src: str | Path, name: str, labels_in: dict[str, str], root: Path | None = None,
    jobs: int | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Build a user corpus from every score file under `src`, with fixed labels."""
    src = Path(src).resolve()
    if not src.is_dir():
        raise MusicGPTError(f"{src}: not a folder")
    if name in CORPORA or name == ALL or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise MusicGPTError(f"{name!r} cannot name a user corpus (taken, or not letters/digits/.-_)")
    for k, v in labels_in.items():
        if k not in ("style", "mode"):
            raise MusicGPTError(f"unknown label {k!r}; use --label style=... or --label mode=...")
        if k == "mode" and v not in MODES:
            raise MusicGPTError(f"mode {v!r} is not one of {', '.join(MODES)}")
    recipe = Recipe(
        name, f"user corpus from {src}", ("**/*",), reader="files", style=labels_in.get("style", ""),
        mode_rule="label" if "mode" in labels_in else "final+keysig",
        group_rules=("content", "melody"), melody_len=16, source_root=str(src),
        labels=tuple(sorted(labels_in.items())),
    )
    return _build_recipe(recipe, root, jobs, progress)


def _build_recipe(recipe: Recipe, root: Path | None, jobs: int | None, progress: bool) -> dict[str, Any]:
    t0 = time.perf_counter()
    corpus_dir = _root(root) / recipe.name
    sources = _list_sources(recipe)
    if recipe.reader == "files":
        from musicgpt.scores import SCORE_SUFFIXES

        # a user corpus with no pieces is refused before anything is written: it would be
        # listed, and training on it fails later with a less clear message
        if not any(path.suffix.lower() in SCORE_SUFFIXES for _, path, _ in sources):
            raise MusicGPTError(f"{recipe.source_root}: no score files found under it (looked for "
                                f"{' '.join(SCORE_SUFFIXES)})")
    new_dir = not corpus_dir.exists()
    corpus_dir.mkdir(parents=True, exist_ok=True)
    recipe_d = recipe_to_dict(recipe)
    results, todo = [], []
    for rel, path, pid in sources:
        key = _cache_key(recipe, path)
        cached = _read_cache(corpus_dir, rel, key)
        if cached is not None:
            results.append(cached)
        else:
            todo.append((recipe_d, rel, str(path), pid, str(corpus_dir), key))
    n_cached = len(results)
    # big files first so one long file does not finish alone at the end
    todo.sort(key=lambda t: -Path(t[2]).stat().st_size)
    results += _run(todo, jobs, progress, recipe.name)

    pieces, skipped = [], []
    for res in sorted(results, key=lambda r: r["rel"]):
        pieces += res["pieces"]
        skipped += [tuple(s) for s in res["skipped"]]
    if not pieces and recipe.reader == "files":
        # not registered either; a corpus of that name built before is left as it was
        if new_dir:
            shutil.rmtree(corpus_dir, ignore_errors=True)
        where, why = skipped[0] if skipped else ("", "")
        first = f"; the first, {why if where in why else f'{where}: {why}'}" if skipped else ""
        raise MusicGPTError(f"{recipe.source_root}: none of the {len(results)} files under it could "
                            f"be read ({len(skipped)} skipped{first})")
    pieces = _dedupe_ids(pieces)
    assign_groups(pieces, recipe)
    assign_split(pieces, recipe.name)
    _remove_stale_midi(corpus_dir, {p["midi"] for p in pieces})
    rows = [{k: v for k, v in p.items() if not k.startswith("_")} for p in pieces]
    write_text_atomic(corpus_dir / RECIPE, json.dumps(recipe_d, indent=2, sort_keys=True) + "\n")
    write_text_atomic(
        corpus_dir / MANIFEST,
        "".join(json.dumps(r, ensure_ascii=False, sort_keys=False) + "\n" for r in rows),
    )
    return {
        "corpus": recipe.name,
        "pieces": len(rows),
        "groups": len({r["group"] for r in rows}),
        "built": len(todo),
        "cached": n_cached,
        "skipped": skipped,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def _run(todo: list, jobs: int | None, progress: bool, desc: str) -> list[dict[str, Any]]:
    if not todo:
        return []
    from tqdm import tqdm

    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    bar = tqdm(total=len(todo), desc=desc, unit="file", disable=not progress, leave=False)
    out = []
    try:
        if jobs == 1:
            for task in todo:
                out.append(_work(task))
                bar.update()
        else:
            import multiprocessing as mp

            # fresh workers every 40 files: music21 keeps caches that grow
            with mp.get_context("spawn").Pool(jobs, maxtasksperchild=40) as pool:
                for res in pool.imap_unordered(_work, todo):
                    out.append(res)
                    bar.update()
    finally:
        bar.close()
    return out


def _dedupe_ids(pieces: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: Counter[str] = Counter()
    for p in sorted(pieces, key=lambda p: (p["id"], p["source"])):
        seen[p["id"]] += 1
        if seen[p["id"]] > 1:  # only possible when two sources map to one id; keep both
            p["id"] = f"{p['id']}~{seen[p['id']]}"
    return pieces


def _remove_stale_midi(corpus_dir: Path, keep: set[str]) -> None:
    midi_dir = corpus_dir / "midi"
    if not midi_dir.is_dir():
        return
    for path in midi_dir.rglob("*.mid"):
        if path.relative_to(corpus_dir).as_posix() not in keep:
            path.unlink(missing_ok=True)


# --------------------------------------------------------------------------- info


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


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(r["split"] for r in rows))
