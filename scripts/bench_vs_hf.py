"""musicgpt's LM recipe beside a plain Hugging Face GPT-2 and a Kneser-Ney n-gram, in one run.

Both transformers get the same size, steps, batch, tokens (one musicgpt tokenizer) and split;
musicgpt trains through its own pipeline (`musicgpt.lm.train_lm`, checkpoint chosen on the
validation carve), GPT-2 the plain way (AdamW 0.9/0.95, weight decay 0.1, warmup then cosine to 0,
clip 1.0, random windows from the train pieces laid end to end, each led by BOS). All models are
scored with the same windows on the test split: BOS, then non-overlapping `context`-token windows,
no control tokens, EOS not scored. Reports bits/note with bootstrap CIs over test files, a paired
bootstrap of each musicgpt variant against GPT-2, bits by token type, and the KN n-gram beside them.

Needs the optional extra: pip install -e '.[bench]'. Example (the issue's setting):
  python scripts/bench_vs_hf.py --steps 1200 --variant old:windows=piece \
      --variant packed:windows=packed --md docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from musicgpt.config import ModelConfig, TokenizerConfig, TrainConfig
from musicgpt.data.batches import make_evaluator
from musicgpt.data.splits import token_sets
from musicgpt.evaluation.kneser_ney import KneserNey
from musicgpt.lm import load_model, make_tokenizer, train_lm
from musicgpt.trainer import lr_at


def parse_variant(text: str) -> tuple[str, dict, dict]:
    """'name:key=value,...' -> (name, TrainConfig overrides, ModelConfig overrides)."""
    name, _, rest = text.partition(":")
    train = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    model = {f.name: f.type for f in dataclasses.fields(ModelConfig)}
    t_over, m_over = {}, {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key not in train and key not in model:
            raise SystemExit(f"--variant {text}: {key} is neither a TrainConfig nor a ModelConfig field")
        kind = str(train.get(key) or model.get(key))
        (t_over if key in train else m_over)[key] = value if "str" in kind else json.loads(value)
    return name, t_over, m_over


def streams(ts, tok) -> list[np.ndarray]:
    """Each piece as [BOS] + its tokens: what every model is trained on and scored with."""
    return [np.concatenate([[tok.bos_id], ts.piece(i).astype(np.int64)]) for i in range(len(ts))]


def score_windows(logits_fn, pieces: list[np.ndarray], context: int, batch: int = 16) -> list[np.ndarray]:
    """Per piece, -log2 P of every token after BOS, from non-overlapping `context` windows."""
    jobs = [(p, s) for p, seq in enumerate(pieces) for s in range(0, len(seq) - 1, context)]
    out = [np.zeros(len(seq) - 1) for seq in pieces]
    with torch.no_grad():
        for k in range(0, len(jobs), batch):
            chunk = jobs[k : k + batch]
            T = max(min(context, len(pieces[p]) - 1 - s) for p, s in chunk)
            x = torch.zeros(len(chunk), T, dtype=torch.long)
            for b, (p, s) in enumerate(chunk):
                w = pieces[p][s : s + min(context, len(pieces[p]) - 1 - s)]
                x[b, : len(w)] = torch.from_numpy(w)
            logp = F.log_softmax(logits_fn(x).float(), dim=-1)
            for b, (p, s) in enumerate(chunk):
                n = min(context, len(pieces[p]) - 1 - s)
                tgt = torch.from_numpy(pieces[p][s + 1 : s + 1 + n])
                out[p][s : s + n] = (-logp[b, :n].gather(1, tgt[:, None])[:, 0] / math.log(2)).numpy()
    return out


def train_hf(tok, train_pieces, args, gen: torch.Generator):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(vocab_size=tok.vocab_size, n_positions=args.context, n_embd=args.d_model,
                     n_layer=args.layers, n_head=args.heads, resid_pdrop=args.dropout,
                     embd_pdrop=args.dropout, attn_pdrop=args.dropout, bos_token_id=tok.bos_id,
                     eos_token_id=tok.eos_id)
    torch.manual_seed(args.seed)
    model = GPT2LMHeadModel(cfg)
    stream = torch.from_numpy(np.concatenate(train_pieces))
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.95), weight_decay=0.1)
    model.train()
    t0 = time.perf_counter()
    for step in range(args.steps):
        lr = lr_at(step, args.steps, args.warmup, args.lr, 0.0)  # the plain way: cosine to 0
        for g in opt.param_groups:
            g["lr"] = lr
        starts = torch.randint(0, len(stream) - args.context - 1, (args.batch_size,), generator=gen)
        rows = torch.stack([stream[s : s + args.context + 1] for s in starts.tolist()])
        loss = F.cross_entropy(model(rows[:, :-1]).logits.transpose(1, 2), rows[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if (step + 1) % 100 == 0:
            print(f"  hf step {step + 1}/{args.steps} loss {loss.item():.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    model.eval()
    n_params = sum(p.numel() for p in model.parameters())
    return (lambda x: model(x).logits), n_params, time.perf_counter() - t0


def token_types(tok) -> np.ndarray:
    inv = {i: name for name, i in tok.base.vocab.items()}
    return np.array([inv.get(i, "control").split("_")[0] for i in range(tok.vocab_size)])


def summarise(bits: list[np.ndarray], notes: np.ndarray, rng: np.random.Generator, n_boot: int):
    per_file = np.array([b.sum() for b in bits])
    total = per_file.sum() / notes.sum()
    idx = rng.integers(0, len(per_file), (n_boot, len(per_file)))
    boot = per_file[idx].sum(1) / notes[idx].sum(1)
    return total, np.percentile(boot, [2.5, 97.5]), per_file, idx


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", default="bach-chorales")
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kn-order", type=int, default=8)
    ap.add_argument("--boot", type=int, default=2000)
    ap.add_argument("--variant", action="append", default=[],
                    help="a musicgpt recipe to train: NAME:field=value,... (TrainConfig fields); repeatable")
    ap.add_argument("--no-hf", action="store_true", help="skip GPT-2 (no transformers installed)")
    ap.add_argument("--out", type=Path, help="write every figure as JSON here")
    ap.add_argument("--md", type=Path, help="append a results section to this markdown file")
    ap.add_argument("--note", default="", help="a line for the markdown section (e.g. machine load)")
    args = ap.parse_args()
    variants = [parse_variant(v) for v in args.variant] or [("musicgpt", {}, {})]
    torch.set_num_threads(min(os.cpu_count() or 1, 8))
    load0 = os.getloadavg()[0]

    tok = make_tokenizer(TokenizerConfig(), args.corpus)
    notes_per_id = tok.notes_per_id()
    sets = token_sets(tok, args.corpus, valid_share=TrainConfig().valid_share)
    train_p, test_p = streams(sets["train"], tok), streams(sets["test"], tok)
    valid_p = streams(sets["valid"], tok)
    valid_notes = sum(float(notes_per_id[p[1:]].sum()) for p in valid_p)
    notes = np.array([notes_per_id[p[1:]].sum() for p in test_p], dtype=np.float64)
    types = token_types(tok)
    rng = np.random.default_rng(args.seed)
    results: dict[str, dict] = {}
    bits_of: dict[str, list[np.ndarray]] = {}

    if not args.no_hf:
        print("training HF GPT-2 ...", file=sys.stderr)
        fn, n_params, secs = train_hf(tok, train_p, args, torch.Generator().manual_seed(args.seed))
        bits_of["hf-gpt2"] = score_windows(fn, test_p, args.context)
        # recipes are compared and chosen on validation; the test columns are reported only
        valid = sum(b.sum() for b in score_windows(fn, valid_p, args.context)) / valid_notes
        results["hf-gpt2"] = {"params": n_params, "train_s": secs, "valid_bits_per_note": float(valid)}
    for name, overrides, model_overrides in variants:
        print(f"training musicgpt {name} {overrides} {model_overrides} ...", file=sys.stderr)
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=args.warmup,
                          eval_every=max(args.steps // 6, 1), eval_batches=25, seed=args.seed,
                          device="cpu", **overrides)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            size = dict(context=args.context, n_layer=args.layers, n_head=args.heads,
                        d_model=args.d_model, dropout=args.dropout, **model_overrides)
            run = train_lm(args.corpus, Path(tmp), size, cfg, TokenizerConfig())
            secs = time.perf_counter() - t0
            model, mtok, _ = load_model(Path(tmp) / "best.pt")
        assert mtok.to_dict() == tok.to_dict(), "musicgpt trained another tokenizer than the benchmark's"
        model.eval()
        bits_of[name] = score_windows(lambda x, m=model: m(x)[0], test_p, args.context)
        own = make_evaluator(sets["test"], tok, args.context)(model)
        valid = sum(b.sum() for b in score_windows(lambda x, m=model: m(x)[0], valid_p, args.context))
        results[name] = {"params": sum(p.numel() for p in model.parameters()), "train_s": secs,
                         "overrides": {**overrides, **model_overrides}, "best_step": run["best_step"],
                         "own_protocol_bits_per_note": own["bits_per_note"],
                         "valid_bits_per_note": float(valid / valid_notes)}
    print(f"fitting Kneser-Ney {args.kn_order}-gram ...", file=sys.stderr)
    kn = KneserNey(args.kn_order, tok.vocab_size).fit([(p[:-1], p[1:]) for p in train_p])
    bits_of[f"kn-{args.kn_order}"] = [kn.bits(p[:-1], p[1:]) for p in test_p]
    results[f"kn-{args.kn_order}"] = {}

    test_types = np.concatenate([types[p[1:]] for p in test_p])
    for name, bits in bits_of.items():
        total, ci, _, _ = summarise(bits, notes, rng, args.boot)
        flat = np.concatenate(bits)
        by_type = {t: float(flat[test_types == t].mean()) for t in np.unique(test_types)}
        results[name].update(bits_per_note=float(total), ci95=[float(c) for c in ci],
                             bits_per_token=float(flat.mean()), bits_by_type=by_type)
    idx = rng.integers(0, len(notes), (args.boot, len(notes)))
    per_file = {n: np.array([b.sum() for b in bits]) for n, bits in bits_of.items()}
    for ref in [r for r in ("hf-gpt2", f"kn-{args.kn_order}") if r in per_file]:
        for name, *_ in variants:
            ratio = per_file[name].sum() / per_file[ref].sum()
            boot = per_file[name][idx].sum(1) / per_file[ref][idx].sum(1)
            results[name][f"ratio_to_{ref}"] = float(ratio)
            results[name][f"ratio_to_{ref}_ci95"] = [float(c) for c in np.percentile(boot, [2.5, 97.5])]
            results[name][f"files_better_than_{ref}"] = int((per_file[name] < per_file[ref]).sum())
    meta = {"date": datetime.date.today().isoformat(), "command": "python " + " ".join(sys.argv),
            "machine": f"{platform.machine()}, {os.cpu_count()} logical cores, {platform.system()}",
            "torch": torch.__version__, "load_before": load0, "load_after": os.getloadavg()[0],
            "train_pieces": len(train_p), "valid_pieces": len(sets["valid"]), "test_pieces": len(test_p),
            "test_notes": int(notes.sum()), "args": {k: str(v) for k, v in vars(args).items()}}
    report = {"meta": meta, "results": results}
    print(json.dumps(report, indent=2))
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    if args.md:
        with open(args.md, "a") as f:
            f.write(markdown(report, test_types, variants, args))


def markdown(report: dict, test_types: np.ndarray, variants, args) -> str:
    m, r = report["meta"], report["results"]
    lines = [f"\n## {m['date']}: `{m['command']}`\n",
             f"- machine: {m['machine']}; torch {m['torch']}; load average {m['load_before']:.1f} before, "
             f"{m['load_after']:.1f} after{'; ' + args.note if args.note else ''}",
             f"- split: {m['train_pieces']} train / {m['valid_pieces']} validation / {m['test_pieces']} test "
             f"pieces ({m['test_notes']:,} test notes); {args.layers}x{args.d_model}, {args.heads} heads, "
             f"context {args.context}, {args.steps} steps x batch {args.batch_size}\n",
             "| model | params | validation bits/note | test bits/note | 95% CI | ratio to GPT-2 [95% CI] "
             "| ratio to KN | train s |",
             "|---|---|---|---|---|---|---|---|"]
    kn = f"kn-{args.kn_order}"
    for name, v in r.items():
        ratio = (f"{v['ratio_to_hf-gpt2']:.3f} [{v['ratio_to_hf-gpt2_ci95'][0]:.3f}, "
                 f"{v['ratio_to_hf-gpt2_ci95'][1]:.3f}]") if "ratio_to_hf-gpt2" in v else ""
        rkn = f"{v[f'ratio_to_{kn}']:.3f}" if f"ratio_to_{kn}" in v else ""
        ci = f"[{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]"
        label = f"{name} {v.get('overrides') or ''}".strip()
        secs = f"{v['train_s']:.0f}" if "train_s" in v else ""
        val = f"{v['valid_bits_per_note']:.3f}" if "valid_bits_per_note" in v else ""
        cells = [label, v.get("params", ""), val, f"{v['bits_per_note']:.3f}", ci, ratio, rkn, secs]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    kinds = sorted(next(iter(r.values()))["bits_by_type"])
    lines += ["", "Bits per token by token type:", "",
              "| model | " + " | ".join(kinds) + " |", "|---|" + "---|" * len(kinds)]
    for name, v in r.items():
        lines.append(f"| {name} | " + " | ".join(f"{v['bits_by_type'][k]:.2f}" for k in kinds) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
