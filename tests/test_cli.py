"""End to end through the command line: a tiny corpus of real chorales, training, continuation,
evaluation, and the clear one-line errors a user gets for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest
import symusic
from music21 import corpus

from musicgpt.cli import main
from musicgpt.errors import MusicGPTError
from musicgpt.notestring import parse_notes
from musicgpt.scores import m21_to_score, write_midi

CHORALES = ["bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1", "bach/bwv86.6",
            "bach/bwv267", "bach/bwv40.8", "bach/bwv244.3", "bach/bwv145.5", "bach/bwv248.33-3"]
TINY = ["--context", "96", "--layers", "1", "--heads", "2", "--d-model", "32", "--dropout", "0",
        "--batch-size", "4", "--eval-every", "5", "--eval-batches", "2", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for a few steps on a tiny corpus built with `corpus build --from`."""
    tmp = tmp_path_factory.mktemp("e2e")
    src = tmp / "src"
    for w in CHORALES:
        write_midi(m21_to_score(corpus.parse(w)), src / (w.split("/")[1] + ".mid"))
    mp = pytest.MonkeyPatch()
    mp.setenv("MUSICGPT_CORPORA", str(tmp / "corpora"))
    assert main(["corpus", "build", "--from", str(src), "--name", "tiny", "--label", "style=chorale",
                 "--jobs", "1", "--no-progress"]) == 0
    out = tmp / "run"
    assert main(["train", "--corpus", "tiny", "--out", str(out), "--steps", "10", *TINY]) == 0
    yield tmp, out
    mp.undo()


def test_training_writes_checkpoints_and_metrics(trained):
    _, out = trained
    assert (out / "best.pt").is_file() and (out / "last.pt").is_file()
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if "bits_per_note" in json.dumps(x)]
    assert evals, "no evaluation was logged"


def test_continue_a_note_string_starts_with_exactly_the_prompt(trained, capsys):
    tmp, out = trained
    midi = tmp / "theme.mid"
    assert main(["continue", "C4 D4 E4 F4 G4:h", "--model", str(out / "best.pt"), "--out", str(midi),
                 "--length", "2bars", "--seed", "1"]) == 0
    record = json.loads(midi.with_suffix(".json").read_text())
    assert record["grammar_error_rate"] == 0.0
    pm = pretty_midi.PrettyMIDI(str(midi))  # a second library parses it too
    assert sum(len(i.notes) for i in pm.instruments) >= 5
    got = symusic.Score(str(midi))
    want = parse_notes("C4 D4 E4 F4 G4:h")
    scale = got.ticks_per_quarter / want.ticks_per_quarter
    first = sorted((n.time, n.duration, n.pitch) for n in got.tracks[0].notes)[:5]
    want_notes = want.tracks[0].notes
    assert first == [(round(n.time * scale), round(n.duration * scale), n.pitch) for n in want_notes]
    assert "wrote" in capsys.readouterr().out


def test_continue_a_midi_file_with_bars_and_only_continuation(trained):
    tmp, out = trained
    prompt = tmp / "src" / "bwv66.6.mid"
    midi = tmp / "cont.mid"
    assert main(["continue", str(prompt), "--bars", "1", "--model", str(out / "best.pt"), "--out",
                 str(midi), "--length", "40tokens", "--only-continuation", "--samples", "2"]) == 0
    for k in (1, 2):
        path = tmp / f"cont-{k}.mid"
        assert path.is_file()
        assert json.loads(path.with_suffix(".json").read_text())["new_tokens"] <= 40


def test_continue_with_render_writes_audio_roll_and_score(trained, capsys):
    tmp, out = trained
    midi = tmp / "heard.mid"
    assert main(["continue", "C4 D4 E4 F4 G4:h", "--model", str(out / "best.pt"), "--out", str(midi),
                 "--length", "1bars", "--render"]) == 0
    for suffix in (".wav", ".png", ".musicxml"):
        assert midi.with_suffix(suffix).stat().st_size > 0
    printed = capsys.readouterr().out
    assert "heard.wav" in printed and "heard.png" in printed and "heard.musicxml" in printed


def test_evaluate_reports_transformer_beside_ngrams(trained, capsys):
    _, out = trained
    capsys.readouterr()
    assert main(["evaluate", "--model", str(out / "best.pt"), "--corpus", "tiny", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["transformer"]["bits_per_note"] > 0
    assert "2-gram" in r["ngram"] and r["ratio_to_best_ngram"] > 0
    # without the control tokens the same notes are scored (only the windows' lead differs)
    bare = r["transformer_no_controls"]
    assert bare["notes"] == r["transformer"]["notes"] and bare["bits_per_note"] > 0
    assert bare["bits_per_note"] != r["transformer"]["bits_per_note"]


def test_resume_continues_from_the_last_step(trained):
    _, out = trained
    assert main(["train", "--corpus", "tiny", "--out", str(out), "--steps", "12", "--resume", *TINY]) == 0
    steps = [json.loads(x).get("step") for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) >= 12


def _error_line(capsys, argv):
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0
    assert len(err) == 1 and err[0].startswith("musicgpt: error:"), err
    assert "Traceback" not in err[0]
    return err[0]


def test_bad_prompts_give_one_clear_line(trained, tmp_path, capsys):
    _, out = trained
    model = ["--model", str(out / "best.pt"), "--out", str(tmp_path / "x.mid")]
    assert "no such file" in _error_line(capsys, ["continue", str(tmp_path / "missing.mid"), *model])
    text = tmp_path / "notes.mid"
    text.write_text("this is not a MIDI file\n")
    assert "not a readable MIDI" in _error_line(capsys, ["continue", str(text), *model])
    empty = tmp_path / "empty.mid"
    symusic.Score(480).dump_midi(str(empty))
    assert "no pitched notes" in _error_line(capsys, ["continue", str(empty), *model])
    drums = tmp_path / "drums.mid"
    s = symusic.Score(480)
    s.tracks.append(symusic.Track(program=0, is_drum=True))
    s.tracks[0].notes.append(symusic.Note(0, 480, 36, 100))
    s.dump_midi(str(drums))
    assert "no pitched notes" in _error_line(capsys, ["continue", str(drums), *model])
    long_prompt = " ".join(["C4:e", "D4", "E4", "F4"] * 20)
    assert "context" in _error_line(capsys, ["continue", long_prompt, *model])
    assert "no model" in _error_line(capsys, ["continue", "C4", "--model", str(tmp_path / "none.pt")])
    assert not (tmp_path / "x.mid").exists()  # nothing half-written


def test_outputs_never_overwrite_the_prompt_or_each_other(trained, tmp_path, capsys):
    _, out = trained
    model = ["--model", str(out / "best.pt"), "--length", "1"]
    prompt = tmp_path / "q.musicxml"
    prompt.write_bytes(Path(corpus.getWork("bach/bwv66.6")).read_bytes())
    before = prompt.read_bytes()
    line = _error_line(capsys, ["continue", str(prompt), "--bars", "2", "--out", str(tmp_path / "q.mid"),
                                "--render", *model])
    assert "overwrite the prompt" in line
    assert prompt.read_bytes() == before
    bad_out = ["continue", "C4 D4", "--out", str(tmp_path / "r.json"), *model]
    assert "not a MIDI file name" in _error_line(capsys, bad_out)
    kept = tmp_path / "clash.mid"
    kept.write_bytes(b"old")
    (tmp_path / "clash.json").mkdir()  # the record could not be written: nothing may be
    assert "not a regular file" in _error_line(capsys, ["continue", "C4 D4", "--out", str(kept), *model])
    assert kept.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clash.json", "clash.mid", "q.musicxml"]


def test_sampling_options_out_of_range_are_refused(trained, tmp_path, capsys):
    _, out = trained
    for bad in (["--top-p", "0"], ["--top-p", "1.5"], ["--temperature", "nan"], ["--temperature", "-1"],
                ["--top-k", "-1"]):
        with pytest.raises(SystemExit) as e:
            main(["continue", "C4 D4", "--model", str(out / "best.pt"), "--out", str(tmp_path / "x.mid"),
                  *bad])
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {bad[0]}" in err and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def test_a_whole_piece_as_header_still_gets_the_bars_asked_for(trained, tmp_path, capsys):
    _, out = trained
    midi = tmp_path / "short.mid"
    write_midi(parse_notes("C4 D4 E4 F4 G4:w"), midi)  # two bars, then the end of the piece
    assert main(["continue", str(midi), "--model", str(out / "best.pt"), "--out", str(tmp_path / "c.mid"),
                 "--length", "3bars", "--seed", "4"]) == 0
    record = json.loads((tmp_path / "c.json").read_text())
    assert record["new_bars"] == 3
    assert "3 new bars" in capsys.readouterr().out


def test_a_note_string_with_a_dot_is_called_theme(trained, tmp_path, monkeypatch):
    _, out = trained
    monkeypatch.chdir(tmp_path)
    assert main(["continue", "C4:q. D4:e E4", "--model", str(out / "best.pt"), "--length", "1"]) == 0
    assert (tmp_path / "theme-continued.mid").is_file()


def test_help_explains_every_command(capsys):
    for cmd in (["--help"], ["continue", "--help"], ["train", "--help"], ["evaluate", "--help"],
                ["render", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(cmd)
        assert e.value.code == 0
    printed = capsys.readouterr().out
    assert "note string" in printed and "piano roll" in printed


def test_info_lists_what_the_model_knows(trained, capsys):
    tmp, out = trained
    assert main(["info", "--model", str(out / "best.pt"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["controls"]["style"] == ["chorale"] and "dorian" in info["controls"]["mode"]
    assert info["controls"]["key"][:3] == ["C", "C#", "D"]
    assert (info["layers"], info["d_model"], info["context"], info["corpus"]) == (1, 32, 96, "tiny")
    assert main(["info", "--model", str(out / "best.pt")]) == 0
    printed = capsys.readouterr().out
    assert "--style    chorale" in printed and "--voices" in printed
    assert main(["info", "--model", str(tmp / "nothing.pt")]) == 2
    assert "no model at" in capsys.readouterr().err


def test_voices_asks_for_harmony_and_bad_values_are_refused(trained, tmp_path, capsys):
    _, out = trained
    midi = tmp_path / "one.mid"
    assert main(["continue", "C4 D4 E4 F4 G4:h", "--model", str(out / "best.pt"), "--out", str(midi),
                 "--length", "2bars", "--voices", "3"]) == 0
    assert json.loads(midi.with_suffix(".json").read_text())["voices"] == 3
    assert {t.program for t in symusic.Score(str(midi)).tracks} <= {16, 17, 18}
    with pytest.raises(SystemExit):
        main(["continue", "C4 D4", "--model", str(out / "best.pt"), "--voices", "0"])
    assert "at least one voice" in capsys.readouterr().err
    assert main(["continue", "C4 D4", "--model", str(out / "best.pt"), "--voices", "9",
                 "--out", str(tmp_path / "x.mid")]) == 2
    assert "--voices" in capsys.readouterr().err
    # a model trained today has key controls: the key is told and held
    keyed = tmp_path / "keyed.mid"
    assert main(["continue", "D4 F4 G4 A4", "--model", str(out / "best.pt"), "--out", str(keyed),
                 "--key", "D", "--mode", "dorian", "--length", "1bars"]) == 0
    record = json.loads(keyed.with_suffix(".json").read_text())
    assert (record["key"], record["key_used"], record["key_kept"]) == ("D", "D dorian", True)
    assert "key: D dorian (given; held" in capsys.readouterr().out
    # a key in one word pair, told only; and a model without tonic tokens still holds a key
    free = tmp_path / "free.mid"
    assert main(["continue", "D4 F4 G4 A4", "--model", str(out / "best.pt"), "--out", str(free),
                 "--key", "D minor", "--free", "--length", "1bars"]) == 0
    record = json.loads(free.with_suffix(".json").read_text())
    assert (record["key_used"], record["key_kept"], record["final_on_tonic"]) == ("D aeolian", False, None)
    for bad, said in ((["--key", "X dorian"], "not a pitch name"), (["--key", "D blue"], "unknown mode"),
                      (["--key", "D dorian", "--mode", "aeolian"], "disagree")):
        assert main(["continue", "D4 F4 G4 A4", "--model", str(out / "best.pt"), *bad,
                     "--out", str(tmp_path / "bad.mid")]) == 2
        assert said in capsys.readouterr().err


@pytest.mark.parametrize("command", ["", "continue", "train", "evaluate", "classify", "info",
                                     "evaluate-classifier", "train-classifier", "render", "corpus",
                                     "corpus build"])
def test_help_imports_no_heavy_library(command):
    """`--help` stays instant: torch, miditok and music21 load only when a command runs."""
    code = ("import sys\nfrom musicgpt.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'miditok', 'music21') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code, *command.split(), "--help"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_library_errors_name_the_commands_flags(capsys, monkeypatch):
    """A library error names a parameter in backquotes; the CLI shows the command's flag."""
    from musicgpt import lm

    def fail(*args, **kwargs):
        raise MusicGPTError("`d_model` must be a multiple of `n_head`")

    monkeypatch.setattr(lm, "train_lm", fail)
    line = _error_line(capsys, ["train", "--corpus", "x", "--out", "unused"])
    assert line == "musicgpt: error: --d-model must be a multiple of --heads"


def test_usage_errors_are_one_line_with_a_help_hint_and_v_works_after_the_command(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["continue", "C4", "--samples", "many"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("musicgpt continue: error: argument --samples")
    assert err[0].endswith("(see `musicgpt continue --help`)")
    from musicgpt.cli import build_parser

    assert build_parser().parse_args(["info", "-v"]).verbose
    assert build_parser().parse_args(["-v", "info"]).verbose
    assert not build_parser().parse_args(["info"]).verbose


def test_a_missing_model_says_to_check_the_path(tmp_path, capsys):
    line = _error_line(capsys, ["continue", "C4 D4", "--model", str(tmp_path / "nothere.pt"),
                                "--out", str(tmp_path / "x.mid")])
    assert "check the path, or leave out --model" in line


@pytest.mark.parametrize("flags, says", [
    (["--length", "100000bars"], "at most 128 bars"),
    (["--length", "99999999tokens"], "at most 20000 tokens"),
    (["--samples", "1000"], "--samples must be 1 to 100"),
])
def test_absurd_sizes_are_refused_with_the_cap_before_any_work(tmp_path, capsys, flags, says):
    line = _error_line(capsys, ["continue", "C4 D4", *flags, "--out", str(tmp_path / "x.mid")])
    assert says in line
    assert list(tmp_path.iterdir()) == []


def test_a_tiny_temperature_is_greedy_and_a_huge_seed_is_refused(tmp_path, capsys):
    for name, temperature in (("tiny.mid", "1e-320"), ("greedy.mid", "0")):
        argv = ["continue", "C4 D4 E4", "--temperature", temperature, "--length", "1bars"]
        assert main([*argv, "--out", str(tmp_path / name)]) == 0
    assert (tmp_path / "tiny.mid").read_bytes() == (tmp_path / "greedy.mid").read_bytes()
    with pytest.raises(SystemExit):
        main(["continue", "C4", "--seed", "99999999999999999999999"])
    assert "argument --seed" in capsys.readouterr().err


def test_notes_outside_the_piano_range_are_named_not_dropped_in_silence(tmp_path, capsys):
    def midi(name, pitches):
        score = symusic.Score(480)
        track = symusic.Track(program=0)
        for i, p in enumerate(pitches):
            track.notes.append(symusic.Note(i * 480, 480, p, 80))
        score.tracks.append(track)
        score.dump_midi(str(tmp_path / name))
        return str(tmp_path / name)

    low = midi("low.mid", [10, 12, 14, 15])
    assert "outside A0-C8" in _error_line(capsys, ["continue", low, "--out", str(tmp_path / "a.mid")])
    assert "no notes to classify in A0-C8" in capsys.readouterr().err + _classify_error(capsys, low)
    mixed = midi("mixed.mid", [10, 12, 60, 62, 64])
    assert main(["continue", mixed, "--length", "1bars", "--out", str(tmp_path / "b.mid")]) == 0
    assert "2 of the prompt's 5 notes lie outside A0-C8" in capsys.readouterr().err


def _classify_error(capsys, path):
    capsys.readouterr()
    assert main(["classify", path]) != 0
    return capsys.readouterr().err


def test_continue_replaces_its_own_record_but_not_a_json_the_user_wrote(tmp_path, capsys):
    out, mine = tmp_path / "x.mid", tmp_path / "x.json"
    mine.write_text('{"my": "notes"}')
    line = _error_line(capsys, ["continue", "C4 D4", "--length", "1bars", "--out", str(out)])
    assert f"{mine} already exists and no earlier continue wrote it; pass --force" in line
    assert mine.read_text() == '{"my": "notes"}' and not out.exists()
    assert main(["continue", "C4 D4", "--length", "1bars", "--out", str(out), "--force"]) == 0
    assert json.loads(mine.read_text())["prompt"] == "C4 D4"
    assert main(["continue", "C4 E4", "--length", "1bars", "--out", str(out)]) == 0  # its own record
    assert json.loads(mine.read_text())["prompt"] == "C4 E4"


def test_console_and_record_count_the_same_new_notes(tmp_path, capsys):
    out = tmp_path / "x.mid"
    assert main(["continue", "C4 D4 E4 F4", "--length", "2bars", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    record = json.loads(out.with_suffix(".json").read_text())
    assert f"{record['new_notes']} new notes" in said
    assert record["notes_written"] == record["new_notes"] + 4  # the header's four, then the new


def test_long_continuations_show_progress_in_bars_unless_told_not_to(tmp_path, capsys):
    argv = ["continue", "C4 D4 E4 F4", "--length", "16bars", "--out", str(tmp_path / "x.mid")]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "continue:" in err and "/17" in err and "bar/s" in err  # 16 bars and the header's own
    assert main([*argv, "--no-progress"]) == 0
    assert "continue:" not in capsys.readouterr().err
    assert main(["continue", "C4 D4", "--length", "4bars", "--out", str(tmp_path / "y.mid")]) == 0
    assert "continue:" not in capsys.readouterr().err  # a few seconds: no bar
