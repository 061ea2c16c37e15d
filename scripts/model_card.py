"""Install a trained run as the shipped model and write its model card from measured figures.

    python scripts/model_card.py --run runs/default --lm-corpus all --clf-corpus all \
        --install musicgpt/weights/default.pt

    python scripts/model_card.py --refresh --lm-corpus all --install musicgpt/weights/default.pt

The first copies RUN/clf/classifier.pt (LM body + heads; falls back to RUN/lm/best.pt stored in fp16) to
--install, evaluates it on the LM corpus's test split beside n-gram baselines, and writes
MODEL_CARD.md and eval.json beside it, quoting --per-corpus (scripts/per_corpus.py's JSON) when
it exists. The second rewrites only the card's per-corpus and limits sections.
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


def _control_lines(tok: dict, tc: dict) -> list[str]:
    """What `musicgpt continue` can ask of this model, and what it does without being asked."""
    drop = tc.get("control_drop", 0)
    out = ["## Controls (`musicgpt continue`; `musicgpt info` lists them)", "",
           f"Each control is a token at the start of the sequence; in training each was dropped with "
           f"p={drop}, so each may be left out. They steer the model; they do not force it (how much: "
           "docs/benchmarks.md, mode adherence).", "",
           f"- `--style`: {', '.join(tok.get('styles', [])) or '(none)'}.",
           f"- `--mode`: {', '.join(tok.get('modes', [])) or '(none)'}."]
    if tok.get("tonics"):
        out.append("- `--key TONIC`: " + ", ".join(tok["tonics"]) + " (with `--mode`, a key).")
    else:
        out.append("- `--key`: not in this model (no tonic tokens).")
    out += ["- `--voices N` (1-8): the continuation may use N voices, the header's first; by default it "
            "keeps the header's own voices" + (", and the model is told that number as a token."
                                               if tok.get("voice_counts") else "."),
            "- Always: no time signature other than the header's, no fully silent new bar (unless the "
            "header has one), and every sampled token valid REMI (the grammar mask)."]
    return out


def _classifier_lines(test: dict) -> list[str]:
    """The frozen heads' test figures in a few lines (the confusion matrices stay in the JSON)."""
    s = test["style"]
    out = [f"- style: {test['pieces']} pieces, accuracy {s['accuracy']:.3f}, macro-F1 "
           f"{s['macro_f1']:.3f}, ECE {s['ece']:.3f}"]
    for name, k in test.get("key", {}).items():
        count = f"{k['works']} works" if "works" in k else f"{k['pieces']} pieces"
        tonic = f", tonic {k['tonic_accuracy']:.3f}" if "tonic_accuracy" in k else ""
        out.append(f"- key ({name} labels, {count}): mode {k['mode_accuracy']:.3f}{tonic}, "
                   f"tonic + mode {k['key_accuracy']:.3f}")
    return out


def _bench_lines(bench: dict, path: Path) -> list[str]:
    """The side-by-side benchmark (same tokens, split, size, steps), quoted from its JSON."""
    res, meta = bench["results"], bench["meta"]
    out = [f"## Beside a plain Hugging Face GPT-2 (`{path}`, {meta.get('date')})", "",
           f"Same tokens, split ({meta.get('train_pieces')} train / {meta.get('valid_pieces')} validation / "
           f"{meta.get('test_pieces')} test pieces), size, steps and batch, trained in one run; test "
           "bits/note with 95% bootstrap intervals over test files:", "",
           "| model | test bits/note | 95% CI |", "|---|---|---|"]
    for name, r in res.items():
        if "bits_per_note" in r and "ci95" in r:
            lo, hi = r["ci95"]
            ratio = (f"; {r['ratio_to_hf-gpt2']:.3f} of GPT-2's, paired CI "
                     f"[{r['ratio_to_hf-gpt2_ci95'][0]:.3f}, {r['ratio_to_hf-gpt2_ci95'][1]:.3f}]"
                     if "ratio_to_hf-gpt2" in r else "")
            out.append(f"| {name} | {r['bits_per_note']:.3f}{ratio} | [{lo:.3f}, {hi:.3f}] |")
    out += ["", f"Command: `{meta.get('command')}`. docs/benchmarks.md has the paired differences, the "
            "ablation and the per-token-type figures; this recipe (packed windows, no transposition, "
            "rotary positions) is the one this model was trained with."]
    return out


def _per_corpus_lines(data: dict, path: Path) -> list[str]:
    """Test bits/note on each corpus beside its own KN-8, quoted from scripts/per_corpus.py's JSON
    (the first model listed is the shipped one; others, e.g. the model it replaced, beside it)."""
    res, meta = data["results"], data["meta"]
    names = list(next(iter(res.values())).keys()) if res else []
    labels = meta.get("labels", {})
    head = "| corpus | test pieces | " + " | ".join(
        f"{labels.get(n, n)} | ratio to KN" for n in names) + f" | KN-{meta.get('kn_order', 8)} |"
    out = [f"## Per corpus (`{path}`, {meta.get('date')})", "",
           "Test bits/note without control tokens (the figure comparable with the n-gram), beside a "
           f"modified Kneser-Ney {meta.get('kn_order', 8)}-gram fitted on that corpus's own train split "
           "with the same tokens:", "", head, "|---|---|" + "---|---|" * len(names) + "---|"]
    for corpus, row in res.items():
        first = next(iter(row.values()))
        kn = first.get("kn_bits_per_note")
        cells = []
        for n in names:
            r = row.get(n, {})
            ratio = r.get("ratio_to_kn")
            cells += [f"{r['bits_per_note']:.3f}" if "bits_per_note" in r else "-",
                      f"{ratio:.3f}" if ratio is not None else "-"]
        out.append(f"| {corpus} | {first.get('test_pieces')} | " + " | ".join(cells)
                   + (f" | {kn:.3f} |" if kn else " | not fitted |"))
    commands = meta.get("commands") or [meta.get("command")]
    out += ["", "Command" + ("s" if len(commands) > 1 else "") + ": "
            + "; ".join(f"`{c}`" for c in commands)
            + (f" ({meta['note']})" if meta.get("note") else "") + "."]
    return out


def _limits_lines(lm_corpus: str, per_corpus: dict | None) -> list[str]:
    lines = ["## Limits"]
    if lm_corpus == "bach-chorales":
        lines.append("- Trained on a few hundred Baroque chorales: expect chorale-like continuations "
                     "whatever the prompt's style (a continuation keeps the header's voices and meter, "
                     "and leaves no bar silent, but the voice-leading is a chorale's).")
    else:
        lines.append(f"- One small body (this file) for every style in `{lm_corpus}`, trained for about one "
                     "pass over it on a CPU; the validation loss was still falling when training stopped, "
                     "so a longer run or a larger model would do better (docs/benchmarks.md).")
        if per_corpus:
            res = per_corpus["results"]
            pieces = {c: next(iter(r.values())).get("test_pieces", 99) for c, r in res.items()}
            small = [f"{c} ({n})" for c, n in pieces.items() if n < 15]
            if small:
                lines.append("- Few test pieces in " + ", ".join(small) + ": those figures are rough.")
            worst = max(res, key=lambda c: next(iter(res[c].values())).get("ratio_to_kn") or 0)
            ratio = next(iter(res[worst].values())).get("ratio_to_kn")
            size = {c: next(iter(r.values())).get("train_tokens", 0) for c, r in res.items()}
            why = (", the largest corpus, which balanced sampling draws less than its size"
                   if worst == max(size, key=size.get) else "")
            if ratio:
                lines.append(f"- It is furthest from its n-gram baseline on {worst} ({ratio:.2f} of KN-8's "
                             f"bits/note){why}.")
        lines.append("- A requested mode or key is held by the sampler (the scale, a final on the tonic, "
                     "the notes that make the mode heard), not by the model alone; with `--free` the mode "
                     "token only steers, much less (docs/benchmarks.md, mode adherence).")
    lines += ["- Continuations are sampled; set `--seed` to repeat one.", ""]
    return lines


def refresh(card: Path, lm_corpus: str, per_corpus: Path | None) -> None:
    """Rewrite only the per-corpus and limits sections of an existing card (when the run folder
    that wrote the rest is gone, or the per-corpus figures were measured after it)."""
    text = card.read_text()
    cut = min((i for i in (text.find("## Per corpus"), text.find("## Limits")) if i >= 0), default=len(text))
    data = json.loads(per_corpus.read_text()) if per_corpus and per_corpus.exists() else None
    tail = ([*_per_corpus_lines(data, per_corpus), ""] if data else []) + _limits_lines(lm_corpus, data)
    write_text_atomic(card, text[:cut] + "\n".join(tail))
    print(f"refreshed {card}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="the run folder train_default.sh wrote (not with --refresh)")
    ap.add_argument("--lm-corpus", required=True)
    ap.add_argument("--clf-corpus", default="all")
    ap.add_argument("--install", type=Path, required=True)
    ap.add_argument("--bench", type=Path, default=Path("docs/bench_vs_hf-1200.json"),
                    help="scripts/bench_vs_hf.py results to quote beside the model's own figures")
    ap.add_argument("--per-corpus", type=Path, default=Path("docs/per_corpus.json"),
                    help="scripts/per_corpus.py results to quote (skipped if the file is missing)")
    ap.add_argument("--refresh", action="store_true",
                    help="only rewrite the per-corpus and limits sections of the installed model's card")
    args = ap.parse_args()
    if args.refresh:
        refresh(args.install.with_name("MODEL_CARD.md"), args.lm_corpus, args.per_corpus)
        return
    if args.run is None:
        ap.error("--run RUN_DIR is needed to install a run (or --refresh to rewrite the card's tail)")

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
    evals = [e for e in log if e.get("event") == "eval"]
    clf_metrics = {}
    if (args.run / "clf" / "metrics.json").exists():
        clf_metrics = json.loads((args.run / "clf" / "metrics.json").read_text())
    t, best = ev["transformer"], ev["ngram"][ev["best_ngram"]]
    mc, tc = meta["model_config"], lm_cfg["train_config"]
    tok = meta["tokenizer"]
    controls = "style/mode" + ("/tonic/voices" if tok.get("tonics") else "")
    transpose = (f"random transposition up to ±{tc['transpose']} semitones within each voice's range"
                 if tc.get("transpose") else "no transposition")
    lines = [
        "# musicgpt default model",
        "",
        f"Written by `scripts/model_card.py` on {datetime.date.today()} ({platform.machine()}, "
        f"{platform.python_version()}). Reproduce with `bash scripts/train_default.sh`.",
        "",
        "## What it is",
        f"- A decoder-only transformer: {mc['n_layer']} layers, {mc['n_head']} heads, d_model "
        f"{mc['d_model']}, context {mc['context']} tokens, "
        f"{'rotary positions' if mc.get('rope') else 'a learned position table'}, vocabulary "
        f"{mc['vocab_size']} (MidiTok {tok['config']['kind']} + {controls} control tokens).",
        f"- File: `{args.install.name}`, {size_mb:.1f} MB (fp16 weights).",
        f"- Language model trained on the **train split of `{args.lm_corpus}`** "
        f"({lm_cfg.get('train_pieces')} pieces, {lm_cfg.get('train_tokens')} tokens), with "
        f"{lm_cfg.get('valid_pieces')} more carved from it for validation; the split is by tune "
        "family / melody group, fixed in `corpora/<name>/manifest.jsonl`.",
        f"- Training: {tc['steps']} steps, batch {tc['batch_size']}, AdamW lr {tc['lr']}, "
        f"{tc['warmup']} warmup steps, cosine decay to {tc.get('min_lr')}, "
        f"{tc.get('windows', 'piece')} windows, {transpose}, control tokens dropped with "
        f"p={tc['control_drop']}; `best.pt` chosen on the validation split (never on test); "
        f"device {lm_cfg.get('device')}.",
    ]
    if evals:
        top = min(evals, key=lambda e: e.get("eval_loss", float("inf")))
        bpn = top.get("eval_bits_per_note", float("nan"))
        lines.append(f"- Best validation: step {top.get('step')}, {bpn:.3f} bits/note "
                     f"(of {len(evals)} evaluations).")
    if train_events:
        tps = [e["tokens_per_s"] for e in train_events if "tokens_per_s" in e]
        lines.append(f"- Measured training speed: median {sorted(tps)[len(tps) // 2]:.0f} tokens/s.")
    bare = ev.get("transformer_no_controls")
    lines += [
        "",
        f"## Language-model quality on the `{args.lm_corpus}` test split ({ev['test_pieces']} pieces)",
        "",
        "| model | bits/token | bits/note | next-token accuracy |",
        "|---|---|---|---|",
        f"| transformer, windows led by the piece's controls | {t['bits_per_token']:.3f} | "
        f"{t['bits_per_note']:.3f} | {t['accuracy']:.3f} |",
    ]
    if bare:
        lines.append(f"| transformer, no control tokens (the comparable figure) | "
                     f"{bare['bits_per_token']:.3f} | {bare['bits_per_note']:.3f} | {bare['accuracy']:.3f} |")
    if "kneser_ney" in ev:
        kn = ev["kneser_ney"]
        lines.append(f"| {kn['order']}-gram (modified Kneser-Ney, same tokens) | "
                     f"{kn['bits_per_token']:.3f} | {kn['bits_per_note']:.3f} | - |")
    for name, m in ev["ngram"].items():
        lines.append(f"| {name} (Witten-Bell, same tokens) | {m['bits_per_token']:.3f} | "
                     f"{m['bits_per_note']:.3f} | {m['accuracy']:.3f} |")
    ratio_kn = f"; to Kneser-Ney: **{ev['ratio_to_kneser_ney']:.3f}**" if "kneser_ney" in ev else ""
    lines += ["", f"Transformer / best Witten-Bell n-gram ({ev['best_ngram']}) bits/note: "
              f"**{ev['ratio_to_best_ngram']:.3f}**{ratio_kn}. Tokens per note: "
              f"{t['tokens_per_note']:.2f}. Command: `musicgpt evaluate --model "
              f"{args.install} --corpus {args.lm_corpus}`."]
    lines += ["", *_control_lines(tok, tc)]
    if args.bench and args.bench.exists():
        lines += ["", *_bench_lines(json.loads(args.bench.read_text()), args.bench)]
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
            lines += ["", f"Test split of `{args.clf_corpus}` (`{args.run}/clf/metrics.json`, confusion "
                      "matrices there):", "", *_classifier_lines(clf_metrics["test"])]
    pc = json.loads(args.per_corpus.read_text()) if args.per_corpus and args.per_corpus.exists() else None
    if pc:
        lines += ["", *_per_corpus_lines(pc, args.per_corpus)]
    lines += ["", *_limits_lines(args.lm_corpus, pc)]
    write_text_atomic(args.install.with_name("MODEL_CARD.md"), "\n".join(lines))
    print(f"installed {args.install} ({size_mb:.1f} MB); bits/note {t['bits_per_note']:.3f} vs "
          f"{ev['best_ngram']} {best['bits_per_note']:.3f} (ratio {ev['ratio_to_best_ngram']:.3f})")


if __name__ == "__main__":
    main()
