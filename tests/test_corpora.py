"""Corpora: split invariants on the committed manifests, labels on known pieces, builds."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from musicgpt import corpus as corpora
from musicgpt import scores
from musicgpt.cli import main
from musicgpt.config import MODES
from musicgpt.corpus import builder, grouping, labels, readers
from musicgpt.corpus.manifest import MANIFEST, RECIPE
from musicgpt.corpus.recipes import recipe_from_dict
from musicgpt.errors import MusicGPTError

ROOT = corpora.corpora_root()
BUILT = [n for n in corpora.CORPORA if (ROOT / n / MANIFEST).is_file()]
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
        # melody_lines: kept where near melodies group the pieces, for the split's own test
        near = "melody-near" in corpora.CORPORA[name].group_rules
        assert list(r) == FIELDS + (["melody_lines"] if near else [])
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
    on_disk = json.loads((ROOT / name / RECIPE).read_text())
    assert recipe_from_dict(on_disk) == corpora.CORPORA[name]


def _runs(lines, n=6):
    """Each run of n intervals in the lines (written here again, apart from the grouping code)."""
    out = set()
    for line in lines:
        steps = [b - a for a, b in zip(line, line[1:])]
        out |= {tuple(steps[i : i + n]) for i in range(len(steps) - n + 1)}
    return out


def test_no_test_chorale_shares_a_melody_with_a_train_chorale():
    """On the committed manifest: no test soprano shares a third or more of its 6-interval runs
    with a train soprano (the same tune under another text or BWV number, or a variant of it)."""
    rows = corpora.load_manifest("bach-chorales")
    assert all(r.get("melody_lines") for r in rows)
    runs = {r["id"]: _runs(r["melody_lines"]) for r in rows}
    train = [r["id"] for r in rows if r["split"] == "train"]
    test = [r["id"] for r in rows if r["split"] == "test"]
    worst = max((len(runs[a] & runs[b]) / max(1, min(len(runs[a]), len(runs[b]))), a, b)
                for a in test for b in train)
    assert worst[0] < 1 / 3, worst
    # tunes the title and BWV rules had left on both sides
    by_id = {r["id"]: r for r in rows}
    for a, b in [("bach/bwv359", "bach/bwv55.5"), ("bach/bwv301", "bach/bwv56.5"),
                 ("bach/bwv12.7", "bach/bwv250")]:
        assert by_id[a]["group"] == by_id[b]["group"], (a, b)


def test_bach_tune_families_are_grouped():
    rows = {r["id"]: r for r in corpora.load_manifest("bach-chorales")}
    assert "bach/bwv846" not in rows  # the WTC prelude is not a chorale
    # O Haupt voll Blut / Befiehl du deine Wege / Herzlich tut mich verlangen: one melody
    family = ["bach/bwv244.62", "bach/bwv244.54", "bach/bwv248.5", "bach/bwv270", "bach/bwv161.6"]
    assert len({rows[i]["group"] for i in family}) == 1
    assert rows["bach/bwv277-krn"]["group"] == rows["bach/bwv277-mxl"]["group"]
    assert rows["bach/bwv18.5-lz"]["group"] == rows["bach/bwv18.5-w"]["group"]
    # about 230 families by title, BWV and exact melody signatures; near melodies merge 34 more
    assert 185 <= len({r["group"] for r in rows.values()}) <= 260


def test_phrygian_chorale():
    row = {r["id"]: r for r in corpora.load_manifest("bach-chorales")}["bach/bwv244.62"]
    assert (row["mode"], row["tonic"], row["mode_source"]) == ("phrygian", "E", "derived:final+keysig")


def test_split_is_deterministic_and_ignores_order():
    pieces = [{"id": f"p{i:03d}", "_keys": [f"g{i // 3}"]} for i in range(300)]
    a = [dict(p) for p in pieces]
    b = [dict(p) for p in reversed(pieces)]
    for rows in (a, b):
        grouping.assign_groups(rows)
        grouping.assign_split(rows, "x")
    assert {r["id"]: r["split"] for r in a} == {r["id"]: r["split"] for r in b}
    assert 0.78 <= sum(r["split"] == "train" for r in a) / len(a) <= 0.82


# ------------------------------------------------------------------ labels on known pieces


def _read(name: str, rel: str, tmp_path: Path) -> list[dict]:
    recipe = corpora.CORPORA[name]
    rel_, path, pid = next(s for s in builder._list_sources(recipe) if s[0] == rel)
    return readers.read_source(recipe, rel_, path, pid, tmp_path)["pieces"]


def test_palestrina_section_keeps_its_encoded_mode(tmp_path):
    (row,) = _read("palestrina", "palestrina/Agnus_01.krn", tmp_path)
    assert (row["mode"], row["mode_source"], row["tonic"]) == ("mixolydian", "human", "G")
    assert row["style"] == "mass" and row["meter"] == "4/2"
    assert row["title"].startswith("Missa De Beata Marie Virginis")
    assert "mass:missa de beata marie virginis (iii)" in row["_keys"]
    assert (tmp_path / row["midi"]).is_file()


def test_phrygian_chorale_from_its_score(tmp_path):
    (row,) = _read("bach-chorales", "bach/bwv244.62.mxl", tmp_path)
    assert (row["mode"], row["tonic"], row["key_mode"]) == ("phrygian", "E", "minor")
    assert row["voices"] == 4


def test_bach_instrument_parts_dropped(tmp_path):
    (row,) = _read("bach-chorales", "bach/bwv171.6.mxl", tmp_path)  # trumpets, timpani + SATB
    assert row["voices"] == 4


def test_josquin_voices_merged_with_k_mode(tmp_path):
    (row,) = _read("josquin", "josquin/milleRegrets.abc", tmp_path)
    assert row["voices"] == 4
    assert (row["mode"], row["mode_source"], row["tonic"]) == ("phrygian", "human", "E")


@pytest.mark.parametrize("k,expected", [
    ("Ador", (9, "A", "dor")), ("E Minor", (4, "E", "min")), ("Bb", (10, "Bb", "")),
    ("G mix bass", (7, "G", "mix")), ("F -8va", (5, "F", "")), ("Em", (4, "E", "m")), ("none", None),
])
def test_parse_abc_key(k, expected):
    assert labels.parse_k(k) == expected


def test_best_mode_and_other():
    import numpy as np

    d_dorian = np.zeros(12)
    d_dorian[[2, 4, 5, 7, 9, 11, 0]] = 1.0  # D E F G A B C
    assert labels.best_mode(d_dorian, 2, None) == "dorian"
    chromatic = np.ones(12)
    assert labels.best_mode(chromatic, 0, None) == "other"
    no_sixth = np.zeros(12)
    no_sixth[[9, 11, 0, 2, 4, 7]] = 1.0  # A minor/dorian without F or F#: a tie, the hint decides
    assert labels.best_mode(no_sixth, 9, "aeolian") == "aeolian"
    assert labels.best_mode(no_sixth, 9, "dorian") == "dorian"


def test_abc_books_split_into_tunes():
    text = "% header\nL:1/8\n\nX:1\nT:One\nK:G\nGABc|\n\nX:2\nT:Two\nK:Ador\nABcd|\n"
    tunes = readers.split_abc(text, "book")
    assert [t[0] for t in tunes] == ["book/1", "book/2"]
    assert tunes[1][2]["title"] == "Two" and tunes[1][2]["k"] == ["Ador"]
    assert tunes[0][1].startswith("\nL:1/8") or "L:1/8" in tunes[0][1]


# ------------------------------------------------------------------ builds from a folder


def _folder(tmp_path: Path) -> Path:
    import symusic

    src = tmp_path / "src"
    src.mkdir()
    s = symusic.Score(480)
    t = symusic.Track(program=0)
    for i, p in enumerate([62, 64, 65, 67, 69, 67, 65, 64, 62]):
        t.notes.append(symusic.Note(i * 480, 480, p, 80))
    s.tracks.append(t)
    scores.write_midi(s, src / "good.mid")
    (src / "bad.mid").write_text("this is a text file, not MIDI\n")
    (src / "notes.txt").write_text("C D E F G")
    (src / "tune.abc").write_text("X:1\nT:Tune\nM:3/4\nL:1/4\nK:D\nDEF|GAB|A3|]\n")
    return src


def test_build_from_folder(tmp_path):
    src = _folder(tmp_path)
    root = tmp_path / "corpora"
    labels_in = {"style": "motet", "mode": "dorian"}
    report = corpora.build_from(src, "mine", labels_in, root=root, jobs=1, progress=False)
    rows = corpora.load_manifest("mine", root)
    assert sorted(r["source"] for r in rows) == ["good.mid", "tune.abc"]
    assert all(r["style"] == "motet" and r["mode"] == "dorian" and r["mode_source"] == "human" for r in rows)
    good = next(r for r in rows if r["source"] == "good.mid")
    assert good["notes"] == 9 and corpora.midi_path("mine", good, root).is_file()
    reasons = dict(report["skipped"])
    assert "not a readable MIDI file" in reasons["bad.mid"]
    assert "unknown file type .txt" in reasons["notes.txt"]
    # incremental: nothing changed, nothing parsed again
    again = corpora.build_from(src, "mine", labels_in, root=root, jobs=1, progress=False)
    assert again["built"] == 0 and again["cached"] == report["built"]
    assert corpora.load_manifest("mine", root) == rows
    # the user corpus is listed and can be rebuilt by name from its recipe.json
    assert "mine" in corpora.names(root)
    assert corpora.build("mine", root=root, jobs=1, progress=False)["pieces"] == 2


def test_cli_build_from_and_info(tmp_path, capsys, monkeypatch):
    src = _folder(tmp_path)
    monkeypatch.setenv("MUSICGPT_CORPORA", str(tmp_path / "corpora"))
    rc = main(["corpus", "build", "--from", str(src), "--name", "mine", "--label", "style=folk",
               "--jobs", "1", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "mine: 2 pieces" in out and "skipped bad.mid" in out
    assert main(["corpus", "info", "mine", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["pieces"] == 2 and info["style"] == {"folk": 2}
    assert info["mode_source"] == {"derived:final+keysig": 2}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("musicgpt: error: ") and "Traceback" not in err
    return err


def test_cli_build_from_an_empty_folder_registers_nothing(tmp_path, capsys, monkeypatch):
    root = tmp_path / "corpora"
    monkeypatch.setenv("MUSICGPT_CORPORA", str(root))
    (tmp_path / "empty").mkdir()
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "README.txt").write_text("no music here")
    for src in ("empty", "text"):
        assert main(["corpus", "build", "--from", str(tmp_path / src), "--name", "x", "--jobs", "1",
                     "--no-progress"]) == 2
        err = _one_error_line(capsys)
        assert "no score files found" in err and ".mid" in err and ".abc" in err
    assert "x" not in corpora.names(root) and not (root / "x").exists()
    assert main(["corpus", "info", "x"]) == 2
    assert "unknown corpus 'x'" in _one_error_line(capsys)


def test_cli_build_from_a_folder_of_unreadable_files_registers_nothing(tmp_path, capsys, monkeypatch):
    root = tmp_path / "corpora"
    monkeypatch.setenv("MUSICGPT_CORPORA", str(root))
    src = _folder(tmp_path)
    (src / "good.mid").unlink()
    (src / "tune.abc").unlink()
    assert main(["corpus", "build", "--from", str(src), "--name", "x", "--jobs", "1", "--no-progress"]) == 2
    err = _one_error_line(capsys)
    assert "none of the 2 files" in err and "2 skipped" in err and "bad.mid" in err
    assert "x" not in corpora.names(root) and not (root / "x").exists()


def test_a_rebuild_that_reads_nothing_keeps_the_built_corpus(tmp_path):
    root = tmp_path / "corpora"
    src = _folder(tmp_path)
    corpora.build_from(src, "mine", {}, root=root, jobs=1, progress=False)
    rows = corpora.load_manifest("mine", root)
    for name in ("good.mid", "tune.abc"):
        (src / name).unlink()
    with pytest.raises(MusicGPTError, match="none of the 2 files"):
        corpora.build("mine", root=root, jobs=1, progress=False)
    assert corpora.load_manifest("mine", root) == rows
    assert all(corpora.midi_path("mine", r, root).is_file() for r in rows)


@pytest.mark.parametrize("argv,msg", [
    (["corpus", "info", "nonesuch"], "unknown corpus 'nonesuch'"),
    (["corpus", "info", "palestrina"],
     "corpus palestrina is not built; run `musicgpt corpus build palestrina`"),
    (["corpus", "build", "--from", ".", "--name", "x", "--label", "colour=red"], "unknown label 'colour'"),
    (["corpus", "build", "--from", ".", "--name", "x", "--label", "mode=happy"],
     "mode 'happy' is not one of"),
    (["corpus", "build", "--from", ".", "--name", "palestrina"], "cannot name a user corpus"),
    (["corpus", "build"], "name a corpus to build"),
])
def test_cli_user_errors_are_one_line(argv, msg, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MUSICGPT_CORPORA", str(tmp_path / "empty"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err


# ------------------------------------------------------------------ groups in the other committed manifests


def _rows(name: str) -> dict[str, dict]:
    if name not in BUILT:
        pytest.skip(f"{name} is not built")
    return {r["id"]: r for r in corpora.load_manifest(name)}


def test_palestrina_mass_is_one_group():
    rows = _rows("palestrina")
    masses = defaultdict(set)
    for r in rows.values():
        masses[r["title"].split(":")[0]].add(r["group"])
    assert all(len(g) == 1 for g in masses.values())
    assert sum(r["mode_source"] == "human" for r in rows.values()) == 1257


def test_a_mass_is_one_work_and_a_chorale_harmonisation_its_own():
    pal, bach = _rows("palestrina"), _rows("bach-chorales")
    works = defaultdict(set)
    for r in pal.values():
        works[corpora.work_of(r)].add(r["title"].split(":")[0])
    assert all(len(t) == 1 for t in works.values()) and 90 <= len(works) <= 110
    # harmonisations of one tune share a group (no split leak) but are separate works
    fam = defaultdict(list)
    for r in bach.values():
        fam[r["group"]].append(r)
    big = next(rs for rs in fam.values() if len(rs) > 1)
    assert len({corpora.work_of(r) for r in big}) == len(big)


def test_folk_tune_in_two_books_is_one_group():
    rows = _rows("folk")
    # the same reel in O'Neill and Ryan, titled differently ("Salamanca Reel" / "SALAMANCA -- REEL")
    assert rows["oneills1850/1276-1375/1348"]["group"] == rows["ryansMammoth/SalamancaReel/1"]["group"]
    assert rows["oneills1850/0201-0300/232"]["group"] == rows["ryansMammoth/MillersMaid/1"]["group"]


def test_trecento_genres():
    rows = _rows("trecento")
    styles = defaultdict(int)
    for r in rows.values():
        styles[r["style"]] += 1
    assert dict(styles) == {"mass": 66, "madrigal": 16, "motet": 12, "benedicamus": 4, "ballata": 3,
                            "caccia": 2}
    assert rows["trecento/PMFC_24_21-O_proles_hispanie"]["style"] == "motet"


def test_a_second_build_of_one_corpus_name_is_refused_while_the_first_runs(tmp_path, monkeypatch, capsys):
    from music21 import corpus as m21

    src = tmp_path / "src"
    scores.write_midi(scores.m21_to_score(m21.parse("bach/bwv66.6")), src / "a.mid")
    root = tmp_path / "corpora"
    monkeypatch.setenv("MUSICGPT_CORPORA", str(root))
    argv = ["corpus", "build", "--from", str(src), "--name", "mine", "--jobs", "1", "--no-progress"]
    with builder._build_lock(root, "mine"):  # another build of "mine" holds it
        assert main(argv) == 2
        assert "corpus mine is being built by another process" in capsys.readouterr().err
        assert not (root / "mine" / MANIFEST).exists()
    assert main(argv) == 0  # once it has finished, the build goes ahead
    assert (root / "mine" / MANIFEST).exists()
