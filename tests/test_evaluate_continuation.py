"""`musicgpt evaluate-continuation` end to end: real folk tunes as a tiny corpus, the shipped
model and classifier, every figure present and in range, and mode adherence counted."""

from __future__ import annotations

import json

import pytest
from music21 import corpus

from musicgpt.cli import main
from musicgpt.scores import m21_to_score, write_midi


@pytest.fixture(scope="module")
def tiny_folk(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("folk")
    tunes = corpus.parse("airdsAirs/book1.abc").scores[:12]
    for k, tune in enumerate(tunes):
        write_midi(m21_to_score(tune), tmp / "src" / f"tune{k:02d}.mid")
    mp = pytest.MonkeyPatch()
    mp.setenv("MUSICGPT_CORPORA", str(tmp / "corpora"))
    assert main(["corpus", "build", "--from", str(tmp / "src"), "--name", "tinyfolk",
                 "--label", "style=folk-song", "--jobs", "1", "--no-progress"]) == 0
    yield tmp
    mp.undo()


def test_every_figure_is_reported_beside_the_real_continuation(tiny_folk, capsys):
    out = tiny_folk / "report.json"
    assert main(["evaluate-continuation", "--corpus", "tinyfolk", "--pieces", "3", "--header-bars", "2",
                 "--bars", "2", "--adherence", "tinyfolk", "--out", str(out), "--json",
                 "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    r = summary["corpora"]["tinyfolk"]
    assert r["samples"] >= 1 and r["bars_asked"] == 2
    assert r["grammar_errors"] == 0 and r["silent_bars"] == 0
    assert r["voices"] == 1.0 and r["voices_kept"] == 1.0  # one-voice tunes stay one voice
    assert 0 <= r["in_key"] <= 1 and 0 <= r["real_in_key"] <= 1 and 0 <= r["pc_distance"] <= 1
    assert r["density"] > 0 and r["real_density"] > 0
    assert 0 <= r["groove_similarity"] <= 1 and 0 <= r["cardinality_mean"] <= 1
    assert r["new_bars"] == 2.0 and r["copied_bars_max"] >= 0
    a = summary["adherence"]
    assert set(a["per_mode"]) == {"ionian", "dorian", "mixolydian", "aeolian"}
    assert all(0 <= v["both"] <= min(v["rule"], v["classifier"]) for v in a["per_mode"].values())
    assert a["identical_pairs"] >= 0 and a["headers"] >= 1
    full = json.loads(out.read_text())
    assert len(full["samples"]) == r["samples"] and full["samples"][0]["corpus"] == "tinyfolk"
    assert main(["evaluate-continuation", "--corpus", "tinyfolk", "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "notes per bar" in table and "most bars copied" in table


def test_validation_headers_for_tuning_and_sampling_options(tiny_folk, capsys):
    assert main(["evaluate-continuation", "--corpus", "tinyfolk", "--split", "valid", "--pieces", "2",
                 "--header-bars", "2", "--bars", "2", "--temperature", "0.8", "--json", "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["config"]["split"] == "valid" and summary["sample"]["temperature"] == 0.8
    assert summary["corpora"]["tinyfolk"]["samples"] >= 1


def test_bad_settings_get_one_line(tiny_folk, capsys):
    assert main(["evaluate-continuation", "--corpus", "tinyfolk", "--out", str(tiny_folk / "r.txt")]) == 2
    assert "json" in capsys.readouterr().err
    assert main(["evaluate-continuation", "--corpus", "nosuch", "--no-progress"]) == 2
    assert "nosuch" in capsys.readouterr().err
