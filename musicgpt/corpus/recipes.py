"""What each named corpus reads and how it is labelled: the `Recipe` and the named recipes.

A corpus lives in `corpora/<name>/`: `recipe.json` (what to read and how to label it),
`manifest.jsonl` (one row per piece, committed) and `midi/` (the built MIDI, a cache).
Labels record where they came from: "human" when the source states them, else the rule name.
"""

from __future__ import annotations

import dataclasses
from typing import Any

ALL = "all"  # the union of the named corpora


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
    group_rules: tuple[str, ...] = ("content",)  # content | melody | melody-near | title | stem | mass
    melody_len: int = 12  # intervals in the melody signature used for grouping
    melody_grid: str = "note"  # "note": every onset; "beat": the pitch on each quarter beat
    melody_offsets: tuple[int, ...] = (0,)  # where the signature windows start, in intervals
    # melody-near: two pieces whose top-voice lines share at least this share of their
    # `near_len`-interval stretches (of the shorter line) carry one melody, even with variants
    near_len: int = 6
    near_share: float = 0.35
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
            group_rules=("content", "melody", "melody-near", "title", "stem"), melody_len=10,
            melody_grid="beat",
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


def work_of(row: dict[str, Any]) -> str:
    """The work a file belongs to. A recipe grouped by "mass" splits each mass into one file per
    section, and its group is the mass (its mode is labelled per mass), so the group names the
    work; any other file is a work of its own (a tune family's harmonisations are separate works,
    possibly in different keys)."""
    recipe = CORPORA.get(str(row.get("corpus", "")))
    if recipe is not None and "mass" in recipe.group_rules and row.get("group"):
        return str(row["group"])
    return str(row["id"])


def recipe_to_dict(recipe: Recipe) -> dict[str, Any]:
    return dataclasses.asdict(recipe)


def recipe_from_dict(data: dict[str, Any]) -> Recipe:
    names = {f.name for f in dataclasses.fields(Recipe)}
    kw = {k: v for k, v in data.items() if k in names}
    for k in ("sources", "exclude", "group_rules", "melody_offsets"):
        kw[k] = tuple(kw.get(k, ()))
    kw["labels"] = tuple(tuple(p) for p in kw.get("labels", ()))
    return Recipe(**kw)
