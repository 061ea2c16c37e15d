"""The one checkpoint format and the one loader, shared by resume, generation, classification and
evaluation. A checkpoint is a torch.save dict readable with `weights_only=True`:

    {"format": "musicgpt-ckpt-1", "meta_json": str, "model": state_dict,
     "optimizer": state_dict | None, "step": int, "train_state": dict | None,
     "heads": state_dict | None}

`heads` is the state of one module outside the GPT (the classifier's style and key heads).

`meta_json` holds everything else as JSON (model config, tokenizer, labels, metrics), so that
one file is enough to rebuild the model and its vocabularies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from musicgpt.atomic import atomic_path
from musicgpt.config import ModelConfig, from_dict, to_dict
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT

FORMAT = "musicgpt-ckpt-1"


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The GPT inside a DistributedDataParallel or torch.compile wrapper, so keys stay plain."""
    for attr in ("module", "_orig_mod"):
        model = getattr(model, attr, model)
    return model


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors to fp16; tensors that share storage (the tied head) stay shared."""
    seen: dict[int, torch.Tensor] = {}
    out = {}
    for k, v in state.items():
        if v.is_floating_point():
            v = seen.setdefault(v.data_ptr(), v.half())
        out[k] = v
    return out


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, meta: dict[str, Any],
                    optimizer: torch.optim.Optimizer | None = None, step: int = 0, half: bool = False,
                    train_state: dict[str, Any] | None = None,
                    heads: dict[str, torch.Tensor] | None = None) -> None:
    """Write `model` (fp16 with `half`, for shipping), `meta` and optional training state at once.

    `meta["model_config"]` is set from the model itself, so the loader can always rebuild it.
    `heads` holds the state of the module that lives outside the GPT (the classifier's heads).
    """
    model = _unwrap(model)
    meta = {**meta, "model_config": to_dict(model.cfg)}
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {
        "format": FORMAT,
        "meta_json": json.dumps(meta),
        "model": _half(state) if half else state,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "step": int(step),
        "train_state": train_state,
        "heads": None if heads is None else {
            k: (v.detach().cpu().half() if half and v.is_floating_point() else v.detach().cpu())
            for k, v in heads.items()},
    }
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)


def read_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> dict[str, Any]:
    """The checked raw dict, with "meta" (decoded) in place of "meta_json"."""
    path = Path(path)
    if not path.is_file():
        raise MusicGPTError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # truncated zip, a text file, a pickle with arbitrary objects...
        text = str(e)
        if "weights_only" in text or "Weights only" in text:  # never torch's advice to unpickle it
            why = ("it holds Python objects, not only tensors and plain values, so it is not loaded"
                   if "Unsupported global" in text else "not a PyTorch file, or a damaged one")
        else:
            why = f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"
        raise MusicGPTError(f"{path} is not a readable musicgpt checkpoint ({why})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = ckpt.get("format") if isinstance(ckpt, dict) else type(ckpt).__name__
        raise MusicGPTError(f"{path} is not a musicgpt checkpoint (format {found!r}, expected {FORMAT!r})")
    try:
        meta = json.loads(ckpt["meta_json"])
        from_dict(ModelConfig, meta["model_config"])  # fails early on a missing config
        ckpt["model"].keys()
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise MusicGPTError(f"{path} is a damaged musicgpt checkpoint: {type(e).__name__}: {e}") from e
    ckpt["meta"] = meta
    del ckpt["meta_json"]
    return ckpt


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[GPT, dict[str, Any], dict[str, Any]]:
    """(model in float32 and eval mode on `device`, meta, {"optimizer", "step", "train_state"})."""
    ckpt = read_checkpoint(path, device="cpu")
    heads = _heads_state(ckpt)
    cfg = checked_config(ckpt["meta"]["model_config"], ckpt["model"], path)
    model = GPT(cfg)
    try:
        model.load_state_dict(ckpt["model"])  # copies into float32 parameters, fp16 or not
    except RuntimeError as e:
        raise MusicGPTError(f"{path}: the weights do not fit the model config it carries: "
                            f"{str(e).splitlines()[0]}") from e
    bad = next((name for name, p in model.named_parameters() if not torch.isfinite(p).all()), None)
    if bad is not None:
        raise MusicGPTError(f"{path} is damaged: its weights hold NaN or infinite values ({bad})")
    model.to(device).eval()
    extra = {"optimizer": ckpt.get("optimizer"), "step": int(ckpt.get("step", 0)),
             "train_state": ckpt.get("train_state"), "heads": heads}
    return model, ckpt["meta"], extra


def checked_config(data: Any, state: dict[str, torch.Tensor], path: Path | str) -> ModelConfig:
    """The model config a checkpoint carries, checked before anything is built from it: whole
    positive sizes, heads that divide the width, and every tensor shape the config implies equal
    to the one stored (the model is laid out on the meta device, which allocates nothing, so an
    inflated config is refused before it can ask for gigabytes)."""
    def damaged(why: str) -> MusicGPTError:
        return MusicGPTError(f"{path} is a damaged musicgpt checkpoint: {why}")

    if not isinstance(data, dict):
        raise damaged("its model config is not a table")
    for name in ("vocab_size", "context", "n_layer", "n_head", "d_model"):
        value = data.get(name, 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise damaged(f"model config {name} is {value!r}, not a whole number of 1 or more")
    for name in ("dropout", "attn_dropout"):
        value = data.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise damaged(f"model config {name} is {value!r}, not a number from 0 to below 1")
    if data["d_model"] % data.get("n_head", 1):
        raise damaged(f"model config n_head {data['n_head']} does not divide d_model {data['d_model']}")
    try:
        cfg = from_dict(ModelConfig, data)
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in GPT(cfg).state_dict().items()}
    except (TypeError, ValueError, RuntimeError) as e:
        raise damaged(f"its model config cannot be built ({type(e).__name__}: {e})") from None
    for key, shape in expected.items():
        if key in state and tuple(state[key].shape) != shape:
            raise MusicGPTError(f"{path}: the weights do not fit the model config it carries: {key} is "
                                f"{tuple(state[key].shape)} but the config implies {shape}")
    missing = [k for k in expected if k not in state]
    if missing:
        raise damaged(f"{len(missing)} weights its config implies are missing, e.g. {missing[0]}")
    return cfg


# Checkpoints written while the style head lived inside GPT (the shipped weights among them) hold
# it in the model's state dict, and the key head's state unprefixed under "heads".
_OLD_STYLE_HEAD = "style_head."


def _heads_state(ckpt: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The heads' state as the classifier's one module names it ("style_head.*", "key_head.*"),
    taken out of an older checkpoint's model state so that the GPT loads strictly."""
    model = ckpt["model"]
    old = [k for k in model if k.startswith(_OLD_STYLE_HEAD)]
    if not old:
        return ckpt.get("heads")
    return {**{k: model.pop(k) for k in old},
            **{f"key_head.{k}": v for k, v in (ckpt.get("heads") or {}).items()}}
