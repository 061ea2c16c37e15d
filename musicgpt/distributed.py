"""Data-parallel training under `torchrun` with PyTorch's DistributedDataParallel: NCCL on GPUs,
gloo on CPUs. Nothing here runs unless torchrun set WORLD_SIZE above 1, so a plain `musicgpt
train` is untouched.

How a run is split: every rank draws the same global batch from the same generator (the batch
stream a 1-process run would see) and trains on its own rows of it, `--batch-size / world size`
each; DDP averages the gradients, so N processes take the steps one process would take with the
whole batch (exactly, without dropout; dropout masks differ). Only rank 0 writes checkpoints,
logs and results; every rank resumes from the same last.pt.
"""

from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as dist

from musicgpt.errors import MusicGPTError


def world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) outside it."""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
            int(os.environ.get("LOCAL_RANK", 0)))


def start(device: torch.device) -> torch.device:
    """Join the process group (once) and return this rank's device: cuda:LOCAL_RANK on GPUs."""
    _, size, local = world()
    if size > 1 and not dist.is_initialized():
        # a rank that waits longer than this for the others fails instead of hanging (default
        # 30 min: rank 0 evaluates while the others wait); MUSICGPT_DIST_TIMEOUT_S sets it
        timeout = timedelta(seconds=float(os.environ.get("MUSICGPT_DIST_TIMEOUT_S", 1800)))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout)
    if device.type == "cuda" and size > 1:
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    return device


def stop() -> None:
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def my_rows(batch_size: int) -> slice:
    """The rows of a global batch this rank trains on."""
    rank, size, _ = world()
    if batch_size % size:
        raise MusicGPTError(f"--batch-size {batch_size} does not split evenly over {size} processes; "
                            f"use a multiple of {size}")
    share = batch_size // size
    return slice(rank * share, (rank + 1) * share)


def check_ranks_agree(model: torch.nn.Module) -> None:
    """Raise unless every rank holds the same weights (a cheap checksum, gathered)."""
    if not dist.is_initialized():
        return
    with torch.no_grad():
        total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().cpu()
        sq = torch.stack([p.detach().double().pow(2).sum() for p in model.parameters()]).sum().cpu()
    mine = torch.stack([total, sq])
    seen = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(seen, mine)
    if any(not torch.allclose(s, seen[0], rtol=1e-9, atol=1e-9) for s in seen):
        raise MusicGPTError("the processes' weights differ after training; the run is not data-parallel")
