"""Classification heads and the classify commands, with tiny models on real and made-up scores."""

import argparse
import dataclasses
import json

import numpy as np
import pytest
import symusic
import torch
from music21 import corpus

from musicgpt.checkpoint import save_checkpoint
from musicgpt.classifier.classify import combine, load_classifier, save_classifier
from musicgpt.classifier.data import Batches, Labelled
from musicgpt.classifier.evaluation import evaluate, key_metrics
from musicgpt.classifier.features import first_bars_ids, piece_states, windows
from musicgpt.classifier.heads import KEY_LABELS, key_index
from musicgpt.classifier.training import train_heads
from musicgpt.cli import main
from musicgpt.config import MODES, ClassifierTrainConfig, ModelConfig, TokenizerConfig
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT
from musicgpt.scores import load_score, m21_to_score, write_midi
from musicgpt.scores import normalize as assign_voice_programs
from musicgpt.tokens.tokenizer import MusicTokenizer

STYLES = ("chorale", "mass", "tune")



@pytest.fixture(scope="module")
def tok() -> MusicTokenizer:
    return MusicTokenizer.create(TokenizerConfig(), STYLES, MODES)


@pytest.fixture(scope="module")
def scores() -> dict[str, symusic.Score]:
    return {"chorale": assign_voice_programs(load_score(corpus.getWork("bach/bwv66.6"))),
            "mass": assign_voice_programs(load_score(sorted(corpus.getComposer("palestrina"))[5]))}


def tiny_lm(tok: MusicTokenizer, seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(ModelConfig(vocab_size=tok.vocab_size, context=128, n_layer=1, n_head=2,
                           d_model=32, dropout=0.0))


def data_of(tok, items) -> Labelled:
    """items: (score, style index, tonic, mode name)."""
    n = len(items)
    return Labelled([np.asarray(tok.encode(s), dtype=np.int64) for s, *_ in items],
                    np.array([st for _, st, _, _ in items]), np.array([t for _, _, t, _ in items]),
                    np.array([MODES.index(m) for *_, m in items]), np.ones(n, bool), np.ones(n, bool),
                    [str(i) for i in range(n)], [str(i) for i in range(n)])


def quick(steps: int = 60, **kw) -> ClassifierTrainConfig:
    return ClassifierTrainConfig(**{"steps": steps, "batch_size": 8, "window": 96, "head_lr": 1e-2,
                                    "lr": 2e-3, "warmup": 5, "calib_fraction": 0.0, "device": "cpu",
                                    **kw})


@pytest.fixture(scope="module")
def trained(tok, scores):
    data = data_of(tok, [(scores["chorale"], 0, 6, "aeolian"), (scores["mass"], 1, 7, "mixolydian")])
    return train_heads(tiny_lm(tok), tok, STYLES, data, quick(50)), data


def test_windows_cut_at_bar_lines(tok, scores):
    ids = np.asarray(tok.encode(scores["mass"]))
    bar = tok.base.vocab["Bar_None"]
    parts = windows(ids, bar, 100)
    assert np.array_equal(np.concatenate(parts), ids)
    assert all(len(p) <= 100 for p in parts)
    assert sum(p[0] == bar for p in parts) >= len(parts) - 1
    four = first_bars_ids(ids, bar, 4)
    assert (four == bar).sum() == 4 and len(four) < len(ids)
    assert len(first_bars_ids(ids, bar, None)) == len(ids)


def test_token_transposition_matches_the_transposed_score(tok, scores):
    data = data_of(tok, [(scores["chorale"], 0, 6, "aeolian")])
    b = Batches(data, tok, quick())
    ids = torch.from_numpy(data.ids[0])
    gen = torch.Generator().manual_seed(3)
    moved, k = b._shift(ids, gen)
    assert k != 0
    assert moved.tolist() == tok.encode(scores["chorale"].shift_pitch(k))
    # the key label moves with the notes
    gen = torch.Generator().manual_seed(0)
    batch = b(gen)
    assert all(0 <= int(y) < len(KEY_LABELS) and int(y) % len(MODES) == MODES.index("aeolian")
               for y in batch["key"])


def test_heads_load_from_a_checkpoint(tmp_path, trained):
    clf, data = trained
    clf.temperature = {"style": 1.5, "key": 0.8}
    path = tmp_path / "clf.pt"
    save_classifier(path, clf)
    back = load_classifier(path)
    assert back.styles == STYLES and back.temperature == {"style": 1.5, "key": 0.8}
    assert back.heads.key_head.n_context == len(STYLES)  # the key head reads the style probabilities
    ps0, pk0 = clf.probabilities(data.ids)
    ps1, pk1 = back.probabilities(data.ids)
    assert np.allclose(ps0, ps1, atol=1e-5) and np.allclose(pk0, pk1, atol=1e-5)
    assert pk1.shape == (2, 12, len(MODES)) and np.allclose(pk1.sum((1, 2)), 1.0, atol=1e-5)


def test_a_checkpoint_with_the_style_head_inside_the_model_still_loads(tmp_path, trained):
    """The shipped weights were saved when GPT carried style_head and "heads" held the key head
    alone: they load into the one heads module, with the same answers."""
    clf, data = trained
    path = tmp_path / "old.pt"
    save_classifier(path, clf)
    ckpt = torch.load(path, weights_only=True)
    heads = ckpt["heads"]
    ckpt["model"].update({k: v for k, v in heads.items() if k.startswith("style_head.")})
    ckpt["heads"] = {k[len("key_head."):]: v for k, v in heads.items() if k.startswith("key_head.")}
    torch.save(ckpt, path)
    back = load_classifier(path)
    for a, b in zip(clf.logits_ids(data.ids), back.logits_ids(data.ids)):
        torch.testing.assert_close(a, b)


def test_piece_states_batch_windows_of_any_length_without_mixing_them(tok, scores):
    """Right-padded windows of several pieces in one batch: each piece's states are its own."""
    model = tiny_lm(tok).eval()
    bar, bos, pad = tok.base.vocab["Bar_None"], tok.bos_id, tok.pad_id
    short, long_ = (np.asarray(tok.encode(scores[k]), dtype=np.int64)[:n]
                    for k, n in (("chorale", 40), ("mass", 300)))
    with torch.no_grad():
        together = piece_states(model, [short, long_], bar, bos, pad)
        alone = piece_states(model, [short], bar, bos, pad)
    assert together[0].shape == (40, 32) and together[1].shape == (300, 32)
    torch.testing.assert_close(together[0], alone[0], rtol=1e-4, atol=1e-5)


def test_a_plain_lm_checkpoint_is_refused(tmp_path, tok):
    path = tmp_path / "lm.pt"
    save_checkpoint(path, tiny_lm(tok), {"tokenizer": tok.to_dict()})
    with pytest.raises(MusicGPTError, match="no classification heads"):
        load_classifier(path)


def test_tritone_transposition_keeps_the_mode(trained, scores):
    clf, _ = trained
    for name, mode in (("chorale", "aeolian"), ("mass", "mixolydian")):
        r0 = clf.classify_score(scores[name])
        r6 = clf.classify_score(scores[name].shift_pitch(6))
        assert r0["mode"][0][0] == r6["mode"][0][0] == mode
        assert r0["style"][0][0] == r6["style"][0][0]


def made_up(style: int, seed: int) -> symusic.Score:
    """Three separable textures: high fast line, low slow chords, a wide-leaping middle line."""
    rng = np.random.default_rng(seed)
    score = symusic.Score(480)
    track = symusic.Track(program=16)
    for i in range(24):
        if style == 0:
            track.notes.append(symusic.Note(i * 240, 240, int(rng.integers(72, 84)), 80))
        elif style == 1:
            for p in (40, 47, 52):
                track.notes.append(symusic.Note(i * 960, 960, p + int(rng.integers(0, 3)), 80))
        else:
            track.notes.append(symusic.Note(i * 480, 480, int(rng.choice([55, 67, 50, 62])), 80))
    score.tracks.append(track)
    return score


def test_tiny_training_run_learns_a_separable_set(tok):
    items = [(made_up(s, seed), s, 0, "ionian") for s in range(3) for seed in range(3)]
    data = data_of(tok, items)
    before = evaluate(train_heads(tiny_lm(tok), tok, STYLES, data, quick(0)), data)
    after = evaluate(train_heads(tiny_lm(tok), tok, STYLES, data, quick(60)), data)
    assert after["style"]["accuracy"] == 1.0 > before["style"]["accuracy"]
    assert after["style"]["macro_f1"] == 1.0
    # the frozen-body probe trains both heads too (the body's weights stay as they were)
    body = tiny_lm(tok)
    probe = train_heads(body, tok, STYLES, data, quick(0, freeze=True, probe_iters=150, probe_batch=16))
    assert evaluate(probe, data)["style"]["accuracy"] == 1.0
    assert all(torch.equal(v, body.state_dict()[k]) for k, v in probe.model.state_dict().items())

    # --keep-style-head: a fine-tuned classifier's style head stays as it was; the key head learns
    tuned = train_heads(tiny_lm(tok), tok, STYLES, data, quick(60))
    keep = quick(0, freeze=True, keep_style_head=True, probe_iters=50, probe_batch=16)
    refit = train_heads(tuned.model, tok, STYLES, data, keep, heads_state=tuned.heads.state_dict())
    assert all(torch.equal(v, tuned.model.state_dict()[k]) for k, v in refit.model.state_dict().items())
    assert all(torch.equal(v, tuned.heads.style_head.state_dict()[k])
               for k, v in refit.heads.style_head.state_dict().items())
    assert evaluate(refit, data)["style"]["accuracy"] == 1.0
    unfit = train_heads(tuned.model, tok, STYLES, data, dataclasses.replace(keep, probe_iters=0),
                        heads_state=tuned.heads.state_dict())
    assert any(not torch.equal(a, b) for a, b in zip(refit.heads.key_head.state_dict().values(),
                                                       unfit.heads.key_head.state_dict().values()))
    with pytest.raises(MusicGPTError, match="no style head to keep"):
        train_heads(tuned.model, tok, STYLES, data, keep)


def test_cli_json_parses_and_bad_files_are_reported(tmp_path, trained, scores, capsys):
    clf, _ = trained
    model = tmp_path / "clf.pt"
    save_classifier(model, clf)
    good = tmp_path / "chorale.mid"
    write_midi(scores["chorale"], good)
    bad = tmp_path / "broken.mid"
    bad.write_bytes(b"MThd this is not midi")
    missing = tmp_path / "missing.mid"
    rc = main(["classify", str(bad), str(good), str(missing), "--json", "--model", str(model)])
    out, err = capsys.readouterr()
    assert rc != 0
    results = json.loads(out)
    assert [r["file"] for r in results] == [str(bad), str(good), str(missing)]
    assert "error" in results[0] and "error" in results[2]
    assert {"style", "mode", "tonic", "key"} <= set(results[1])
    assert results[1]["key"][0][0] in KEY_LABELS
    lines = err.strip().splitlines()
    assert len(lines) == 2 and str(bad) in lines[0] and str(missing) in lines[1]
    assert "Traceback" not in err

    assert main(["classify", str(good), "--model", str(model), "--bars", "4"]) == 0
    out, _ = capsys.readouterr()
    assert "tonic+mode" in out and "style" in out

    # --together: one more answer for the readable files as one work; two copies of one file
    # give that file's answer back
    rc = main(["classify", str(good), str(bad), str(good), "--together", "--json", "--model", str(model)])
    out, err = capsys.readouterr()
    got = json.loads(out)
    assert rc != 0 and str(bad) in err
    assert got["work"]["files"] == [str(good), str(good)]
    for q in ("style", "mode", "key"):  # the top answer and its probability (below 1e-12 all ties)
        assert got["work"][q][0] == pytest.approx(got["files"][0][q][0], abs=1e-3)


def test_cli_text_has_a_row_per_question_with_top_labels(tmp_path, trained, scores, capsys):
    from musicgpt.theory import PITCH_CLASSES

    clf, _ = trained
    model = tmp_path / "clf.pt"
    save_classifier(model, clf)
    good = tmp_path / "chorale.mid"
    write_midi(scores["chorale"], good)
    assert main(["classify", str(good), "--model", str(model), "--top", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{good}: ")  # then the answer (or "unsure"), tested below
    rows = {line[:13].strip(): line[13:].split("   ") for line in lines[1:]}
    assert list(rows) == ["style", "mode", "tonic", "tonic+mode"]
    assert all(len(labels) == 2 for labels in rows.values())
    tonics = [label.rsplit(" ", 1) for label in rows["tonic"]]
    assert all(t in PITCH_CLASSES and 0.0 <= float(p) <= 1.0 for t, p in tonics)
    # the tonic row agrees with --json
    assert main(["classify", str(good), "--model", str(model), "--top", "2", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)[0]["tonic"]
    assert [t for t, _ in tonics] == [t for t, _ in got]


@pytest.mark.parametrize("top", ["0", "-1", "two"])
def test_cli_top_below_one_is_refused_in_one_line(top, capsys):
    with pytest.raises(SystemExit) as e:
        main(["classify", "x.mid", "--top", top])
    assert e.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "argument --top" in errors[0] and err.endswith(errors[0] + "\n")
    assert "Traceback" not in err


def test_cli_top_below_one_exits_non_zero_as_a_program():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "musicgpt", "classify", "x.mid", "--top", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "musicgpt classify: error: argument --top: 0 is below 1 (at least one label is shown) "
        "(see `musicgpt classify --help`)"]


def test_every_classifier_option_has_help_and_no_empty_default(capsys):
    from musicgpt.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for cmd in ("classify", "evaluate-classifier", "train-classifier"):
        parser = sub.choices[cmd]
        assert all(a.help for a in parser._actions if a.option_strings), cmd
        text = parser.format_help()
        assert "(default: None)" not in text and "(default: False)" not in text
    text = sub.choices["train-classifier"].format_help()
    assert "(default: 16)" in text and text.count("(default: all)") == 1


def test_combine_is_a_normalised_geometric_mean():
    sure, unsure = np.array([0.9, 0.05, 0.05]), np.array([0.2, 0.45, 0.35])
    np.testing.assert_allclose(combine(np.stack([sure, sure, sure])), sure, atol=1e-9)
    both = combine(np.stack([sure, unsure]))
    assert both.sum() == pytest.approx(1.0) and both.argmax() == 0  # the sure section wins
    # an arithmetic mean would say the same here; a geometric one also vetoes what one rules out
    assert combine(np.stack([np.array([0.5, 0.5, 1e-9]), np.array([0.0, 0.4, 0.6])])).argmax() == 1


def test_key_metrics_per_work():
    """Two sections of one mass and one tune: per-work accuracy answers each work once."""
    pk = np.full((3, 12, len(MODES)), 1e-6)
    d, a = MODES.index("dorian"), MODES.index("aeolian")
    pk[0, 2, d], pk[0, 9, a] = 0.9, 0.1   # section 1: D dorian, sure
    pk[1, 2, d], pk[1, 9, a] = 0.4, 0.6   # section 2: A aeolian, unsure
    pk[2, 9, a] = 1.0                     # the tune: A aeolian
    pk /= pk.sum(axis=(1, 2), keepdims=True)
    n = 3

    def data(work):
        return Labelled([np.zeros(1, np.int64)] * n, np.zeros(n, int), np.array([2, 2, 9]),
                        np.array([d, d, a]), np.ones(n, bool), np.ones(n, bool), ["m", "m", "t"],
                        ["m1", "m2", "t"], work=work)

    r = key_metrics(pk, data(["m", "m", "t"]))
    assert r["human"]["key_accuracy"] == pytest.approx(2 / 3)
    assert r["human_work"]["works"] == 2 and r["human_work"]["key_accuracy"] == 1.0
    m = r["human_work"]["multi_file"]  # only the mass has several files
    assert m["works"] == 1 and m["mode_accuracy"] == 1.0 and 0.5 < m["mode_confidence"] < 1.0
    assert m["mode_ece"] == pytest.approx(1.0 - m["mode_confidence"])
    assert "human_work" not in key_metrics(pk, data(None))


def test_cli_without_a_model_is_one_clear_line(tmp_path, capsys):
    rc = main(["classify", "x.mid", "--model", str(tmp_path / "none.pt")])
    _, err = capsys.readouterr()
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "no model" in err


def test_key_index_layout():
    assert KEY_LABELS[key_index(2, MODES.index("dorian"))] == "D dorian"
    assert len(KEY_LABELS) == 96


def test_train_evaluate_and_classify_from_the_command_line(tmp_path, capsys, monkeypatch):
    """corpus build --from -> train (LM) -> train-classifier -> evaluate-classifier -> classify."""
    src = tmp_path / "src"
    for w in ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1", "bach/bwv86.6",
              "bach/bwv267", "bach/bwv40.8", "bach/bwv244.3"):
        write_midi(m21_to_score(corpus.parse(w)), src / (w.split("/")[1] + ".mid"))
    monkeypatch.setenv("MUSICGPT_CORPORA", str(tmp_path / "corpora"))
    assert main(["corpus", "build", "--from", str(src), "--name", "tiny", "--label", "style=chorale",
                 "--jobs", "1", "--no-progress"]) == 0
    tiny = ["--context", "96", "--layers", "1", "--heads", "2", "--d-model", "32", "--dropout", "0",
            "--batch-size", "4", "--eval-every", "3", "--eval-batches", "1", "--no-progress"]
    assert main(["train", "--corpus", "tiny", "--out", str(tmp_path / "lm"), "--steps", "3", *tiny]) == 0
    out = tmp_path / "clf"
    assert main(["train-classifier", "--init", str(tmp_path / "lm" / "best.pt"), "--corpus", "tiny",
                 "--out", str(out), "--steps", "4", "--batch-size", "4", "--freeze"]) == 0
    capsys.readouterr()
    assert main(["evaluate-classifier", "--corpus", "tiny", "--model", str(out / "classifier.pt"),
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["pieces"] >= 1 and 0.0 <= r["key"]["all"]["mode_accuracy"] <= 1.0
    assert main(["classify", str(src / "bwv269.mid"), "--model", str(out / "classifier.pt")]) == 0
    assert "chorale" in capsys.readouterr().out


def test_the_shipped_checkpoint_classifies_a_chorale_and_its_tritone_transposition(scores):
    """The heads load from the shipped classifier; the answer survives a tritone shift."""
    from musicgpt.cli.classify import DEFAULT_MODEL

    assert DEFAULT_MODEL.name == "classifier.pt"
    # the shipped language model carries (frozen-body) heads of its own
    assert load_classifier(DEFAULT_MODEL.with_name("default.pt")).styles
    clf = load_classifier(DEFAULT_MODEL)
    assert clf.styles and "chorale" in clf.styles and clf.heads.key_head.n_modes == len(MODES)
    r0 = clf.classify_score(scores["chorale"])
    r6 = clf.classify_score(scores["chorale"].shift_pitch(6))
    assert r0["style"][0][0] == "chorale"
    assert r0["mode"][0][0] == r6["mode"][0][0]
    # the tonic moves with the notes: bwv66.6's answer, six semitones up
    t0, t6 = r0["tonic"][0][0], r6["tonic"][0][0]
    from musicgpt.theory import pitch_class as tonic_index

    assert (tonic_index(t6) - tonic_index(t0)) % 12 == 6


def test_style_balance_counts_style_and_collection(tok, scores):
    """Three Palestrina masses, one trecento mass, one motet: balancing per (style, collection)
    lets the lone trecento mass be drawn as often as a whole small style."""
    items = [(scores["mass"], 1, 7, "mixolydian")] * 4 + [(scores["chorale"], 0, 6, "aeolian")]
    data = data_of(tok, items)
    data.piece_ids = ["palestrina/a", "palestrina/b", "palestrina/c", "trecento/g", "trecento/m"]
    by_style = Batches(data, tok, quick()).weights
    by_cell = Batches(data, tok, quick(style_balance="style+source")).weights
    assert torch.allclose(by_style[:4], torch.full((4,), 0.5, dtype=by_style.dtype))
    assert by_cell[3] == by_cell[4] == 1.0 and by_cell[0] == pytest.approx(3 ** -0.5)


def test_explain_shows_the_degrees_finals_and_rules_for_a_dorian_tune(capsys):
    from pathlib import Path

    from musicgpt.cli import main

    jig = Path(__file__).resolve().parents[1] / "examples" / "jackson-over-the-water.abc"
    assert main(["classify", str(jig), "--explain", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)[0]["explain"]
    assert ev["final"] == "G" and ev["lowest_final"] == "G"
    assert ev["tonic"] == "G"  # the shipped classifier's tonic for this tune
    assert set(ev["degrees"]) == {"3rd", "6th", "7th"} and set(ev["rules"]) == {
        "final + best scale", "tonic/fifth profile", "music21 analyze('key')"}
    # on G its sixth is E natural and its seventh F natural: dorian's marks
    assert ev["degrees"]["6th"]["upper"][0] == "E" and ev["degrees"]["7th"]["lower"][0] == "F"
    assert ev["degrees"]["6th"]["upper"][1] > ev["degrees"]["6th"]["lower"][1]
    assert ev["degrees"]["7th"]["lower"][1] > ev["degrees"]["7th"]["upper"][1]
    assert ev["rules"]["final + best scale"] == "G dorian"


def test_an_answer_below_the_threshold_is_unsure():
    from musicgpt.classifier.classify import describe

    ps = np.array([0.45, 0.35, 0.2])
    pk = np.zeros((12, len(MODES)))
    pk[2, MODES.index("dorian")] = 0.9
    pk[9, MODES.index("aeolian")] = 0.1
    got = describe(ps, pk, ("chorale", "mass", "motet"), unsure_below=0.5)
    assert got["answer"] == {"style": "unsure", "mode": "dorian", "tonic": "D", "key": "D dorian"}
    assert got["style"][0] == ["chorale", 0.45]  # the probabilities are still shown
    assert describe(ps, pk, ("chorale", "mass", "motet"), unsure_below=0.0)["answer"]["style"] == "chorale"
    assert describe(ps, pk, ("chorale", "mass", "motet"), unsure_below=0.95)["answer"]["key"] == "unsure"


@pytest.mark.slow
def test_classify_says_unsure_below_the_flag(tmp_path, capsys):
    path = tmp_path / "bwv66.6.mid"
    write_midi(m21_to_score(corpus.parse("bach/bwv66.6")), path)
    assert main(["classify", str(path), "--json", "--unsure-below", "1"]) == 0
    sure_never = json.loads(capsys.readouterr().out)[0]
    assert set(sure_never["answer"].values()) == {"unsure"}
    assert main(["classify", str(path), "--unsure-below", "0"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.rsplit(": ", 1)[1] == "chorale, F# aeolian"  # (the folder's name has "unsure" in it)
