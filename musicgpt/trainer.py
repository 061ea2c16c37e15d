"""The training loop: AdamW, warmup + cosine schedule, clipping, autocast, evaluation, checkpoints,
resume, metrics.

`run_steps` is the one loop (schedule, autocast, backward, clipping, optimiser step); `train`
drives it for the language model, and the classifier's fine-tuning and probe drive it too.
Knows nothing about music: batches come from `get_batch(generator)`, scores from `evaluate(model)`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from musicgpt import distributed
from musicgpt.atomic import write_text_atomic
from musicgpt.checkpoint import read_checkpoint, save_checkpoint
from musicgpt.config import TrainConfig, to_dict
from musicgpt.errors import MusicGPTError
from musicgpt.model import GPT

log = logging.getLogger(__name__)

BETAS = (0.9, 0.95)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, steps: int, warmup: int, lr: float, min_lr: float) -> float:
    """Linear warmup over `warmup` steps, then cosine decay from `lr` to `min_lr` at `steps`."""
    if step < warmup:
        return lr * (step + 1) / warmup
    span = max(steps - warmup, 1)
    frac = min((step - warmup) / span, 1.0)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * frac)) * (lr - min_lr)


@dataclass(frozen=True)
class Schedule:
    """lr_at for each parameter group: `peaks` holds one (lr, min_lr) per group, in order.

    Kept outside the optimiser's param groups, which a resumed optimiser's state replaces."""

    steps: int
    warmup: int
    peaks: tuple[tuple[float, float], ...]

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's learning rate for `step`; the first group's."""
        for group, (lr, min_lr) in zip(optimizer.param_groups, self.peaks, strict=True):
            group["lr"] = lr_at(step, self.steps, self.warmup, lr, min_lr)
        return optimizer.param_groups[0]["lr"]


class Recorder:
    """Everything the trainer writes: config.json, metrics.jsonl, best.pt and last.pt.

    Kept in one place so that a distributed run can let only one process write (`enabled`).
    """

    def __init__(self, out_dir: Path, enabled: bool = True):
        self.out_dir, self.enabled = Path(out_dir), enabled
        if enabled:
            self.out_dir.mkdir(parents=True, exist_ok=True)

    def config(self, data: dict[str, Any]) -> None:
        if self.enabled:
            write_text_atomic(self.out_dir / "config.json", json.dumps(data, indent=2, sort_keys=True))

    def event(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.out_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")

    def checkpoint(self, name: str, model: torch.nn.Module, meta: dict, **kwargs: Any) -> None:
        if self.enabled:
            save_checkpoint(self.out_dir / name, model, meta, **kwargs)


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor,
                   params: Sequence[torch.nn.Parameter], grad_clip: float) -> None:
    """Backward, gradient-norm clipping of `params` (none when grad_clip is 0), one step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


def run_steps(optimizer: torch.optim.Optimizer, schedule: Schedule,
              loss_at: Callable[[int], torch.Tensor], params: Sequence[torch.nn.Parameter],
              grad_clip: float, start: int = 0,
              autocast: contextlib.AbstractContextManager | None = None,
              after: Callable[[int, float, torch.Tensor], None] | None = None) -> None:
    """The loop: for each step from `start` to `schedule.steps`, set the learning rates, compute
    `loss_at(step)` (under `autocast`), take one clipped step, then call
    `after(steps done, lr, detached loss)` (logging, evaluation, checkpoints)."""
    for step in range(start, schedule.steps):
        lr = schedule.apply(optimizer, step)
        with autocast or contextlib.nullcontext():
            loss = loss_at(step)
        optimizer_step(optimizer, loss, params, grad_clip)
        if after is not None:
            after(step + 1, lr, loss.detach())


def train_step(model: GPT, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
               grad_clip: float, autocast: contextlib.AbstractContextManager | None = None) -> torch.Tensor:
    """One optimisation step on (B, T) inputs and targets; the detached loss."""
    with autocast or contextlib.nullcontext():
        _, loss = model(x, y)
    optimizer_step(optimizer, loss, list(model.parameters()), grad_clip)
    return loss.detach()


def train(model: GPT, cfg: TrainConfig,
          get_batch: Callable[[torch.Generator], tuple[torch.Tensor, torch.Tensor]],
          evaluate: Callable[[GPT], dict[str, float]], out_dir: Path, meta: dict[str, Any],
          resume: bool = False, progress: bool = True) -> dict[str, Any]:
    """Train `model` for `cfg.steps` steps; keep best.pt (lowest eval loss) and last.pt (to resume).

    `get_batch(gen)` returns (B, T) inputs and targets (-100 where no loss is wanted) and draws
    its randomness from `gen` only, so a run and its resumption see the same batches.
    `evaluate(model)` returns figures including "loss" (lower is better).
    Returns the best eval loss and step, the last eval, tokens/s and wall time.
    """
    out_dir = Path(out_dir)
    rank, world_size, _ = distributed.world()
    rec = Recorder(out_dir, enabled=rank == 0)  # under torchrun only rank 0 writes
    device = distributed.start(resolve_device(cfg.device))
    model.to(device)
    model.train()
    optimizer = model.configure_optimizer(cfg.weight_decay, cfg.lr, BETAS, device.type)
    rows = distributed.my_rows(cfg.batch_size) if world_size > 1 else slice(None)
    net: torch.nn.Module = model
    if world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    torch.manual_seed(cfg.seed)  # dropout
    gen = torch.Generator().manual_seed(cfg.seed)  # batches
    step, best_loss, best_step, tokens_done, train_time = 0, math.inf, -1, 0, 0.0
    if resume:
        step, best_loss, best_step, tokens_done, train_time = _restore(out_dir / "last.pt", model,
                                                                       optimizer, gen, device)
        log.info("resuming %s at step %d", out_dir, step)
        rec.event({"event": "resume", "step": step})  # later lines for steps after this replace earlier ones
    rec.config({"model_config": to_dict(model.cfg), "train_config": to_dict(cfg), "device": str(device),
                **{k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool))}})
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else contextlib.nullcontext())

    def train_state() -> dict[str, Any]:
        state = {"generator": gen.get_state(), "torch_rng": torch.get_rng_state(),
                 "best_loss": best_loss, "best_step": best_step, "tokens": tokens_done,
                 "train_time": train_time}
        if device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(device)
        return state

    wall0 = time.perf_counter()
    last_eval: dict[str, float] | None = None
    loss_sum, loss_n, interval_tokens, interval_time = torch.zeros((), device=device), 0, 0, 0.0
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank > 0, dynamic_ncols=True,
               desc="train")
    t0, n_tokens = 0.0, 0
    since_save = 0.0  # seconds of training since last.pt was written

    def loss_at(_: int) -> torch.Tensor:
        nonlocal t0, n_tokens
        t0 = time.perf_counter()
        x, y = get_batch(gen)  # the global batch, the same on every rank; this rank's rows of it
        n_tokens = x.numel()
        x, y = x[rows].to(device, non_blocking=True), y[rows].to(device, non_blocking=True)
        return net(x, y)[1]

    def after(done: int, lr: float, loss: torch.Tensor) -> None:
        nonlocal step, loss_sum, loss_n, interval_tokens, interval_time, train_time, tokens_done
        nonlocal last_eval, best_loss, best_step, since_save
        step = done
        loss_sum += loss.float()
        loss_n += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        dt = time.perf_counter() - t0
        train_time += dt
        interval_time += dt
        tokens_done += n_tokens
        interval_tokens += n_tokens
        bar.update(1)

        if step % cfg.log_every == 0 or step == cfg.steps:
            mean_loss = float(loss_sum) / loss_n
            tps = interval_tokens / max(interval_time, 1e-9)
            rec.event({"event": "train", "step": step, "lr": lr, "loss": mean_loss, "tokens_per_s": tps})
            bar.set_postfix(loss=f"{mean_loss:.3f}", tok_s=f"{tps:,.0f}")
            loss_sum.zero_()
            loss_n, interval_tokens, interval_time = 0, 0, 0.0

        since_save += dt
        evaluating = step % cfg.eval_every == 0 or step == cfg.steps
        if cfg.save_every and since_save >= cfg.save_every and not evaluating:
            # between evaluations too: a kill loses at most `save_every` seconds of work
            rec.checkpoint("last.pt", model, {**meta, "train_config": to_dict(cfg), "step": step},
                           optimizer=optimizer, step=step, train_state=train_state())
            rec.event({"event": "save", "step": step})
            since_save = 0.0
        if evaluating:
            since_save = 0.0
        if evaluating and rank == 0:  # the others go on
            last_eval = _evaluate(model, evaluate)
            rec.event({"event": "eval", "step": step, "lr": lr,
                       **{f"eval_{k}": v for k, v in last_eval.items()}})
            log.info("step %d: eval loss %.4f", step, last_eval["loss"])
            ckpt_meta = {**meta, "train_config": to_dict(cfg), "step": step, "metrics": last_eval}
            if last_eval["loss"] < best_loss:
                best_loss, best_step = last_eval["loss"], step
                rec.checkpoint("best.pt", model, ckpt_meta, step=step)
            rec.checkpoint("last.pt", model, ckpt_meta, optimizer=optimizer, step=step,
                           train_state=train_state())

    schedule = Schedule(cfg.steps, cfg.warmup, tuple((cfg.lr, cfg.min_lr) for _ in optimizer.param_groups))
    run_steps(optimizer, schedule, loss_at, list(model.parameters()), cfg.grad_clip, start=step,
              autocast=autocast, after=after)
    bar.close()
    if world_size > 1:
        distributed.check_ranks_agree(model)
        distributed.stop()
    if last_eval is None and rank == 0:  # resumed a finished run: nothing trained, report where it stands
        last_eval = _evaluate(model, evaluate)
    return {"best_eval_loss": best_loss, "best_step": best_step, "final_eval": last_eval,
            "steps": step, "tokens_per_s": tokens_done / max(train_time, 1e-9),
            "train_time_s": train_time, "wall_s": time.perf_counter() - wall0, "device": str(device)}


def _evaluate(model: GPT, evaluate: Callable[[GPT], dict[str, float]]) -> dict[str, float]:
    model.eval()
    try:
        with torch.no_grad():
            metrics = evaluate(model)
    finally:
        model.train()
    if "loss" not in metrics:
        raise ValueError(f"evaluate() must return a 'loss'; it returned {sorted(metrics)}")
    return {k: float(v) if isinstance(v, (int, float, torch.Tensor)) else v for k, v in metrics.items()}


def _restore(path: Path, model: GPT, optimizer: torch.optim.Optimizer, gen: torch.Generator,
             device: torch.device) -> tuple[int, float, int, int, float]:
    """Load last.pt into the live objects; (step, best loss, best step, tokens, train time)."""
    if not path.is_file():
        raise MusicGPTError(f"cannot resume: {path} does not exist; train without `resume` first")
    ckpt = read_checkpoint(path)
    state = ckpt.get("train_state")
    if ckpt.get("optimizer") is None or state is None:
        raise MusicGPTError(f"cannot resume from {path}: it holds weights only, no training state")
    try:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError) as e:
        raise MusicGPTError(f"cannot resume from {path}: it does not fit this model "
                            f"({str(e).splitlines()[0]})") from e
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return (int(ckpt["step"]), float(state["best_loss"]), int(state["best_step"]),
            int(state["tokens"]), float(state["train_time"]))
