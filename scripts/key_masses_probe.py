"""A fast loop for the key head's inputs: the head on pitch-class masses only, no LM body.

The shipped key head reads, per note-role channel and pitch class, a weight share ("mass") and a
pooled hidden state. Fitting it needs the body to read every piece (13 min on this CPU). On
masses alone a fit takes seconds, so questions about the inputs can be asked many times:

  - which label weights help (derived mode labels against human ones, per corpus);
  - whether extra note-role channels (ambitus, cadences, the final sonority, ...) help.

Scores are on the calibration hold-out (10% of the train split's groups, as in training) and on
the report's test sample, averaged over --seeds; "work" answers a mass once from all its
sections (classify.combine). Transposition is a random rotation of the masses, which is exact.

    python scripts/key_masses_probe.py --channels base,lowest+highest --derived-weight 0.3
    python scripts/key_masses_probe.py --derived-weight 0 --corpus-weight folk=0.3
    python scripts/key_masses_probe.py --hidden 16,32,64,128,256
    python scripts/key_masses_probe.py --style-input
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
sys.path.insert(0, str(Path(__file__).resolve().parent))

from eval_classifier import sample_test  # noqa: E402

from musicgpt.classifier.classify import combine, key_index, load_classifier  # noqa: E402
from musicgpt.classifier.training import ClassifierTrainConfig, Labelled, corpus_data, hold_out, probe_pieces  # noqa: E402
from musicgpt.classifier.keyhead import KeyHead, channel_weights, read_notes  # noqa: E402
from musicgpt.lm import split_rows  # noqa: E402

EXTRA = ("lowest", "highest", "top", "final_chord", "voice_low", "voice_high", "cadence", "long")


def extra_weights(n: dict[str, np.ndarray], res: int) -> dict[str, np.ndarray]:
    """Candidate channels beyond keyhead.CHANNELS, each (N,) weights over the notes."""
    pitch, voice, onset = n["pitch"], n["voice"], n["onset"]
    dur, N = n["dur"].astype(float), len(n["pitch"])
    P = {k: np.zeros(N) for k in EXTRA}
    if not N:
        return P
    voices = np.unique(voice)
    low = min(voices, key=lambda v: pitch[voice == v].mean())
    high = max(voices, key=lambda v: pitch[voice == v].mean())
    P["lowest"][np.argmin(pitch)] = 1  # the ambitus: its lowest and highest notes
    P["highest"][np.argmax(pitch)] = 1
    P["top"] = np.where(voice == high, dur, 0)  # the top voice (dur)
    last = onset.max()
    P["final_chord"] = ((onset <= last) & (onset + n["dur"] > last)).astype(float)
    for v in voices:  # each voice's lowest and highest notes
        sel = np.flatnonzero(voice == v)
        for key, ext in (("voice_low", pitch[sel].min()), ("voice_high", pitch[sel].max())):
            at = sel[pitch[sel] == ext]
            P[key][at] += 1.0 / len(at)
    sel = np.flatnonzero(voice == low)
    order = sel[np.lexsort((pitch[sel], onset[sel]))]
    # the bass arrives a fourth up (or fifth down: same pitch class step) on a long note: V-I
    arrive = order[1:][(np.diff(pitch[order]) % 12 == 5) & (dur[order[1:]] >= 2 * res)]
    P["cadence"][arrive] = dur[arrive]
    P["long"] = np.where(dur >= np.quantile(dur, 0.9), dur, 0)
    return P


def masses(data: Labelled, tables, extra: list[str]) -> torch.Tensor:
    out = []
    for ids in data.ids:
        n = read_notes(ids, tables)
        W = channel_weights(n, tables.res)
        if extra:
            P = extra_weights(n, tables.res)
            W = np.concatenate([W, np.stack([P[k] for k in extra])])
        onehot = np.zeros((len(n["pitch"]), 12))
        onehot[np.arange(len(n["pitch"])), n["pitch"] % 12] = 1
        m = W @ onehot
        out.append(m / np.maximum(m.sum(1, keepdims=True), 1e-9))
    return torch.tensor(np.stack(out), dtype=torch.float32)


def style_of(d: Labelled, n: int) -> torch.Tensor:
    """(N, n) one-hot true style labels."""
    return F.one_hot(torch.as_tensor(d.style, dtype=torch.long), n).float()


def scores(p: np.ndarray, d: Labelled, corpus: dict[str, str]) -> dict[str, float]:
    mode = p.sum(1).argmax(1)
    human = d.human_mode & (d.mode >= 0)
    folk = human & np.array([corpus[i] == "folk" for i in d.piece_ids])
    derived = (d.mode >= 0) & ~d.human_mode
    keys = np.array([key_index(t, m) for t, m in zip(d.tonic, d.mode)])
    works = defaultdict(list)
    for i in np.flatnonzero(human):
        works[d.work[i]].append(i)
    return {"mode(h)": (mode[human] == d.mode[human]).mean(),
            "key(h)": (p.reshape(len(p), -1).argmax(1)[human] == keys[human]).mean(),
            "work(h)": np.mean([combine(p[ix]).sum(0).argmax() == d.mode[ix[0]] for ix in works.values()]),
            "folk(h)": (mode[folk] == d.mode[folk]).mean(),
            "derived": (mode[derived] == d.mode[derived]).mean()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("musicgpt/weights/default.pt"),
                    help="a checkpoint whose tokenizer and style labels to use")
    ap.add_argument("--channels", default="base",
                    help="comma-separated runs; each 'base' or extra channels joined by '+': " + ", ".join(EXTRA))
    ap.add_argument("--derived-weight", type=float, default=ClassifierTrainConfig.derived_mode_weight)
    ap.add_argument("--corpus-weight", action="append", default=[], metavar="CORPUS=W",
                    help="derived-label weight for one corpus (overrides --derived-weight)")
    ap.add_argument("--per-style", type=int, default=ClassifierTrainConfig.probe_per_style)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--iters", type=int, default=ClassifierTrainConfig.probe_iters)
    ap.add_argument("--style-input", action="store_true",
                    help="the head also reads the style, as the classifier's key head does (here the "
                    "true style label, one-hot: an upper bound on what the style head can pass on)")
    ap.add_argument("--hidden", default=str(ClassifierTrainConfig.key_hidden),
                    help="comma-separated hidden sizes of the key head's MLP to compare")
    args = ap.parse_args()
    torch.set_num_threads(1)

    clf = load_classifier(args.model)
    train, test, _ = corpus_data(clf.tok, "all", clf.styles)
    rows = split_rows("all")
    corpus = {r["id"]: r["corpus"] for split in rows.values() for r in split}
    base = ClassifierTrainConfig(probe_per_style=args.per_style)
    fit, cal = hold_out(train, base.calib_fraction, base.seed)
    fit = fit.subset(probe_pieces(fit, base))
    wanted = {r["id"] for r in sample_test(rows["test"], 40)}
    test = test.subset([i for i, p in enumerate(test.piece_ids) if p in wanted])
    per_corpus = {k: float(v) for k, v in (c.split("=", 1) for c in args.corpus_weight)}
    w = torch.tensor([1.0 if h else per_corpus.get(corpus[p], args.derived_weight)
                      for h, p in zip(fit.human_mode, fit.piece_ids)])
    y = torch.tensor([key_index(t, m) if t >= 0 and m >= 0 else -1 for t, m in zip(fit.tonic, fit.mode)])
    print(f"fit {len(fit)} pieces, calibration hold-out {len(cal)}, test sample {len(test)}; derived weight "
          f"{args.derived_weight} {per_corpus or ''}, {args.per_style} per style", file=sys.stderr)
    S = len(clf.styles) if args.style_input else 0
    ok = y >= 0
    Sf, Sc, St = (style_of(d, S) if S else None for d in (fit, cal, test))
    Sf_ = Sf[ok] if S else None
    cache: dict[str, tuple[torch.Tensor, ...]] = {}
    for run, hidden in [(r, int(h)) for r in args.channels.split(",") for h in args.hidden.split(",")]:
        t0 = time.time()
        extra = [] if run == "base" else run.split("+")
        if run not in cache:  # reading the notes is the slow part: once per set of channels
            cache[run] = tuple(masses(d, clf.tables, extra) for d in (fit, cal, test))
        Xf, Xc, Xt = cache[run]
        Xf_, y_, w_ = Xf[ok], y[ok], w[ok]
        K = Xf.size(1)
        got = defaultdict(list)
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            gen = torch.Generator().manual_seed(seed)
            head = KeyHead(1, n_channels=K, proj=0, hidden=hidden, dropout=base.key_dropout, n_context=S)
            opt = torch.optim.AdamW(head.parameters(), lr=base.head_lr, weight_decay=0.05)
            head.train()
            for it in range(args.iters):
                for g in opt.param_groups:
                    g["lr"] = base.head_lr * 0.5 * (1 + math.cos(math.pi * it / args.iters))
                b = torch.randint(len(y_), (base.probe_batch,), generator=gen)
                s = torch.randint(12, (len(b),), generator=gen)  # transposition = rotation
                x = torch.stack([torch.roll(Xf_[i], int(k), -1) for i, k in zip(b.tolist(), s.tolist())])
                target = (y_[b] // 8 + s) % 12 * 8 + y_[b] % 8
                z = head(x, torch.zeros(len(b), K, 12, 1), Sf_[b] if S else None)
                loss = (F.cross_entropy(z, target, reduction="none") * w_[b]).sum() / w_[b].sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            head.eval()
            for name, X, Sx, d in (("cal", Xc, Sc, cal), ("test", Xt, St, test)):
                with torch.no_grad():
                    p = torch.softmax(head(X, torch.zeros(len(X), K, 12, 1), Sx), -1).numpy()
                for k, v in scores(p.reshape(len(X), 12, 8), d, corpus).items():
                    got[f"{name} {k}"].append(v)
        print(f"{run:<24} hidden {hidden:<4} " + "  ".join(f"{k} {np.mean(v):.3f}" for k, v in got.items())
              + f"  ({time.time() - t0:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
