"""Leak-free splits: the keys that tie pieces together, groups by union-find, whole groups to a split.

Pieces that share any key (the same notes, a melody signature, a normalised title, a file stem,
a mass) fall in one group, and a group goes to train or test whole, so no tune is heard in
training and tested on again.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

import numpy as np
import symusic

from musicgpt.corpus.recipes import Recipe

TRAIN_SHARE = 0.8
LINE_KEEP = 400  # pitches of each melody line kept in the cache for grouping (a whole chorale tune)
GENERIC_TITLES = {"untitled", "noname", "anonymous", "reel", "jig", "hornpipe", "strathspey", "air", "march",
                  "song", "lied", "tune"}


# ---------------------------------------------------------------- keys computed in the workers
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


def melody_lines(score: symusic.Score, grid: str = "note") -> list[list[int]]:
    """The opening of the top voice's line(s) used for grouping: one line, or two for "beat"."""
    skeletons = (False, True) if grid == "beat" else (False,)
    return [melody_line(score, grid, sk)[:LINE_KEEP] for sk in skeletons]


def notes_key(score: symusic.Score) -> str:
    h = hashlib.sha1()
    for t in score.tracks:
        a = t.notes.numpy()
        h.update(np.stack([a["time"], a["duration"], a["pitch"].astype(np.int32)]).tobytes())
    return "notes:" + h.hexdigest()[:20]


def sha(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha1(data).hexdigest()[:20]


# ---------------------------------------------------------------- keys computed after the workers
def melody_keys(lines: list[list[int]], length: int, offsets: tuple[int, ...] = (0,)) -> list[str]:
    """Transposition-invariant signatures: windows of `length` intervals of each line, starting
    at each of `offsets` (a later window still matches when the openings differ)."""
    keys = set()
    for line in lines:
        iv = [b - a for a, b in zip(line, line[1:])]
        keys.update("mel:" + ",".join(map(str, iv[o: o + length])) for o in offsets if len(iv) >= o + length)
    return sorted(keys)


def stretches(lines: list[list[int]], length: int) -> set[tuple[int, ...]]:
    """Every run of `length` intervals in the lines: transposition-invariant pieces of a tune."""
    out = set()
    for line in lines:
        iv = [b - a for a, b in zip(line, line[1:])]
        out.update(tuple(iv[i : i + length]) for i in range(len(iv) - length + 1))
    return out


def near_melody_pairs(pieces: list[dict[str, Any]], length: int, share: float) -> list[tuple[int, int]]:
    """(i, j) of pieces whose lines share at least `share` of the shorter one's stretches: one
    melody harmonised again, under another text or with small variants (passing notes, a changed
    cadence), which exact signatures miss. An inverted index keeps it near-linear."""
    sets = [stretches(p.get("_lines", []), length) for p in pieces]
    index: dict[tuple[int, ...], list[int]] = {}
    for i, s in enumerate(sets):
        for st in s:
            index.setdefault(st, []).append(i)
    pairs = []
    for i, s in enumerate(sets):
        shared: Counter = Counter(j for st in s for j in index[st] if j > i)
        for j, n in shared.items():
            if n >= share * min(len(s), len(sets[j])):
                pairs.append((i, j))
    return pairs


def norm_title(title: str | None) -> str | None:
    if not title:
        return None
    t = re.sub(r"^[\d\s.()]+", "", title.lower())
    t = re.sub(r"^the\s+", "", t)
    t = re.sub(r"[^a-zäöüß]+", "", t)
    return t if len(t) >= 5 and t not in GENERIC_TITLES else None


def grouping_keys(recipe: Recipe, piece: dict[str, Any]) -> list[str]:
    """Keys that tie a piece to others: content hashes and file stems (from the worker), melody
    signatures and normalised titles (computed here, so tuning them needs no re-parse)."""
    keys = list(piece.get("_keys", ()))
    rules = recipe.group_rules
    if "melody" in rules:
        keys += melody_keys(piece.get("_lines", []), recipe.melody_len, tuple(recipe.melody_offsets))
    if "title" in rules and (t := norm_title(piece.get("title"))):
        keys.append("title:" + t)
    return [k for k in keys if "stem" in rules or not k.startswith("stem:")]


# ---------------------------------------------------------------- groups and split
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
    if recipe and "melody-near" in recipe.group_rules:
        for i, j in near_melody_pairs(pieces, recipe.near_len, recipe.near_share):
            uf.union(i, j)
    for i, p in enumerate(pieces):
        p["group"] = pieces[uf.find(i)]["id"]


def stable_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def assign_split(pieces: list[dict[str, Any]], corpus: str, train_share: float = TRAIN_SHARE) -> None:
    """Whole groups to train or test: groups in sha256 order fill test up to 20% of the pieces.

    Depends only on the group names and sizes (never on file order or a random state), and the
    greedy fill keeps the train share of pieces near 80% even when groups differ in size.
    """
    sizes = Counter(p["group"] for p in pieces)
    budget = round(len(pieces) * (1.0 - train_share))
    test_groups, n_test = set(), 0
    for group in sorted(sizes, key=lambda g: stable_hash(f"{corpus}:{g}")):
        if n_test + sizes[group] <= budget:
            test_groups.add(group)
            n_test += sizes[group]
    for p in pieces:
        p["split"] = "test" if p["group"] in test_groups else "train"
