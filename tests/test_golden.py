"""Behaviour is pinned: the shipped checkpoints give the outputs recorded in tests/fixtures/golden/.

They were first recorded at commit dc8238e (before the #12 regrouping), and are recorded again,
by running this file as a script, only when a change is meant to move them (new shipped weights,
or continuation's texture rules: voices, meter, no silent bars):

    python tests/test_golden.py --record

Every command goes through the command line in a subprocess, so the test keeps working whatever
moves inside the package. The inputs are real scores copied from music21's bundled corpus
(tests/fixtures/golden/src/), not files musicgpt wrote, so a change in reading them shows too.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
SRC = GOLDEN / "src"
CHORALES = SRC / "chorales"
CLASSIFIED = [CHORALES / "bwv66.6.mxl", SRC / "Agnus_01.krn", SRC / "AmateurHornpipe.abc"]
# The model's float32 sums may differ in the last bits between CPUs, thread counts and runs (a
# loss moved by 2.6e-6 relative between two runs on one machine); any change of behaviour
# (tokens, split, smoothing) moves a figure far more than this.
REL_TOL = 2e-5


def weights() -> Path:
    """The shipped checkpoints of the musicgpt that `python -m musicgpt` runs, found without importing it."""
    spec = importlib.util.find_spec("musicgpt")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent / "weights"


def musicgpt(*args: str, cwd: Path) -> str:
    """Run `python -m musicgpt ARGS` on the CPU with the corpora under CWD; return its stdout."""
    env = {**os.environ, "MUSICGPT_CORPORA": str(cwd / "corpora"), "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, "-m", "musicgpt", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"musicgpt {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def continuation(out: Path, prompt: str, *extra: str) -> bytes:
    musicgpt("continue", prompt, *extra, "--seed", "3", "--length", "2bars", "--out", str(out),
             "--model", str(weights() / "default.pt"), cwd=out.parent)
    return out.read_bytes()


def classification(work: Path) -> list[dict[str, Any]]:
    answer = json.loads(musicgpt("classify", "--json", "--model", str(weights() / "classifier.pt"),
                                 *map(str, CLASSIFIED), cwd=work))
    for row in answer:  # the absolute path of the fixture depends on the checkout
        row["file"] = Path(row["file"]).name
    return answer


def evaluation(work: Path) -> dict[str, Any]:
    musicgpt("corpus", "build", "--from", str(CHORALES), "--name", "golden", "--jobs", "1",
             "--no-progress", cwd=work)
    figures = json.loads(musicgpt("evaluate", "--model", str(weights() / "default.pt"),
                                  "--corpus", "golden", "--json", cwd=work))
    figures.pop("model", None)
    return figures


def outputs(work: Path) -> dict[str, Any]:
    """Every golden output, by the name of its fixture file."""
    return {
        "theme.mid": continuation(work / "theme.mid", "C4 D4 E4 F4 G4:h"),
        "chorale.mid": continuation(work / "chorale.mid", str(CHORALES / "bwv66.6.mxl"), "--bars", "2"),
        "classify.json": classification(work),
        "evaluate.json": evaluation(work),
    }


def record() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for name, value in outputs(Path(tmp)).items():
            path = GOLDEN / name
            if isinstance(value, bytes):
                path.write_bytes(value)
            else:
                path.write_text(json.dumps(value, indent=2) + "\n")
            print(f"recorded {path}")


def same_figures(got: Any, want: Any, where: str = "") -> None:
    """Every recorded figure is still there and equal: floats to REL_TOL and to the 3 decimals that
    `evaluate` prints. Figures added since (a new baseline) are not behaviour that changed."""
    if isinstance(want, dict):
        assert set(want) <= set(got), f"{where}: missing {sorted(set(want) - set(got))}"
        for key in want:
            same_figures(got[key], want[key], f"{where}/{key}")
    elif isinstance(want, float):
        assert round(got, 3) == round(want, 3) and math.isclose(got, want, rel_tol=REL_TOL), \
            f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, where


@pytest.fixture(scope="module")
def current(tmp_path_factory) -> dict[str, Any]:
    return outputs(tmp_path_factory.mktemp("golden"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["theme.mid", "chorale.mid"])
def test_continuation_with_a_fixed_seed_is_byte_identical(current, name):
    assert current[name] == (GOLDEN / name).read_bytes()


@pytest.mark.slow
def test_classify_json_is_unchanged(current):
    assert current["classify.json"] == json.loads((GOLDEN / "classify.json").read_text())


@pytest.mark.slow
def test_evaluate_figures_are_unchanged(current):
    same_figures(current["evaluate.json"], json.loads((GOLDEN / "evaluate.json").read_text()))


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python tests/test_golden.py --record   (rewrites tests/fixtures/golden/)")
    record()
