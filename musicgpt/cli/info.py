"""`musicgpt info`: what a checkpoint is and which controls `musicgpt continue` accepts with it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from musicgpt.config import SHIPPED_MODEL, shipped
from musicgpt.errors import MusicGPTError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="what a model knows: its size, training data and the controls it accepts",
        description="Describe a language-model checkpoint: architecture, tokenizer, what it was "
        "trained on, and the control values `musicgpt continue` accepts with it (--style, "
        "--mode, --voices).")
    p.add_argument("--model", type=Path, default=argparse.SUPPRESS,
                   help="checkpoint (default: the shipped model, musicgpt/weights/default.pt)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=cmd_info)


def describe(path: Path) -> dict:
    """The facts `info` prints, as a dict."""
    from musicgpt.lm import load_model
    from musicgpt.steering import MAX_VOICES

    model, tok, meta = load_model(path)
    cfg = model.cfg
    train = meta.get("train_config") or {}
    return {
        "model": str(path), "megabytes": round(path.stat().st_size / 1e6, 1),
        "parameters": sum(p.numel() for p in model.parameters()),
        "layers": cfg.n_layer, "heads": cfg.n_head, "d_model": cfg.d_model, "context": cfg.context,
        "positions": "rotary" if getattr(cfg, "rope", False) else "learned table",
        "tokenizer": tok.cfg.kind, "bpe": bool(tok.uses_bpe), "vocab_size": tok.vocab_size,
        "corpus": meta.get("corpus"), "steps": train.get("steps"),
        "controls": {
            "style": list(tok.styles), "mode": list(tok.modes), "key": list(tok.tonics),
            "voices": f"1-{MAX_VOICES}; default: the header's own voices"
                      + ("; also told to the model as a token" if tok.voice_counts else ""),
            "meter": "the header's (a continuation writes no other time signature)",
            "length": "Nbars or Ntokens" if not tok.uses_bpe else "Ntokens (BPE)",
        },
        "control_drop": train.get("control_drop"),
        # the figures saved at the kept step: on the validation carve since it exists; older
        # checkpoints were kept by their test figures
        "saved_metrics": meta.get("metrics"),
        "saved_metrics_split": "validation" if "valid_share" in train else "test",
    }


def cmd_info(args: argparse.Namespace) -> int:
    path = getattr(args, "model", None) or shipped(SHIPPED_MODEL)
    if not path.exists():
        raise MusicGPTError(f"no model at {path}; check the path, or leave out --model "
                            "to use the shipped one")
    d = describe(path)
    if args.json:
        print(json.dumps(d, indent=2))
        return 0
    print(f"model        {d['model']} ({d['megabytes']} MB, {d['parameters'] / 1e6:.2f}M parameters)")
    print(f"architecture {d['layers']} layers x {d['heads']} heads, d_model {d['d_model']}, "
          f"context {d['context']} tokens, {d['positions']} positions")
    print(f"tokenizer    {d['tokenizer']}{' + BPE' if d['bpe'] else ''}, vocabulary {d['vocab_size']}")
    print(f"trained on   {d['corpus'] or 'unknown'} (train split), {d['steps'] or '?'} steps")
    c = d["controls"]
    drop = d["control_drop"]
    print("controls of `musicgpt continue`" + (f" (each dropped with p={drop} in training, so "
                                               "each is optional)" if drop else "") + ":")
    print(f"  --style    {' '.join(c['style']) or '(none)'}")
    print(f"  --mode     {' '.join(c['mode']) or '(none)'}")
    print(f"  --key      {' '.join(c['key']) or '(no tonic tokens: a key is only held, not told)'}")
    print("             a --mode or --key is held unless --free: new notes in its scale, the last "
          "on its tonic")
    print(f"  --voices   {c['voices']}")
    print(f"  meter      {c['meter']}")
    print(f"  --length   {c['length']}")
    m = d["saved_metrics"]
    if m and "bits_per_note" in m:
        print(f"{d['saved_metrics_split'] + ' split':<12} {m['bits_per_note']:.3f} bits/note, "
              f"{m['bits_per_token']:.3f} bits/token at the kept step (`musicgpt evaluate` gives "
              "the test figures)")
    return 0
