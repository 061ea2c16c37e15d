"""plot: the training curves of a run the real trainer wrote, the resume rule, clear errors for bad
folders; and `evaluate-classifier --confusion`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from matplotlib.image import imread
from music21 import corpus

from musicgpt.cli import main
from musicgpt.config import ModelConfig, TrainConfig
from musicgpt.model import GPT
from musicgpt.rendering.charts import read_run
from musicgpt.scores import m21_to_score, write_midi
from musicgpt.trainer import train

V, CTX = 12, 16
SEQ = torch.arange(400) % 7  # a repeating sequence a tiny model learns


def get_batch(gen: torch.Generator, B: int = 8):
    starts = torch.randint(0, len(SEQ) - CTX - 1, (B,), generator=gen)
    rows = torch.stack([SEQ[s:s + CTX + 1] for s in starts.tolist()])
    return rows[:, :-1], rows[:, 1:]


def evaluate(model: GPT) -> dict[str, float]:
    x, y = get_batch(torch.Generator().manual_seed(123), B=4)
    loss = model(x, y)[1].item()
    return {"loss": loss, "bits_per_token": loss / np.log(2), "bits_per_note": 3 * loss / np.log(2)}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run folder as `musicgpt train` leaves it, by the real trainer: 30 steps, 3 evaluations."""
    out = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=V, context=CTX, n_layer=1, n_head=2, d_model=32, dropout=0.0))
    cfg = TrainConfig(steps=30, batch_size=8, lr=5e-3, min_lr=5e-4, warmup=3, eval_every=10,
                      log_every=5, device="cpu", seed=1)
    result = train(model, cfg, get_batch, evaluate, out, {"corpus": "synthetic"}, progress=False)
    return out, result


def test_plot_draws_the_curves_the_trainer_logged(run, capsys):
    out, result = run
    assert main(["plot", str(out)]) == 0
    png = out / "curves.png"
    img = imread(png)
    assert img.shape[0] > 200 and img.shape[1] > 600  # two panels side by side
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"wrote {png} (to step 30: 6 train points, 3 evaluations;")
    assert f"best validation loss {result['best_eval_loss']:.3f} at step {result['best_step']}" in line
    r = read_run(out)
    assert list(r.train_loss) == [5, 10, 15, 20, 25, 30] and list(r.valid_loss) == [10, 20, 30]
    assert r.bits_name == "bits/note" and r.corpus == "synthetic"
    assert min(r.valid_loss.values()) == pytest.approx(result["best_eval_loss"])
    assert r.train_loss[30] < r.train_loss[5]  # it learned
    assert main(["plot", str(out), "--out", str(out / "other.png")]) == 0
    assert imread(out / "other.png").shape == img.shape


def test_after_a_resume_the_later_lines_replace_the_earlier_ones(tmp_path):
    events = [{"event": "train", "step": 5, "loss": 3.0}, {"event": "eval", "step": 10, "eval_loss": 2.5},
              {"event": "train", "step": 10, "loss": 2.0}, {"event": "train", "step": 15, "loss": 9.9},
              {"event": "resume", "step": 10},  # killed after step 15; last.pt was at step 10
              {"event": "train", "step": 15, "loss": 1.5},
              {"event": "eval", "step": 20, "eval_loss": 1.2, "eval_bits_per_token": 1.7}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events)
                                            + '{"event": "train", "st')  # a line cut short by a kill
    r = read_run(tmp_path)
    assert r.train_loss == {5: 3.0, 10: 2.0, 15: 1.5}
    assert r.valid_loss == {10: 2.5, 20: 1.2}
    assert r.bits_name == "bits/token" and r.valid_bits == {20: 1.7}


def test_bad_run_folders_are_one_line_and_exit_2(tmp_path, capsys):
    cases = [([str(tmp_path / "missing")], "no such folder"),
             ([str(tmp_path)], "no metrics.jsonl"),
             ([str(tmp_path), "--out", str(tmp_path / "curves.pdf")], "should end in .png")]
    for argv, message in cases:
        assert main(["plot", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("musicgpt: error:") and message in err, err
    (tmp_path / "metrics.jsonl").write_text("not json\n")
    assert main(["plot", str(tmp_path)]) == 2
    assert "line 1: not a metrics record" in capsys.readouterr().err
    (tmp_path / "metrics.jsonl").write_text('{"event": "save", "step": 3}\n')
    assert main(["plot", str(tmp_path)]) == 2
    assert "no training step is logged" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]  # nothing drawn


def test_evaluate_classifier_draws_the_confusion_matrices(tmp_path, capsys, monkeypatch):
    src = tmp_path / "src"
    for w in ("bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1", "bach/bwv86.6",
              "bach/bwv267", "bach/bwv40.8", "bach/bwv244.3"):
        write_midi(m21_to_score(corpus.parse(w)), src / (w.split("/")[1] + ".mid"))
    monkeypatch.setenv("MUSICGPT_CORPORA", str(tmp_path / "corpora"))
    assert main(["corpus", "build", "--from", str(src), "--name", "tiny", "--label", "style=chorale",
                 "--jobs", "1", "--no-progress"]) == 0
    png = tmp_path / "confusion.png"
    assert main(["evaluate-classifier", "--corpus", "tiny", "--no-progress", "--confusion", "x.pdf"]) == 2
    assert "should end in .png" in capsys.readouterr().err
    assert main(["evaluate-classifier", "--corpus", "tiny", "--json", "--no-progress",
                 "--confusion", str(png)]) == 0
    captured = capsys.readouterr()
    r = json.loads(captured.out)  # stdout stays JSON; the note goes to stderr
    assert f"wrote {png}" in captured.err
    img = imread(png)
    assert img.shape[1] > 1.5 * img.shape[0]  # style and mode, side by side
    assert sum(map(sum, r["style"]["confusion"])) == r["pieces"] >= 1
