"""Damaged checkpoints, made from the real shipped files, each end in one clear MusicGPTError
before anything is built from them (#17 item 5)."""

import json
import math
import re
import time
from pathlib import Path

import pytest
import torch

import musicgpt
from musicgpt.classifier.classify import load_classifier
from musicgpt.errors import MusicGPTError
from musicgpt.lm import load_model

WEIGHTS = Path(musicgpt.__file__).parent / "weights"


def _damaged(tmp_path, change, name="default.pt"):
    """A copy of a shipped checkpoint with `change(ckpt, meta)` applied."""
    ckpt = torch.load(WEIGHTS / name, weights_only=True)
    meta = json.loads(ckpt["meta_json"])
    change(ckpt, meta)
    ckpt["meta_json"] = json.dumps(meta)
    out = tmp_path / f"damaged-{name}"
    torch.save(ckpt, out)
    return out


def _set(path, value):
    def change(ckpt, meta):
        *head, last = path
        d = meta
        for k in head:
            d = d[k]
        d[last] = value
    return change


@pytest.mark.parametrize("change, says", [
    (_set(["model_config", "n_head"], 3), "n_head 3 does not divide d_model 256"),
    (_set(["model_config", "context"], -5), "context is -5"),
    (_set(["model_config", "d_model"], "wide"), "d_model is 'wide'"),
    (_set(["model_config", "dropout"], 2.0), "dropout is 2.0"),
    (_set(["model_config", "n_layer"], 6), "weights its config implies are missing"),
    (_set(["tokenizer", "config", "kind"], "NoSuchKind"), "its tokenizer cannot be built"),
    (_set(["model_config", "vocab_size"], 500), "the weights do not fit the model config"),
])
def test_a_damaged_language_model_is_one_clear_error(tmp_path, change, says):
    with pytest.raises(MusicGPTError, match=re.escape(says)):
        load_model(_damaged(tmp_path, change))


def test_an_inflated_config_is_refused_before_it_allocates(tmp_path):
    path = _damaged(tmp_path, _set(["model_config", "d_model"], 65536))
    start = time.perf_counter()
    with pytest.raises(MusicGPTError, match="do not fit the model config"):
        load_model(path)
    assert time.perf_counter() - start < 10  # a real 65536-wide model would need tens of GB


def test_nan_weights_and_a_tokenizer_of_another_size_are_refused(tmp_path):
    def nan(ckpt, meta):
        ckpt["model"]["wte.weight"][0, 0] = math.nan
    with pytest.raises(MusicGPTError, match="NaN or infinite values \\(wte.weight\\)"):
        load_model(_damaged(tmp_path, nan))

    def fewer_styles(ckpt, meta):  # the tokenizer loses a style token: 442 ids for a 443-id model
        meta["tokenizer"]["styles"] = meta["tokenizer"]["styles"][:-1]
    with pytest.raises(MusicGPTError, match="its tokenizer has 442 tokens but its model reads 443"):
        load_model(_damaged(tmp_path, fewer_styles))


@pytest.mark.parametrize("change, says", [
    (lambda ckpt, meta: meta.pop("tokenizer"), "holds no tokenizer"),
    (_set(["classifier", "styles"], []), "its list of styles is \\[\\]"),
    (_set(["classifier", "styles"], ["chorale"]), "the heads' weights do not fit their config"),
    (_set(["classifier", "key_head"], {"bogus": 1}), "the heads' weights do not fit their config"),
])
def test_a_damaged_classifier_is_one_clear_error(tmp_path, change, says):
    with pytest.raises(MusicGPTError, match=says):
        load_classifier(_damaged(tmp_path, change, "classifier.pt"))


def test_torchs_advice_to_unpickle_never_reaches_the_user(tmp_path):
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(MusicGPTError) as e:
        load_model(text)
    assert "weights_only" not in str(e.value) and "not a readable musicgpt checkpoint" in str(e.value)
