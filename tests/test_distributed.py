"""`musicgpt train` under torchrun: 2 CPU processes with gloo (#17). The ranks must end with the
same weights (the trainer checks this and fails otherwise), and the run must take the steps a
1-process run takes with the same global batch; resuming under torchrun goes on from last.pt."""

import os
import subprocess
import sys

import pytest
import torch
from music21 import corpus

from musicgpt.scores import m21_to_score, write_midi

TINY = ["--context", "96", "--layers", "1", "--heads", "2", "--d-model", "32", "--dropout", "0",
        "--batch-size", "4", "--eval-every", "2", "--eval-batches", "2", "--no-progress", "--warmup", "1"]


def _run(args, env, cwd, procs=1):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
                if procs > 1 else [sys.executable])
    done = subprocess.run([*launcher, "-m", "musicgpt", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def _weights(path):
    return torch.load(path, weights_only=True)["model"]


@pytest.mark.slow
def test_two_gloo_processes_train_as_one_with_the_same_batch_and_resume(tmp_path):
    src = tmp_path / "src"
    for w in ["bach/bwv66.6", "bach/bwv269", "bach/bwv347", "bach/bwv153.1", "bach/bwv86.6"]:
        write_midi(m21_to_score(corpus.parse(w)), src / (w.split("/")[1] + ".mid"))
    env = {**os.environ, "MUSICGPT_CORPORA": str(tmp_path / "corpora"), "CUDA_VISIBLE_DEVICES": "",
           "OMP_NUM_THREADS": "1", "MUSICGPT_DIST_TIMEOUT_S": "60"}
    _run(["corpus", "build", "--from", str(src), "--name", "tiny", "--label", "style=chorale",
          "--jobs", "1", "--no-progress"], env, tmp_path)
    # both the same way: 4 steps, then resumed to 6 (the schedule depends on --steps)
    _run(["train", "--corpus", "tiny", "--out", "one", "--steps", "4", *TINY], env, tmp_path)
    short = _weights(tmp_path / "one" / "last.pt")
    _run(["train", "--corpus", "tiny", "--out", "one", "--steps", "6", "--resume", *TINY], env, tmp_path)
    two = _run(["train", "--corpus", "tiny", "--out", "two", "--steps", "4", *TINY], env, tmp_path, procs=2)
    assert two.stdout.count('"best_eval_loss"') == 1  # one report, from rank 0
    _run(["train", "--corpus", "tiny", "--out", "two", "--steps", "6", "--resume", *TINY], env, tmp_path,
         procs=2)
    one, both = _weights(tmp_path / "one" / "last.pt"), _weights(tmp_path / "two" / "last.pt")
    assert one.keys() == both.keys()

    def distance(a, b):  # over all weights: Adam's first steps amplify float-order noise in a few
        return sum(float((a[k].float() - b[k].float()).pow(2).sum()) for k in a) ** 0.5

    # two steps fewer would be far off: the tolerance tells a resumed, sharded run from a wrong one
    assert distance(one, both) < distance(one, short) / 20, (distance(one, both), distance(one, short))

