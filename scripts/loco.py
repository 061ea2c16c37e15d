"""Leave-one-collection-out: the classifier's heads and the rule baselines, each collection held
out whole in turn (issue #15). A model can learn where a file came from instead of what it sounds
like; a collection it never saw cannot reward that.

    python scripts/loco.py --model musicgpt/weights/default.pt --out docs/loco.json > docs/loco.md

For every piece of every corpus (Essen capped by --essen), the frozen body of --model reads the
piece once as it is, once transposed by a random -6..+5 semitones and, for pieces of two voices or
more, once as a random subset of its voices (augmentation against the file, not the music). Then,
for each collection (O'Neill's, Ryan's, Aird's, miscFolk, Essen, Palestrina, trecento, Josquin,
Bach, Monteverdi), fresh style and key heads are fitted on the other collections' features
(classifier.training.fit_cached, the recipe of the shipped heads), their temperatures on a tenth
of those collections' groups, and they answer for every piece of the held-out one as it is. The
body was pre-trained, without labels, on every corpus's train split: the held-out collection's
labels are unseen, its train-split notes are not (the figures on its test split alone come too).

Labels are the human ones: the tonic from ABC K: / kern / Palestrina's encoding, the major/minor
quality from the K: word of the fiddle-tune books (K:Em against K:G; Essen's K: names only a
tonic), and the mode where a person named it (K:Ador, Palestrina, Josquin). Rules beside it, on
the same pieces: final note + best scale; the tonic/fifth-weighted profile of theory.key_scores
plus a final-note bonus chosen on the training collections; a pitch-class-profile LR trained on
the other collections; music21's analyze('key') (major/minor only; a sample, it is slow).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import symusic
import torch

from musicgpt import corpus as corpora
from musicgpt.checkpoint import load_checkpoint
from musicgpt.classifier.classify import Classifier
from musicgpt.classifier.data import Batches, corpus_data, source_of
from musicgpt.classifier.features import piece_features, piece_states
from musicgpt.classifier.heads import Heads, key_index
from musicgpt.classifier.training import fit_cached, fit_temperature
from musicgpt.config import MODES, ClassifierTrainConfig
from musicgpt.corpus.labels import MODE_WORDS, parse_k
from musicgpt.evaluation import baselines as bl
from musicgpt.evaluation.metrics import expected_calibration_error, macro_f1
from musicgpt.scores import normalize
from musicgpt.theory import MAJOR_THIRD, key_scores
from musicgpt.tokens.tokenizer import MusicTokenizer

FAMILY = {"folk-song": "folk", "fiddle-tune": "folk", "mass": "sacred", "motet": "sacred",
          "benedicamus": "sacred", "madrigal": "secular", "ballata": "secular", "caccia": "secular",
          "chanson": "secular", "chorale": "chorale"}
DIATONIC = [i for i, m in enumerate(MODES) if m != "other"]


def collection(piece_id: str) -> str:
    """The collection a corpus piece comes from: a folk book, else its corpus."""
    return source_of(piece_id)


def k_words(source: Path) -> dict[str, str]:
    """{X number: first K: value} of an ABC tune book."""
    out, x = {}, None
    for line in source.read_text(errors="replace").splitlines():
        if line.startswith("X:"):
            x = line[2:].strip()
        elif line.startswith("K:") and x is not None and x not in out:
            out[x] = line[2:].strip()
    return out


def human_quality(rows: list[dict]) -> np.ndarray:
    """(P,) 1 major, 0 minor, -1 unknown: the third a person wrote in K: (not Essen's, whose K:
    names only a tonic), or the third of a human-labelled mode."""
    import music21

    corpus_dir = Path(music21.__file__).parent / "corpus"
    books: dict[str, dict[str, str]] = {}
    out = np.full(len(rows), -1)
    for i, r in enumerate(rows):
        if r.get("mode_source") == "human" and r.get("mode") in MODES and r["mode"] != "other":
            out[i] = int(r["mode"] in MAJOR_THIRD)
            continue
        src = r.get("source", "")
        if r.get("corpus") != "folk" or src.startswith("essen") or not src.endswith(".abc"):
            continue
        if src not in books:
            books[src] = k_words(corpus_dir / src)
        parsed = parse_k(books[src].get(r["id"].rsplit("/", 1)[-1], ""))
        if parsed:
            out[i] = int(MODE_WORDS[parsed[2]] in MAJOR_THIRD)
    return out


def features(clf: Classifier, pieces: list[np.ndarray], log: str) -> dict[str, torch.Tensor]:
    from tqdm import tqdm

    out: dict[str, list] = {"mean": [], "mass": [], "state": []}
    with torch.no_grad():
        for s in tqdm(range(0, len(pieces), 8), desc=log, unit="x8 pieces", file=sys.stderr):
            part = pieces[s : s + 8]
            states = piece_states(clf.model, part, clf.bar_id, clf.tok.bos_id, clf.tok.pad_id)
            mean, mass, state = piece_features(states, part, clf.tables)
            out["mean"].append(mean)
            out["mass"].append(mass)
            out["state"].append(state.half())
    return {k: torch.cat(v) for k, v in out.items()}


def voice_subset(clf: Classifier, path: Path, rng: np.random.Generator) -> np.ndarray | None:
    """A random non-empty proper subset of a piece's voices (one voice half the time), tokenized."""
    score = normalize(symusic.Score(str(path)))
    n = len(score.tracks)
    if n < 2:
        return None
    k = 1 if rng.random() < 0.5 else int(rng.integers(1, n))
    keep = sorted(rng.choice(n, size=k, replace=False).tolist())
    score.tracks = [score.tracks[i] for i in keep]  # type: ignore[assignment]
    ids = np.asarray(clf.tok.encode(normalize(score)), dtype=np.int64)
    return ids if len(ids) and np.any(clf.tables.pitch[ids] >= 0) else None


def build_cache(model_path: Path, essen_cap: int, seed: int, cache: Path) -> dict:
    """Every selected piece's labels, baseline profiles and three feature passes (cached)."""
    lm, meta, _ = load_checkpoint(model_path)
    tok = MusicTokenizer.from_dict(meta["tokenizer"])
    train, test, styles = corpus_data(tok, "all")
    rows_by_id = {r["id"]: r for r in corpora.load_manifest("all")}
    rng = np.random.default_rng(seed)
    pieces, ids, split = [], [], []
    for name, lab in (("train", train), ("test", test)):
        for p, x in zip(lab.piece_ids, lab.ids):
            pieces.append(x)
            ids.append(p)
            split.append(name)
    essen = [i for i, p in enumerate(ids) if collection(p) == "essenFolksong"]
    drop = set(rng.permutation(essen)[essen_cap:].tolist()) if len(essen) > essen_cap else set()
    keep = [i for i in range(len(ids)) if i not in drop]
    pieces, ids, split = [pieces[i] for i in keep], [ids[i] for i in keep], [split[i] for i in keep]
    rows = [rows_by_id[p] for p in ids]
    key = f"{model_path.stat().st_size}-{model_path.stat().st_mtime_ns}-{len(ids)}-{essen_cap}-{seed}"
    if cache.exists():
        got = torch.load(cache, weights_only=False)
        if got.get("key") == key:
            return got
    clf = Classifier(lm.eval(), Heads(len(styles), {"d_model": lm.cfg.d_model}), tok, tuple(styles),
                     {}, meta)
    batches = Batches(train.subset([0]), tok, ClassifierTrainConfig())
    gen = torch.Generator().manual_seed(seed)
    shifted, shifts = [], []
    for x in pieces:
        y, k = batches._shift(torch.from_numpy(x), gen)
        shifted.append(y.numpy())
        shifts.append(k)
    subsets, sub_of = [], []
    for i, r in enumerate(rows):
        if (r.get("voices") or 1) >= 2:
            s = voice_subset(clf, corpora.midi_path(r["corpus"], r), rng)
            if s is not None:
                subsets.append(s)
                sub_of.append(i)
    t0 = time.time()
    out = {
        "key": key, "ids": ids, "split": split, "styles": list(styles), "rows": rows,
        "shifts": np.array(shifts), "sub_of": np.array(sub_of, dtype=np.int64),
        "profiles": np.stack([bl.pitch_profiles(symusic.Score(str(corpora.midi_path(r["corpus"], r))))
                              for r in rows]),
        "quality": human_quality(rows),
        "plain": features(clf, pieces, "as written"),
        "shifted": features(clf, shifted, "transposed"),
        "subset": features(clf, subsets, "voice subsets"),
    }
    out["feature_seconds"] = round(time.time() - t0, 1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, cache)
    return out


def labels(c: dict) -> dict[str, np.ndarray]:
    from musicgpt.theory import pitch_class

    def tonic(r: dict, human_only: bool) -> int:
        if human_only and r.get("key_source") != "human":
            return -1
        try:
            return pitch_class(r.get("tonic") or "")
        except Exception:
            return -1

    rows, styles = c["rows"], c["styles"]
    human = np.array([r.get("mode_source") == "human" for r in rows])
    mode = np.array([MODES.index(r["mode"]) if r.get("mode") in MODES else -1 for r in rows])
    return {"style": np.array([styles.index(r["style"]) if r.get("style") in styles else -1 for r in rows]),
            "tonic": np.array([tonic(r, True) for r in rows]), "mode": mode,
            "human_mode": human & (mode >= 0), "any_mode": mode,
            "any_tonic": np.array([tonic(r, False) for r in rows])}


def training_set(c: dict, lab: dict, idx: np.ndarray, cfg: ClassifierTrainConfig) -> dict:
    """Cached features and labels of pieces `idx` (as written, transposed, voice subsets)."""
    parts = []
    for name, which, shift in (("plain", idx, np.zeros(len(idx), dtype=int)),
                               ("shifted", idx, c["shifts"][idx])):
        parts.append((c[name], which, which, shift))
    sub_pos = np.flatnonzero(np.isin(c["sub_of"], idx))
    parts.append((c["subset"], sub_pos, c["sub_of"][sub_pos], np.zeros(len(sub_pos), dtype=int)))
    X: dict[str, list] = {k: [] for k in ("mean", "mass", "state", "style", "key", "w_style", "w_key")}
    for feats, pos, piece, shift in parts:
        for k in ("mean", "mass", "state"):
            X[k].append(feats[k][torch.as_tensor(pos, dtype=torch.long)])
        t, m = lab["any_tonic"][piece], lab["any_mode"][piece]
        # a derived mode on a derived tonic still teaches (weighted down), as in the shipped heads
        X["key"].append(torch.tensor([key_index((int(a) + int(s)) % 12, int(b)) if a >= 0 and b >= 0 else -1
                                      for a, b, s in zip(t, m, shift)]))
        X["style"].append(torch.as_tensor(lab["style"][piece]))
        X["w_style"].append(torch.ones(len(piece)))
        X["w_key"].append(torch.as_tensor(np.where(lab["human_mode"][piece], 1.0, cfg.derived_mode_weight),
                                          dtype=torch.float32))
    X = {k: torch.cat(v) for k, v in X.items()}
    _, inv, counts = np.unique(X["style"].numpy(), return_inverse=True, return_counts=True)
    X["w_style"] = X["w_style"] * torch.from_numpy(counts[inv] ** -0.5).float()
    return X


def heads_probs(clf: Classifier, feats: dict, pos: np.ndarray, T: dict) -> tuple[np.ndarray, np.ndarray]:
    p = torch.as_tensor(pos, dtype=torch.long)
    with torch.no_grad():
        s, k = clf.heads(feats["mean"][p], feats["mass"][p], feats["state"][p].float())
    ps = torch.softmax(s / T["style"], -1).numpy()
    pk = torch.softmax(k / T["key"], -1).numpy().reshape(len(pos), 12, len(MODES))
    return ps, pk


def profile_rule(profiles: np.ndarray, bonus: float) -> tuple[np.ndarray, np.ndarray]:
    """theory.key_scores (scale share + tonic and fifth weight + first bass note) + `bonus` on the
    final note: (tonic, mode index)."""
    hist, final = profiles[:, bl.CHANNELS.index("hist")], profiles[:, bl.CHANNELS.index("final")]
    first = profiles[:, bl.CHANNELS.index("first")]
    tonics, modes = [], []
    for i, h in enumerate(hist):
        fb = int(first[i].argmax()) if first[i].sum() > 0 else None
        sc = key_scores(h, fb)
        f = final[i] / max(final[i].sum(), 1e-9)
        best = max(((sc[m][t] + bonus * f[t], -j, t, m) for j, m in enumerate(sc) for t in range(12)))
        tonics.append(best[2])
        modes.append(MODES.index(best[3]))
    return np.array(tonics), np.array(modes)


def quality_of(mode_idx: np.ndarray) -> np.ndarray:
    return np.array([int(MODES[m] in MAJOR_THIRD) if MODES[m] != "other" else -1 for m in mode_idx])


def scores_for(tonic: np.ndarray, mode: np.ndarray, lab: dict, q: np.ndarray, idx: np.ndarray) -> dict:
    """Accuracy on each human label of pieces `idx` (n beside each)."""
    out = {}
    t_ok = lab["tonic"][idx] >= 0
    out["tonic"] = _acc(tonic[idx][t_ok] == lab["tonic"][idx][t_ok])
    qv = q[idx] >= 0
    out["quality"] = _acc(quality_of(mode[idx])[qv] == q[idx][qv])
    tq = qv & t_ok
    out["tonic+quality"] = _acc((quality_of(mode[idx])[tq] == q[idx][tq])
                                & (tonic[idx][tq] == lab["tonic"][idx][tq]))
    hm = lab["human_mode"][idx]
    out["mode"] = _acc(mode[idx][hm] == lab["mode"][idx][hm])
    hq = hm & (q[idx] == 0)  # human-labelled pieces with a minor third: is the 6th heard?
    out["minor-third modes"] = _acc(mode[idx][hq] == lab["mode"][idx][hq])
    return out


def _acc(ok: np.ndarray) -> list:
    return [round(float(ok.mean()), 3) if len(ok) else None, int(len(ok))]


def run(args: argparse.Namespace) -> dict:
    cfg = ClassifierTrainConfig(freeze=True, seed=args.seed)
    c = build_cache(args.model, args.essen, args.seed, args.cache)
    lab = labels(c)
    lm, meta, _ = load_checkpoint(args.model)
    tok = MusicTokenizer.from_dict(meta["tokenizer"])
    styles = c["styles"]
    coll = np.array([collection(p) for p in c["ids"]])
    groups = np.array([str(r.get("group") or r["id"]) for r in c["rows"]])
    test_split = np.array([s == "test" for s in c["split"]])
    names = [n for n, _ in Counter(coll).most_common()]
    profiles, q = c["profiles"], c["quality"]
    ft, fm = bl.final_scale_rule(profiles)
    report: dict = {"collections": {}, "machine": f"{platform.node()} ({platform.processor() or 'cpu'})",
                    "date": time.strftime("%Y-%m-%d"), "model": str(args.model), "essen_cap": args.essen,
                    "feature_seconds": c.get("feature_seconds"), "pieces": len(c["ids"])}
    pooled = {"style_true": [], "style_pred": [], "ps": [], "pk": [], "key_true": []}
    m21_rng = np.random.default_rng(args.seed)
    for name in names:
        t0 = time.time()
        held = np.flatnonzero(coll == name)
        rest = np.flatnonzero(coll != name)
        rng = np.random.default_rng(args.seed)
        rest_groups = sorted(set(groups[rest]))
        cal_groups = set(rng.permutation(rest_groups)[: max(1, len(rest_groups) // 10)].tolist())
        cal = np.array([i for i in rest if groups[i] in cal_groups])
        fit = np.array([i for i in rest if groups[i] not in cal_groups])
        torch.manual_seed(args.seed)
        heads = Heads(len(styles), {"d_model": lm.cfg.d_model, "proj": cfg.key_proj, "hidden": cfg.key_hidden,
                                    "dropout": cfg.key_dropout, "n_context": len(styles)})
        clf = Classifier(lm, heads, tok, tuple(styles), {}, meta)
        fit_cached(clf, training_set(c, lab, fit, cfg), cfg, torch.Generator().manual_seed(args.seed))
        s_cal, k_cal = heads_probs(clf, c["plain"], cal, {"style": 1.0, "key": 1.0})
        key_cal = np.array([key_index(t, m) if t >= 0 and m >= 0 else -1
                            for t, m in zip(lab["any_tonic"][cal], lab["any_mode"][cal])])
        T = {"style": fit_temperature(np.log(np.clip(s_cal, 1e-12, None)), lab["style"][cal]),
             "key": fit_temperature(np.log(np.clip(k_cal.reshape(len(cal), -1), 1e-12, None)), key_cal)}
        ps, pk = heads_probs(clf, c["plain"], held, T)
        tonic_all = np.full(len(coll), -1)
        mode_all = np.full(len(coll), -1)
        tonic_all[held] = pk.sum(2).argmax(1)
        mode_all[held] = [DIATONIC[int(np.argmax(pk[j, t, DIATONIC]))] for j, t in enumerate(tonic_all[held])]
        # the profile rule's final bonus, chosen on the training collections' human tonics
        tr = fit[lab["tonic"][fit] >= 0]
        tr = rng.permutation(tr)[:1500]
        best_bonus, best_acc = 0.0, -1.0
        for b in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0):
            t_, _ = profile_rule(profiles[tr], b)
            acc = float((t_ == lab["tonic"][tr]).mean())
            if acc > best_acc:
                best_bonus, best_acc = b, acc
        pt = np.full(len(coll), -1)
        pm = np.full(len(coll), -1)
        pt[held], pm[held] = profile_rule(profiles[held], best_bonus)
        # pitch-class-profile LR on the other collections (human tonic, any mode label)
        lr_fit = fit[(lab["any_tonic"][fit] >= 0) & (lab["any_mode"][fit] >= 0)]
        lr = bl.KeyLR().fit(profiles[lr_fit], lab["any_tonic"][lr_fit], lab["any_mode"][lr_fit],
                            np.where(lab["human_mode"][lr_fit], 1.0, cfg.derived_mode_weight))
        plr = lr.predict_proba(profiles[held])
        lt = np.full(len(coll), -1)
        lm_ = np.full(len(coll), -1)
        lt[held] = plr.sum(2).argmax(1)
        lm_[held] = [DIATONIC[int(np.argmax(plr[j, t, DIATONIC]))] for j, t in enumerate(lt[held])]
        entry: dict = {"pieces": len(held), "test_split_pieces": int(test_split[held].sum()),
                       "profile_final_bonus": best_bonus, "temperature": T}
        for who, (tt, mm) in {"model": (tonic_all, mode_all), "final+scale": (ft, fm),
                              "profile+final": (pt, pm), "pc-profile LR": (lt, lm_)}.items():
            entry[who] = scores_for(tt, mm, lab, q, held)
        entry["model (test split only)"] = scores_for(tonic_all, mode_all, lab, q, held[test_split[held]])
        # music21's key finder on a sample of major/minor-labelled pieces (it answers ionian/aeolian)
        if args.m21 > 0:
            mm_pieces = [i for i in held if q[i] >= 0 and lab["tonic"][i] >= 0]
            sample = m21_rng.permutation(mm_pieces)[: args.m21]
            mt, mmode = np.full(len(coll), -1), np.full(len(coll), -1)
            for i in sample:
                try:
                    mt[i], mmode[i] = bl.music21_key(corpora.midi_path(c["rows"][i]["corpus"], c["rows"][i]))
                except Exception:
                    pass
            sample = np.array(sample, dtype=np.int64)
            entry["music21 (sample)"] = scores_for(mt, mmode, lab, q, sample)
            entry["model (same sample)"] = scores_for(tonic_all, mode_all, lab, q, sample)
        # style: the exact label, its family, and for masses and motets the questions #15 asks
        sv = lab["style"][held] >= 0
        pred = ps.argmax(1)
        true = lab["style"][held]
        entry["style"] = {"accuracy": _acc(pred[sv] == true[sv]),
                          "family": _acc(np.array([FAMILY.get(styles[a]) == FAMILY.get(styles[b])
                                                   for a, b in zip(pred[sv], true[sv])])),
                          "answers": Counter(styles[a] for a in pred).most_common(4),
                          "ece": round(expected_calibration_error(ps[sv], true[sv]), 3) if sv.any() else None}
        for target in ("mass", "motet"):
            if target in styles:
                sel = true == styles.index(target)
                if sel.any():
                    entry["style"][f"{target} called {target}"] = _acc(pred[sel] == styles.index(target))
                    entry["style"][f"{target} called sacred"] = _acc(
                        np.array([FAMILY.get(styles[a]) == "sacred" for a in pred[sel]]))
        kt = np.array([key_index(t, m) if t >= 0 and h else -1
                       for t, m, h in zip(lab["tonic"][held], lab["mode"][held], lab["human_mode"][held])])
        kv = kt >= 0
        entry["key_ece"] = round(expected_calibration_error(pk.reshape(len(held), -1)[kv], kt[kv]), 3) \
            if kv.any() else None
        entry["confidence"] = confidence_table(ps, pk, true, kt)
        entry["seconds"] = round(time.time() - t0, 1)
        report["collections"][name] = entry
        pooled["style_true"] += true[sv].tolist()
        pooled["style_pred"] += pred[sv].tolist()
        print(f"{name}: {json.dumps({k: entry[k] for k in ('model', 'final+scale', 'profile+final')})}",
              file=sys.stderr)
    report["style_macro_f1_pooled"] = round(macro_f1(np.array(pooled["style_true"]),
                                                     np.array(pooled["style_pred"]), len(styles)), 3)
    return report


def confidence_table(ps: np.ndarray, pk: np.ndarray, style_true: np.ndarray, key_true: np.ndarray) -> dict:
    """Share answered and accuracy of the answers when an answer below P is "unsure"."""
    out = {}
    for p in (0.0, 0.5, 0.7):
        row = {}
        sv = style_true >= 0
        if sv.any():
            conf, ok = ps[sv].max(1), ps[sv].argmax(1) == style_true[sv]
            row["style"] = [round(float((conf >= p).mean()), 3),
                            round(float(ok[conf >= p].mean()), 3) if (conf >= p).any() else None]
        kv = key_true >= 0
        if kv.any():
            flat = pk.reshape(len(pk), -1)[kv]
            conf, ok = flat.max(1), flat.argmax(1) == key_true[kv]
            row["key"] = [round(float((conf >= p).mean()), 3),
                          round(float(ok[conf >= p].mean()), 3) if (conf >= p).any() else None]
        out[str(p)] = row
    return out


def markdown(rep: dict) -> str:
    def f(x: list | None) -> str:
        return "–" if not x or x[0] is None else f"{x[0]:.3f} ({x[1]})"

    lines = [f"Leave-one-collection-out, {rep['date']}, {rep['machine']}; body {rep['model']} (frozen), "
             f"{rep['pieces']} pieces (Essen capped at {rep['essen_cap']}).", "",
             "| held out | pieces | answer | tonic | major/minor | tonic + major/minor | mode (human) | "
             "minor-third modes |", "|---|---|---|---|---|---|---|---|"]
    for name, e in rep["collections"].items():
        for who in ("model", "final+scale", "profile+final", "pc-profile LR", "music21 (sample)",
                    "model (same sample)", "model (test split only)"):
            if who in e:
                s = e[who]
                lines.append(f"| {name} | {e['pieces']} | {who} | {f(s['tonic'])} | {f(s['quality'])} | "
                             f"{f(s['tonic+quality'])} | {f(s['mode'])} | {f(s['minor-third modes'])} |")
    lines += ["", "| held out | style accuracy | style family | answers | mass called mass | "
              "motet called motet / sacred | style ECE | key ECE |", "|---|---|---|---|---|---|---|---|"]
    for name, e in rep["collections"].items():
        s = e["style"]
        motet = (f"{f(s.get('motet called motet'))} / {f(s.get('motet called sacred'))}"
                 if "motet called motet" in s else "–")
        answers = ", ".join(f"{a} {n}" for a, n in s["answers"])
        lines.append(f"| {name} | {f(s['accuracy'])} | {f(s['family'])} | {answers} | "
                     f"{f(s.get('mass called mass'))} | {motet} | {s['ece']} | {e['key_ece']} |")
    lines += ["", f"Style macro-F1, all held-out answers pooled: {rep['style_macro_f1_pooled']}."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=Path("musicgpt/weights/default.pt"),
                    help="the language model whose frozen body the heads read")
    ap.add_argument("--essen", type=int, default=1500, help="Essen tunes kept (of 8,513), for time")
    ap.add_argument("--m21", type=int, default=60, help="pieces per collection for music21's key finder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=Path("runs/loco/features.pt"))
    ap.add_argument("--out", type=Path, help="write every figure as JSON here")
    args = ap.parse_args()
    rep = run(args)
    if args.out:
        args.out.write_text(json.dumps(rep, indent=1, default=lambda o: o.tolist()) + "\n")
    print(markdown(rep))


if __name__ == "__main__":
    main()
