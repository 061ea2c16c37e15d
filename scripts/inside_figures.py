"""The figures of docs/inside.md: where the shipped model's attention heads look, and what shape
its pitch embeddings take.

    python scripts/inside_figures.py > docs/inside-figures.md

Attention: the first `--pieces` test-split pieces (in manifest order) of the Bach chorales, of
Palestrina and of Aird's Airs (folk, one voice), each read as `musicgpt attention` reads a file
(BOS, the voices control, the music) and cut to the model's context; per layer and head, the mean
attention mass per token on kinds of key (musicgpt.insight.attention_profile), beside what
attention spread evenly over the earlier tokens would give. Embeddings: the pitch-class means'
circle fits and Fourier shares, a permutation test of the fifths fit, and how alike the
embeddings of pitches d semitones apart are.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import symusic
import torch

from musicgpt import corpus as corpora
from musicgpt import insight
from musicgpt.corpus.manifest import music21_corpus_dir
from musicgpt.lm import load_model
from musicgpt.scores import m21_to_score, normalize, parse_m21_all, pick_tune

COLUMNS = (("first", "BOS"), ("previous", "previous token"), ("bars", "bar lines"),
           ("last_bar", "latest bar line"), ("positions", "positions"), ("onset", "own onset"),
           ("same_voice", "own voice"), ("other_voices", "other voices"),
           ("prev_note", "voice's previous note"))


def pieces(n: int) -> dict[str, list[symusic.Score]]:
    out: dict[str, list[symusic.Score]] = {}
    for name in ("bach-chorales", "palestrina"):
        rows = [r for r in corpora.load_manifest(name) if r["split"] == "test"][:n]
        out[name] = [normalize(symusic.Score(str(corpora.midi_path(name, r)))) for r in rows]
    rows = [r for r in corpora.load_manifest("folk") if r["split"] == "test"
            and r["source"] == "airdsAirs/book1.abc"][:n]
    book = music21_corpus_dir() / "airdsAirs" / "book1.abc"
    tunes = parse_m21_all(book)
    numbers = [int(r["id"].rsplit("/", 1)[1]) for r in rows]  # the tune's X: field
    out["folk (Aird's Airs)"] = [normalize(m21_to_score(pick_tune(book, tunes, x))) for x in numbers]
    return out


def table(title: str, got: dict[str, np.ndarray], even: dict[str, float], cols) -> str:
    lines = [f"**{title}**", "", "| layer.head | " + " | ".join(c[1] for c in cols) + " |",
             "|---" * (len(cols) + 1) + "|",
             "| evenly spread | " + " | ".join(f"{even[c[0]]:.2f}" for c in cols) + " |"]
    L, H = got[cols[0][0]].shape
    for layer in range(L):
        for head in range(H):
            cells = []
            for key, _ in cols:
                v = got[key][layer, head]
                ratio = v / even[key] if even[key] > 0 else np.nan
                strong = ratio >= 2 and v >= 0.1
                cells.append(f"**{v:.2f}**" if strong else f"{v:.2f}")
            lines.append(f"| {layer}.{head} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pieces", type=int, default=8, help="test pieces per corpus")
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.time()
    model, tok, _ = load_model()
    print(f"shipped model, {args.pieces} test pieces per corpus, first {model.cfg.context} tokens "
          f"each; {time.strftime('%Y-%m-%d')}\n")
    for corpus, scores in pieces(args.pieces).items():
        got, even, tokens = [], [], 0
        for score in scores:
            voices = len({t.program for t in score.tracks if t.notes})
            ids = (tok.header(voices=voices) + tok.encode(score))[: model.cfg.context]
            roles = insight.token_roles(tok, ids)
            got.append(insight.attention_profile(insight.attention_weights(model, ids), roles))
            even.append(insight.attention_profile(insight.uniform_attention(len(ids)), roles))
            tokens += len(ids)
        mean = {k: np.nanmean([g[k] for g in got], axis=0) for k in insight.PROFILE}
        base = {k: float(np.nanmean([e[k] for e in even])) for k in insight.PROFILE}
        cols = COLUMNS if corpus != "folk (Aird's Airs)" else [c for c in COLUMNS if c[0] != "other_voices"]
        print(table(f"{corpus}: {len(scores)} pieces, {tokens} tokens", mean, base, cols) + "\n")
    print("(bold: at least twice the evenly spread share, and at least 0.10)\n")

    g = insight.pitch_geometry(model, tok)
    names, vectors = insight.pitch_embeddings(model, tok)
    pitches = insight.pitch_token_pitches(tok)
    keep = ~insight.rarely_seen(vectors, pitches)
    means = insight.pitch_class_means(vectors[keep], pitches[keep])
    rng = np.random.default_rng(0)
    shuffled = []
    for _ in range(2000):  # the same 12 points, the pitch-class names dealt out at random
        perm = rng.permutation(12)
        shuffled.append(insight.circle_fit(g.pc_points[perm], insight.FIFTHS))
    shuffled = np.array(shuffled)
    print(f"pitch tokens learned: {len(g.names)} ({g.names[0]}-{g.names[-1]}); rarely seen, left out: "
          f"{len(g.left_out)}")
    print(f"2-D projection of the learned pitches: {g.share[0]:.3f} + {g.share[1]:.3f} of the variance; "
          f"correlation with MIDI pitch: axis 1 {np.corrcoef(g.coords[:, 0], g.pitches)[0, 1]:.2f}, "
          f"axis 2 {np.corrcoef(g.coords[:, 1], g.pitches)[0, 1]:.2f}")
    x = np.c_[g.coords, np.ones(len(g.coords))]
    fit = x @ np.linalg.lstsq(x, g.pitches, rcond=None)[0]
    r2 = 1 - ((g.pitches - fit) ** 2).sum() / ((g.pitches - g.pitches.mean()) ** 2).sum()
    print(f"pitch height read linearly from the two axes: R^2 {r2:.2f}")
    print(f"12 pitch-class means, own 2-D projection ({g.pc_share[0]:.2f} + {g.pc_share[1]:.2f}): "
          f"circle fit fifths {g.fits['fifths']:.2f}, chromatic {g.fits['chromatic']:.2f}; "
          f"random name orders reach the fifths fit {np.mean(shuffled >= g.fits['fifths']):.4f} of the "
          f"time (mean {shuffled.mean():.2f}, 95th percentile {np.percentile(shuffled, 95):.2f})")
    c = g.pc_points - g.pc_points.mean(axis=0)
    order = np.argsort(np.arctan2(c[:, 1], c[:, 0]))
    print("angular order of the means: " + " ".join(insight.PITCH_CLASSES[i] for i in order))
    print("Fourier shares of the 12 means (k=0..6): " + " ".join(f"{v:.3f}" for v in g.fourier)
          + f" (in all {means.shape[1]} dimensions)")
    sim = insight.interval_similarity(vectors[keep], pitches[keep])
    print("mean cosine of centred embeddings d semitones apart:")
    print("| d | " + " | ".join(str(d) for d in range(1, 25)) + " |")
    print("|---" * 25 + "|")
    print("| cos | " + " | ".join(f"{sim[d]:.2f}" for d in range(1, 25)) + " |")
    print(f"\n({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
