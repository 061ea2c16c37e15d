"""The CUDA path: training with bf16 autocast, checkpoints that move between GPU and CPU,
classification and continuation with the model on the GPU. Skipped where no GPU is present
(CI); run on a GPU machine with `python -m pytest -q tests/test_cuda.py`."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from music21 import corpus

from musicgpt.checkpoint import load_checkpoint
from musicgpt.trainer import train

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

WEIGHTS = Path(__file__).resolve().parents[1] / "musicgpt" / "weights"


def test_training_on_cuda_learns_and_its_checkpoint_runs_on_the_cpu(tmp_path):
    from dataclasses import replace

    from tests.test_trainer import CFG, get_batch, new_model

    model = new_model()
    before = evaluate_anywhere(model.eval())["loss"]
    result = train(model, replace(CFG, device="cuda"), get_batch, evaluate_anywhere, tmp_path, {},
                   progress=False)
    assert result["device"].startswith("cuda")
    assert result["best_eval_loss"] < 0.5 * before
    on_cpu, _, _ = load_checkpoint(tmp_path / "best.pt", device="cpu")
    on_gpu, _, _ = load_checkpoint(tmp_path / "best.pt", device="cuda")
    x = torch.randint(on_cpu.cfg.vocab_size, (2, on_cpu.cfg.context))
    torch.testing.assert_close(on_gpu(x.cuda())[0].cpu(), on_cpu(x)[0], rtol=1e-4, atol=1e-4)


def evaluate_anywhere(model) -> dict[str, float]:
    """test_train's evaluation batch, on the model's device."""
    from tests.test_trainer import get_batch

    device = next(model.parameters()).device
    x, y = get_batch(torch.Generator().manual_seed(123), B=4)
    _, loss = model(x.to(device), y.to(device))
    return {"loss": loss.item(), "accuracy": 0.0}


def test_classifier_on_cuda_agrees_with_the_cpu():
    from musicgpt.classifier.classify import load_classifier
    from musicgpt.scores import load_score

    score = load_score(corpus.getWork("bach/bwv66.6"))
    cpu = load_classifier(WEIGHTS / "classifier.pt", device="cpu")
    gpu = load_classifier(WEIGHTS / "classifier.pt", device="cuda")
    ids = [cpu.encode(score)]
    ps_c, pk_c = cpu.probabilities(ids)
    ps_g, pk_g = gpu.probabilities(ids)
    assert abs(ps_c - ps_g).max() < 1e-3 and abs(pk_c - pk_g).max() < 1e-3
    assert gpu.classify_score(score, top=1)["style"][0][0] == cpu.classify_score(score, top=1)["style"][0][0]


def test_continuation_with_the_model_on_cuda_is_valid():
    from musicgpt.config import SampleConfig
    from musicgpt.continuation import continue_score, load_prompt
    from musicgpt.lm import load_model

    model, tok, _ = load_model(WEIGHTS / "default.pt", device="cuda")
    result = continue_score(model, tok, load_prompt("C4 D4 E4 F4 G4:h"), bars=2,
                            sample_cfg=SampleConfig(temperature=0.9),
                            generator=torch.Generator().manual_seed(0))
    assert result.error_rate == 0.0 and result.continuation.note_num() > 0


def test_classifier_heads_train_on_cuda():
    from musicgpt.classifier.evaluation import evaluate
    from musicgpt.classifier.training import train_heads
    from musicgpt.config import MODES, TokenizerConfig
    from musicgpt.tokens.tokenizer import MusicTokenizer
    from tests.test_classify import STYLES, data_of, made_up, quick, tiny_lm

    tok = MusicTokenizer.create(TokenizerConfig(), STYLES, MODES)
    data = data_of(tok, [(made_up(s, seed), s, 0, "ionian") for s in range(3) for seed in range(3)])
    tuned = train_heads(tiny_lm(tok), tok, STYLES, data, quick(60, device="cuda"))
    assert next(tuned.model.parameters()).is_cuda
    assert evaluate(tuned, data)["style"]["accuracy"] == 1.0
    probe = train_heads(tiny_lm(tok), tok, STYLES, data,
                        quick(0, freeze=True, probe_iters=150, probe_batch=16, device="cuda"))
    assert evaluate(probe, data)["style"]["accuracy"] == 1.0
