"""The trainer and the checkpoint format: learning, files written, resume, round trips, bad files."""

import json

import pytest
import torch

from musicgpt.checkpoint import load_checkpoint, save_checkpoint
from musicgpt.config import ModelConfig, TrainConfig, from_dict, to_dict
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT
from musicgpt.trainer import Schedule, lr_at, run_steps, train

V, CTX, PERIOD = 12, 16, 7



SEQ = torch.arange(400) % PERIOD  # a repeating sequence a model can learn exactly


def get_batch(gen: torch.Generator, B: int = 8):
    starts = torch.randint(0, len(SEQ) - CTX - 1, (B,), generator=gen)
    rows = torch.stack([SEQ[s : s + CTX + 1] for s in starts.tolist()])
    return rows[:, :-1], rows[:, 1:]


def evaluate(model: GPT) -> dict[str, float]:
    x, y = get_batch(torch.Generator().manual_seed(123), B=4)
    _, loss = model(x, y)
    return {"loss": loss.item(), "accuracy": 0.0}


def new_model(dropout: float = 0.1) -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=V, context=CTX, n_layer=1, n_head=2, d_model=32, dropout=dropout))


CFG = TrainConfig(steps=40, batch_size=8, lr=5e-3, min_lr=5e-4, warmup=4, eval_every=10,
                  log_every=5, device="cpu", seed=3)


def read_metrics(path):
    return [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]


def test_training_lowers_the_loss_and_writes_its_files(tmp_path):
    model = new_model()
    before = evaluate(model.eval())["loss"]
    result = train(model, CFG, get_batch, evaluate, tmp_path, {"corpus": "synthetic"}, progress=False)
    assert before > 2.0
    assert result["best_eval_loss"] < 0.5 * before
    assert result["steps"] == 40 and result["tokens_per_s"] > 0 and result["wall_s"] > 0
    assert {p.name for p in tmp_path.iterdir()} >= {"best.pt", "last.pt", "metrics.jsonl", "config.json"}
    config = json.loads((tmp_path / "config.json").read_text())
    assert from_dict(TrainConfig, config["train_config"]) == CFG
    assert config["model_config"]["vocab_size"] == V and config["corpus"] == "synthetic"
    events = read_metrics(tmp_path)
    train_steps = [e["step"] for e in events if e["event"] == "train"]
    evals = [e for e in events if e["event"] == "eval"]
    assert train_steps == [5, 10, 15, 20, 25, 30, 35, 40]
    assert [e["step"] for e in evals] == [10, 20, 30, 40]
    assert all({"lr", "loss", "tokens_per_s"} <= set(e) for e in events if e["event"] == "train")
    assert min(e["eval_loss"] for e in evals) == pytest.approx(result["best_eval_loss"])
    best, meta, extra = load_checkpoint(tmp_path / "best.pt")
    assert meta["corpus"] == "synthetic"
    assert meta["metrics"]["loss"] == pytest.approx(result["best_eval_loss"])
    assert extra["step"] == result["best_step"] and extra["optimizer"] is None
    assert evaluate(best)["loss"] == pytest.approx(result["best_eval_loss"], abs=1e-5)


class Crash(Exception):
    pass


def crashing_at(call: int):
    """get_batch that raises Crash on its `call`-th use (a kill mid-run)."""
    calls = 0

    def batch(gen):
        nonlocal calls
        calls += 1
        if calls == call:
            raise Crash
        return get_batch(gen)

    return batch


def test_resume_after_a_crash_ends_where_an_unbroken_run_ends(tmp_path):
    whole = new_model()
    train(whole, CFG, get_batch, evaluate, tmp_path / "whole", {}, progress=False)

    with pytest.raises(Crash):  # after the step-20 checkpoint, mid-way to the next one
        train(new_model(), CFG, crashing_at(26), evaluate, tmp_path / "broken", {}, progress=False)
    _, _, extra = load_checkpoint(tmp_path / "broken" / "last.pt")
    assert extra["step"] == 20
    resumed = new_model()  # fresh weights: resume must replace them all
    result = train(resumed, CFG, get_batch, evaluate, tmp_path / "broken", {}, resume=True, progress=False)
    assert result["steps"] == 40
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
    steps = [e["step"] for e in read_metrics(tmp_path / "broken") if e["event"] == "eval"]
    assert steps == [10, 20, 30, 40]  # 25 was logged before the crash; evals continue from 20


def test_resume_without_last_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(MusicGPTError, match="cannot resume.*last.pt does not exist"):
        train(new_model(), CFG, get_batch, evaluate, tmp_path, {}, resume=True, progress=False)


def test_learning_rate_warms_up_then_decays_to_min():
    at = lambda s: lr_at(s, steps=100, warmup=10, lr=1e-3, min_lr=1e-4)  # noqa: E731
    assert at(0) == pytest.approx(1e-4)
    assert at(9) == pytest.approx(1e-3)
    assert at(55) == pytest.approx(5.5e-4)
    assert at(100) == pytest.approx(1e-4)
    assert all(at(s) >= at(s + 1) for s in range(10, 100))


def test_schedule_sets_each_group_from_its_own_peak_and_floor():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b]}], lr=1.0)
    sched = Schedule(steps=10, warmup=0, peaks=((1.0, 0.1), (0.5, 0.0)))
    assert sched.apply(opt, 0) == 1.0 and opt.param_groups[1]["lr"] == 0.5
    sched.apply(opt, 10)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.0])


def test_run_steps_clips_and_reports_every_step():
    w = torch.nn.Parameter(torch.tensor([3.0]))
    opt = torch.optim.SGD([w], lr=1.0)
    seen = []
    run_steps(opt, Schedule(3, 0, ((1.0, 1.0),)), lambda step: (w * 100).sum(), [w], grad_clip=1.0,
              start=1, after=lambda done, lr, loss: seen.append((done, lr, float(loss))))
    # the gradient 100 is clipped to norm 1: w moves by lr * 1 per step, steps 1 and 2 only
    assert [d for d, _, _ in seen] == [2, 3] and float(w.detach()) == pytest.approx(1.0)


@pytest.mark.parametrize("half", [False, True])
def test_checkpoint_round_trip(tmp_path, half):
    model = new_model().eval()
    opt = model.configure_optimizer(0.1, 1e-3)
    _, loss = model(*get_batch(torch.Generator().manual_seed(0)))
    loss.backward()
    opt.step()
    path = tmp_path / "m.pt"
    meta = {"tokenizer": {"kind": "REMI"}, "labels": {"styles": ["a", "b"]}}
    save_checkpoint(path, model, meta, optimizer=opt, step=7, half=half)
    raw = torch.load(path, weights_only=True)  # plain tensors and containers only
    assert raw["format"] == "musicgpt-ckpt-1"
    assert raw["model"]["wte.weight"].dtype == (torch.float16 if half else torch.float32)
    loaded, meta2, extra = load_checkpoint(path)
    assert not loaded.training and loaded.wte.weight.dtype == torch.float32
    assert loaded.lm_head.weight is loaded.wte.weight  # still tied after loading
    assert meta2["tokenizer"] == meta["tokenizer"] and meta2["labels"] == meta["labels"]
    assert meta2["model_config"] == to_dict(model.cfg)
    assert extra["step"] == 7 and extra["optimizer"]["state"]
    x = torch.randint(V, (2, CTX))
    tol = dict(rtol=1e-2, atol=1e-2) if half else dict(rtol=0, atol=0)
    torch.testing.assert_close(loaded(x)[0], model(x)[0], **tol)


def test_half_checkpoint_is_about_half_the_size(tmp_path):
    model = new_model()
    save_checkpoint(tmp_path / "full.pt", model, {})
    save_checkpoint(tmp_path / "half.pt", model, {}, half=True)
    ratio = (tmp_path / "half.pt").stat().st_size / (tmp_path / "full.pt").stat().st_size
    assert ratio < 0.6  # the tied head is not stored twice


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_bad_checkpoint_files_are_clear_errors(tmp_path):
    with pytest.raises(MusicGPTError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(MusicGPTError, match="not a readable musicgpt checkpoint"):
        load_checkpoint(text)
    good = tmp_path / "good.pt"
    save_checkpoint(good, new_model(), {})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(MusicGPTError, match="not a readable musicgpt checkpoint"):
        load_checkpoint(truncated)
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(MusicGPTError, match="not a musicgpt checkpoint"):
        load_checkpoint(other)
    evil = tmp_path / "evil.pt"
    torch.save({"format": "musicgpt-ckpt-1", "x": Evil()}, evil)
    with pytest.raises(MusicGPTError, match="not a readable"):
        load_checkpoint(evil)
    no_config = tmp_path / "no_config.pt"
    torch.save({"format": "musicgpt-ckpt-1", "meta_json": "{}", "model": {}}, no_config)
    with pytest.raises(MusicGPTError, match="damaged"):
        load_checkpoint(no_config)
    mismatch = tmp_path / "mismatch.pt"
    raw = torch.load(good, weights_only=True)
    raw["meta_json"] = json.dumps({"model_config": {**to_dict(new_model().cfg), "d_model": 64}})
    torch.save(raw, mismatch)
    with pytest.raises(MusicGPTError, match="do not fit"):
        load_checkpoint(mismatch)


def test_save_every_keeps_last_pt_between_evaluations_so_a_crash_loses_little(tmp_path):
    import dataclasses

    cfg = dataclasses.replace(CFG, save_every=1e-9)  # every step, for the test
    whole = new_model()
    train(whole, cfg, get_batch, evaluate, tmp_path / "whole", {}, progress=False)
    with pytest.raises(Crash):
        train(new_model(), cfg, crashing_at(26), evaluate, tmp_path / "broken", {}, progress=False)
    _, _, extra = load_checkpoint(tmp_path / "broken" / "last.pt")
    assert extra["step"] == 25  # not 20, the last evaluation
    saves = [e["step"] for e in read_metrics(tmp_path / "broken") if e["event"] == "save"]
    assert saves == [s for s in range(1, 26) if s % 10]
    resumed = new_model()
    assert train(resumed, cfg, get_batch, evaluate, tmp_path / "broken", {}, resume=True,
                 progress=False)["steps"] == 40
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)
