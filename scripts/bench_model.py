"""Benchmark the model on this machine: matmul FLOP/s, training throughput and MFU, generation speed.

    python scripts/bench_model.py                          # print a markdown table
    python scripts/bench_model.py --out docs/benchmarks.md # and append it, with the machine, to a doc

Training FLOPs per token follow the PaLM appendix: 6N + 12·L·T·d, with N the parameters that
take part in matmuls (all but the position table; the tied token table counts once, as the LM
head), L layers, T the sequence length and d the model width. The second term is attention's
QK^T and AV products (forward and backward), counted in full although half is causally masked.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from musicgpt.config import ModelConfig
from musicgpt.model import GPT
from musicgpt.sampling import sample
from musicgpt.trainer import train_step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_flops(n: int, repeats: int, device: torch.device = torch.device("cpu")) -> float:
    """Best FLOP/s of an n x n by n x n torch.matmul: fp32 on the CPU, bf16 on a GPU (the
    precision the trainer's autocast uses there)."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    torch.matmul(a, b)
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.matmul(a, b)
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best


def flops_per_token(model: GPT, T: int) -> float:
    c = model.cfg
    return 6 * model.num_params(non_embedding=True) + 12 * c.n_layer * T * c.d_model


def train_tokens_per_s(cfg: ModelConfig, batch: int, steps: int, warmup: int, foreach: bool,
                       device: torch.device = torch.device("cpu")) -> float:
    """Median tokens/s of the trainer's own step (forward, backward, clip, AdamW); on a GPU
    with the trainer's bf16 autocast."""
    torch.manual_seed(0)
    model = GPT(cfg).to(device).train()
    opt = model.configure_optimizer(0.1, 1e-3, device_type=device.type)
    if foreach:  # the unfused multi-tensor AdamW, to compare with the fused default
        opt = torch.optim.AdamW(opt.param_groups, lr=1e-3, betas=(0.9, 0.95), foreach=True)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None
    g = torch.Generator().manual_seed(0)
    x = torch.randint(cfg.vocab_size, (batch, cfg.context), generator=g).to(device)
    y = torch.randint(cfg.vocab_size, (batch, cfg.context), generator=g).to(device)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        train_step(model, opt, x, y, grad_clip=1.0, autocast=autocast)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return batch * cfg.context / statistics.median(times)


def gen_tokens_per_s(cfg: ModelConfig, total: int, use_cache: bool, prompt_len: int = 16,
                     device: torch.device = torch.device("cpu")) -> float:
    """New tokens/s at batch 1, sampling from a random model until `total` tokens in all."""
    torch.manual_seed(0)
    model = GPT(cfg).to(device).eval()
    prompt = torch.randint(cfg.vocab_size, (prompt_len,), generator=torch.Generator().manual_seed(0))
    sample(model, prompt.tolist(), 4, generator=torch.Generator().manual_seed(0), use_cache=use_cache)
    t0 = time.perf_counter()
    new = sample(model, prompt.tolist(), total - prompt_len, temperature=1.0,
                 generator=torch.Generator().manual_seed(0), use_cache=use_cache)
    return len(new) / (time.perf_counter() - t0)


def machine() -> str:
    try:
        info = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        name = fields.get("Model name", "?").strip()
        cores = int(fields.get("Core(s) per socket", "0")) * int(fields.get("Socket(s)", "1"))
    except (OSError, subprocess.CalledProcessError, ValueError):
        name, cores = platform.processor() or "?", os.cpu_count()
    return f"{name}, {cores} physical cores ({os.cpu_count()} logical), {platform.system()}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocab-size", type=int, default=400)
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--train-steps", type=int, default=5, help="timed steps (median reported)")
    p.add_argument("--warmup-steps", type=int, default=2)
    p.add_argument("--matmul-n", type=int, default=2048)
    p.add_argument("--matmul-repeats", type=int, default=10)
    p.add_argument("--gen-lengths", type=int, nargs="*", default=[256, 1024],
                   help="total tokens per generation; the context is raised to fit when needed")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave torch's default)")
    p.add_argument("--gen-threads", type=int, default=0,
                   help="torch threads while generating (0: as for training); one new token at a "
                   "time is too little work to share, and a busy thread stalls the others")
    p.add_argument("--compare", action="store_true",
                   help="also time training with dropout 0 and with foreach (unfused) AdamW, and "
                   "cached generation with the training thread count")
    p.add_argument("--note", default="", help="a line added to the doc section")
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto (cuda when present)")
    p.add_argument("--out", type=Path, help="append the results, with the machine, to this markdown file")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = ModelConfig(vocab_size=args.vocab_size, context=args.context, n_layer=args.n_layer,
                      n_head=args.n_head, d_model=args.d_model, dropout=args.dropout)
    from musicgpt.trainer import resolve_device

    device = resolve_device(args.device)
    load0 = os.getloadavg()
    peak = matmul_flops(args.matmul_n, args.matmul_repeats, device)
    fpt = flops_per_token(GPT(cfg), cfg.context)
    rows = [("bf16 matmul" if device.type == "cuda" else "fp32 matmul",
             f"{args.matmul_n}² torch.matmul, best of {args.matmul_repeats}",
             f"{peak / 1e9:.1f} GFLOP/s", "")]
    variants = [("training", cfg, False)]
    if args.compare:
        variants += [("training, dropout 0", dataclasses.replace(cfg, dropout=0.0), False),
                     ("training, foreach AdamW", cfg, True)]
    for label, vcfg, foreach in variants:
        tps = train_tokens_per_s(vcfg, args.batch, args.train_steps, args.warmup_steps, foreach, device)
        rows.append((label, f"batch {args.batch}×{vcfg.context}, median of {args.train_steps} steps",
                     f"{tps:,.0f} tokens/s", f"MFU {tps * fpt / peak:.1%}"))
    train_threads = torch.get_num_threads()
    gen_threads = args.gen_threads or train_threads
    for total in args.gen_lengths:
        gcfg = dataclasses.replace(cfg, context=max(cfg.context, total), dropout=0.0)
        setting = f"batch 1, {total} tokens, context {gcfg.context}"
        torch.set_num_threads(gen_threads)
        speeds = {c: gen_tokens_per_s(gcfg, total, c, device=device) for c in (False, True)}
        for c in (False, True):
            rows.append((f"generation, {'KV cache' if c else 'no cache'}, {gen_threads} thread(s)",
                         setting, f"{speeds[c]:,.1f} tokens/s",
                         f"cache {speeds[True] / speeds[False]:.1f}× faster" if c else ""))
        if args.compare and gen_threads != train_threads:
            torch.set_num_threads(train_threads)
            tps = gen_tokens_per_s(gcfg, total, True, device=device)
            rows.append((f"generation, KV cache, {train_threads} thread(s)", setting,
                         f"{tps:,.1f} tokens/s", ""))
        torch.set_num_threads(train_threads)

    n = GPT(cfg).num_params(non_embedding=True)
    head = (f"Model: {args.n_layer} layers, {args.n_head} heads, d_model {args.d_model}, vocab "
            f"{args.vocab_size}, context {args.context}, dropout {args.dropout}; N = {n / 1e6:.2f}M "
            f"matmul parameters; FLOPs/token = 6N + 12·L·T·d = {fpt / 1e6:.1f}M. "
            f"Device: {device}. torch threads: {train_threads} (training), {gen_threads} (generation). "
            f"Load average before/after: {load0[0]:.1f}/{os.getloadavg()[0]:.1f}.")
    table = ["| measurement | setting | result | |", "|---|---|---|---|"]
    table += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    text = head + "\n\n" + "\n".join(table) + "\n"
    print(text)
    if args.out:
        cmd = "python " + " ".join(shlex.quote(a) for a in sys.argv)
        section = (f"\n## {datetime.date.today().isoformat()}: `{cmd}`\n\n"
                   f"- machine: {machine()}"
                   + (f"; GPU: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else "")
                   + f"\n- torch {torch.__version__}, Python {platform.python_version()}\n"
                   + (f"- {args.note}\n" if args.note else "") + "\n" + text)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        if not args.out.exists():
            section = "# Benchmarks\n\nProduced by `scripts/bench_model.py`; newest last.\n" + section
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(section)


if __name__ == "__main__":
    main()
