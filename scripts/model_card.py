"""Install a trained run as the shipped model and write its model card from measured figures.

    python scripts/model_card.py --run runs/default --lm-corpus bach-chorales --clf-corpus all \
        --install musicgpt/weights/default.pt

Copies RUN/clf/classifier.pt (LM body + heads; falls back to RUN/lm/best.pt stored in fp16) to
--install, evaluates it on the LM corpus's test split beside n-gram baselines, and writes
MODEL_CARD.md and eval.json beside it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import shutil
from pathlib import Path

from musicgpt.atomic import atomic_path, write_text_atomic
from musicgpt.checkpoint import load_checkpoint, save_checkpoint
from musicgpt.evaluation.lm import evaluate_lm


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--lm-corpus", required=True)
    ap.add_argument("--clf-corpus", default="all")
    ap.add_argument("--install", type=Path, required=True)
    args = ap.parse_args()

    clf = args.run / "clf" / "classifier.pt"
    if clf.exists():
        with atomic_path(args.install) as tmp:
            shutil.copyfile(clf, tmp)
    else:
        model, meta, _ = load_checkpoint(args.run / "lm" / "best.pt")
        save_checkpoint(args.install, model, meta, half=True)
    size_mb = args.install.stat().st_size / 1e6
    _, meta, _ = load_checkpoint(args.install)
    ev = evaluate_lm(args.install, args.lm_corpus)
    write_text_atomic(args.install.with_name("eval.json"), json.dumps(ev, indent=2))

    lm_cfg = json.loads((args.run / "lm" / "config.json").read_text())
    log = _jsonl(args.run / "lm" / "metrics.jsonl")
    train_events = [e for e in log if e.get("event") == "train"]
    clf_metrics = {}
    if (args.run / "clf" / "metrics.json").exists():
        clf_metrics = json.loads((args.run / "clf" / "metrics.json").read_text())
    t, best = ev["transformer"], ev["ngram"][ev["best_ngram"]]
    mc = meta["model_config"]
    lines = [
        "# musicgpt default model",
        "",
        f"Written by `scripts/model_card.py` on {datetime.date.today()} ({platform.machine()}, "
        f"{platform.python_version()}). Reproduce with `bash scripts/train_default.sh`.",
        "",
        "## What it is",
        f"- A decoder-only transformer: {mc['n_layer']} layers, {mc['n_head']} heads, d_model "
        f"{mc['d_model']}, context {mc['context']} tokens, vocabulary {mc['vocab_size']} "
        f"(MidiTok {meta['tokenizer']['config']['kind']} + style/mode control tokens).",
        f"- File: `{args.install.name}`, {size_mb:.1f} MB (fp16 weights).",
        f"- Language model trained on the **train split of `{args.lm_corpus}`** "
        f"({lm_cfg.get('train_pieces')} pieces, {lm_cfg.get('train_tokens')} tokens); the split is "
        "by tune family / group, fixed in `corpora/<name>/manifest.jsonl`.",
        f"- Training: {lm_cfg['train_config']['steps']} steps, batch {lm_cfg['train_config']['batch_size']}, "
        f"AdamW lr {lm_cfg['train_config']['lr']} with warmup and cosine decay, random transposition "
        f"up to ±{lm_cfg['train_config']['transpose']} semitones within each voice's range, control "
        f"tokens dropped with p={lm_cfg['train_config']['control_drop']}; device {lm_cfg.get('device')}.",
    ]
    if train_events:
        tps = [e["tokens_per_s"] for e in train_events if "tokens_per_s" in e]
        lines.append(f"- Measured training speed: median {sorted(tps)[len(tps) // 2]:.0f} tokens/s.")
    lines += [
        "",
        f"## Language-model quality on the `{args.lm_corpus}` test split ({ev['test_pieces']} pieces)",
        "",
        "| model | bits/token | bits/note | next-token accuracy |",
        "|---|---|---|---|",
        f"| transformer | {t['bits_per_token']:.3f} | {t['bits_per_note']:.3f} | {t['accuracy']:.3f} |",
    ]
    for name, m in ev["ngram"].items():
        lines.append(f"| {name} (Witten-Bell, same tokens) | {m['bits_per_token']:.3f} | "
                     f"{m['bits_per_note']:.3f} | {m['accuracy']:.3f} |")
    lines += ["", f"Transformer / best n-gram ({ev['best_ngram']}) bits/note: "
              f"**{ev['ratio_to_best_ngram']:.3f}** (the aim is ≤ 0.85). Tokens per note: "
              f"{t['tokens_per_note']:.2f}. Command: `musicgpt evaluate --model "
              f"{args.install} --corpus {args.lm_corpus}`."]
    if clf_metrics:
        c = clf_metrics.get("config", {})
        lines += ["", f"## Classification heads (trained on `{args.clf_corpus}`, body frozen)", "",
                  f"- Style head on the mean hidden state; key head on states pooled by note role and "
                  f"pitch class (projection {c.get('key_proj')}, MLP {c.get('key_hidden')}, "
                  f"{c.get('probe_passes')} transposed passes, up to {c.get('probe_per_style')} "
                  f"pieces per style plus every human mode label).",
                  f"- Calibration temperatures: {json.dumps(clf_metrics.get('temperature'))}.",
                  "- Test figures, baselines and confusion matrices: `docs/classification.md`.",
                  "- `musicgpt classify` uses `classifier.pt` beside this file by default: this body "
                  "fine-tuned for style, with its key head refitted to read the style head's probabilities "
                  "(`scripts/train_default.sh`). "
                  "These heads, on the body that continuation uses, are the frozen-body ones."]
        if "test" in clf_metrics:
            lines += ["", f"Test-split figures from `{args.run}/clf/metrics.json`:", "", "```",
                      json.dumps(clf_metrics["test"], indent=1)[:3000], "```"]
    lines += ["", "## Limits", "- Trained on a few hundred Baroque chorales: expect chorale-like "
              "continuations whatever the prompt's style.",
              "- Continuations are sampled; set `--seed` to repeat one.", ""]
    write_text_atomic(args.install.with_name("MODEL_CARD.md"), "\n".join(lines))
    print(f"installed {args.install} ({size_mb:.1f} MB); bits/note {t['bits_per_note']:.3f} vs "
          f"{ev['best_ngram']} {best['bits_per_note']:.3f} (ratio {ev['ratio_to_best_ngram']:.3f})")


if __name__ == "__main__":
    main()
