"""Corpora: split invariants on the committed manifests, labels on known pieces, builds."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from musicgpt import corpora, corpus_read, midi_io
from musicgpt.cli import main
from musicgpt.config import MODES

ROOT = corpora.corpora_root()
BUILT = [n for n in corpora.CORPORA if (ROOT / n / corpora.MANIFEST).is_file()]
FIELDS = [
    "id", "corpus", "source", "midi", "composer", "title", "style", "style_source", "mode",
    "mode_source", "tonic", "key_mode", "key_source", "voices", "notes", "meter", "group", "split",
]


@pytest.fixture(scope="module", params=BUILT)
def manifest(request):
    return request.param, corpora.load_manifest(request.param)


def test_committed_manifests_exist():
    assert "bach-chorales" in BUILT


def test_manifest_rows_are_complete_sorted_and_unique(manifest):
    name, rows = manifest
    assert rows, name
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    for r in rows:
        assert list(r) == FIELDS
        assert r["corpus"] == name
        assert r["split"] in ("train", "test")
        assert r["mode"] in MODES
        assert r["mode_source"] == "human" or r["mode_source"].startswith("derived:")
        assert r["notes"] > 0 and r["voices"] >= 1


def test_no_group_in_both_splits(manifest):
    name, rows = manifest
    splits = defaultdict(set)
    for r in rows:
        splits[r["group"]].add(r["split"])
    assert all(len(s) == 1 for s in splits.values()), name


def test_train_share_near_80_percent(manifest):
    name, rows = manifest
    if len({r["group"] for r in rows}) <= 50:
        pytest.skip("too few groups for a share test")
    share = sum(r["split"] == "train" for r in rows) / len(rows)
    assert 0.78 <= share <= 0.82, (name, share)


def test_committed_recipe_matches_code(manifest):
    name, _ = manifest
    on_disk = json.loads((ROOT / name / corpora.RECIPE).read_text())
    assert corpora.recipe_from_dict(on_disk) == corpora.CORPORA[name]


def test_bach_tune_families_are_grouped():
    rows = {r["id"]: r for r in corpora.load_manifest("bach-chorales")}
    assert "bach/bwv846" not in rows  # the WTC prelude is not a chorale
    # O Haupt voll Blut / Befiehl du deine Wege / Herzlich tut mich verlangen: one melody
    family = ["bach/bwv244.62", "bach/bwv244.54", "bach/bwv248.5", "bach/bwv270", "bach/bwv161.6"]
    assert len({rows[i]["group"] for i in family}) == 1
    assert rows["bach/bwv277-krn"]["group"] == rows["bach/bwv277-mxl"]["group"]
    assert rows["bach/bwv18.5-lz"]["group"] == rows["bach/bwv18.5-w"]["group"]
    assert 200 <= len({r["group"] for r in rows.values()}) <= 260


def test_phrygian_chorale():
    row = {r["id"]: r for r in corpora.load_manifest("bach-chorales")}["bach/bwv244.62"]
    assert (row["mode"], row["tonic"], row["mode_source"]) == ("phrygian", "E", "derived:final+keysig")


def test_split_is_deterministic_and_ignores_order():
    pieces = [{"id": f"p{i:03d}", "_keys": [f"g{i // 3}"]} for i in range(300)]
    a = [dict(p) for p in pieces]
    b = [dict(p) for p in reversed(pieces)]
    for rows in (a, b):
        corpora.assign_groups(rows)
        corpora.assign_split(rows, "x")
    assert {r["id"]: r["split"] for r in a} == {r["id"]: r["split"] for r in b}
    assert 0.78 <= sum(r["split"] == "train" for r in a) / len(a) <= 0.82
