"""Building a corpus: list its sources, read each in a worker (cached per file), group, split, write.

`build` reads every source file of a recipe in parallel worker processes; each file's result
(manifest rows and MIDI) is cached under `corpora/<name>/.cache`, keyed on the file's size and
mtime and on the recipe, so a rebuild reads only what changed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import Any

from musicgpt.atomic import write_text_atomic
from musicgpt.config import MODES
from musicgpt.corpus.grouping import assign_groups, assign_split, stable_hash
from musicgpt.corpus.manifest import MANIFEST, RECIPE, get_recipe, music21_corpus_dir, root_dir
from musicgpt.corpus.recipes import ALL, CORPORA, Recipe, recipe_from_dict, recipe_to_dict
from musicgpt.errors import MusicGPTError
from musicgpt.scores import SCORE_SUFFIXES, one_line

log = logging.getLogger(__name__)

# bump when piece extraction changes: every cached piece is rebuilt. 6: every corpus's voices
# go through scores.normalize (top voice first by mean pitch), not only Bach's and user MIDI.
# 7: whole melody lines (LINE_KEEP 400) are kept for the near-melody grouping.
EXTRACT_VERSION = 7
# used after extraction only, so changing one regroups without re-parsing
POST_FIELDS = ("description", "melody_len", "melody_offsets", "near_len", "near_share")




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
    recipe_hash = stable_hash(json.dumps(fields, sort_keys=True) + f":{EXTRACT_VERSION}")
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "recipe": recipe_hash[:16]}


def _cache_file(corpus_dir: Path, rel: str) -> Path:
    return corpus_dir / ".cache" / (stable_hash(rel)[:20] + ".json")


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
    from musicgpt.corpus.readers import read_source  # numpy, symusic, music21: in the workers only

    try:
        result = read_source(recipe, rel, Path(abspath), pid, Path(corpus_dir))
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
            raise MusicGPTError(f"unknown label {k!r}; use `label` style=... or `label` mode=...")
        if k == "mode" and v not in MODES:
            raise MusicGPTError(f"mode {v!r} is not one of {', '.join(MODES)}")
    recipe = Recipe(
        name, f"user corpus from {src}", ("**/*",), reader="files", style=labels_in.get("style", ""),
        mode_rule="label" if "mode" in labels_in else "final+keysig",
        group_rules=("content", "melody"), melody_len=16, source_root=str(src),
        labels=tuple(sorted(labels_in.items())),
    )
    return _build_recipe(recipe, root, jobs, progress)


@contextlib.contextmanager
def _build_lock(root: Path, name: str):
    """Hold the build of corpus `name` (an flock on ROOT/.NAME.lock): a second build of the same
    name, from another folder or process, is refused at once instead of mixing the two (their
    manifest pointed at MIDI the other had removed). Released when the build ends or dies."""
    try:
        import fcntl
    except ImportError:  # not on this platform: builds are not serialised
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MusicGPTError(f"corpus {name} is being built by another process; wait for it to "
                                "finish, or build under another --name") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build_recipe(recipe: Recipe, root: Path | None, jobs: int | None, progress: bool) -> dict[str, Any]:
    with _build_lock(root_dir(root), recipe.name):
        return _build_recipe_locked(recipe, root, jobs, progress)


def _build_recipe_locked(recipe: Recipe, root: Path | None, jobs: int | None, progress: bool
                         ) -> dict[str, Any]:
    t0 = time.perf_counter()
    corpus_dir = root_dir(root) / recipe.name
    sources = _list_sources(recipe)
    if recipe.reader == "files":
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
    if "melody-near" in recipe.group_rules:  # kept, so a test can check the split on the manifest
        for p in pieces:
            p["melody_lines"] = p.get("_lines", [])
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
