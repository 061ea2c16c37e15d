"""How well a classifier answers on labelled pieces: accuracy, macro-F1, confusion, calibration."""

from __future__ import annotations

import time

import numpy as np
import torch

from musicgpt.classifier.classify import Classifier, combine
from musicgpt.classifier.data import Labelled
from musicgpt.classifier.features import first_bars_ids
from musicgpt.classifier.heads import key_index
from musicgpt.config import MODES
from musicgpt.evaluation.metrics import accuracy, confusion, expected_calibration_error, macro_f1


def evaluate(clf: Classifier, data: Labelled, bars: int | None = None, progress: bool = False) -> dict:
    """Accuracy, macro-F1, confusion and calibration on labelled pieces (all and human-labelled)."""
    t0 = time.time()
    ids = [first_bars_ids(i, clf.bar_id, bars) for i in data.ids]
    s_logits, k_logits = clf.logits_ids(ids, progress=progress)
    seconds = time.time() - t0
    out: dict = {"pieces": len(data), "bars": bars or "all",
                 "seconds_per_piece": seconds / max(len(data), 1)}
    ts, tk = clf.temperature.get("style", 1.0), clf.temperature.get("key", 1.0)
    ps = torch.softmax(s_logits / ts, -1).numpy()
    pk = torch.softmax(k_logits / tk, -1).numpy().reshape(len(data), 12, len(MODES))
    pk_raw = torch.softmax(k_logits, -1).numpy().reshape(len(data), 12, len(MODES))
    sv = data.style >= 0
    if sv.any():
        pred = ps.argmax(1)
        out["style"] = {
            "accuracy": accuracy(data.style[sv], pred[sv]),
            "macro_f1": macro_f1(data.style[sv], pred[sv], len(clf.styles)),
            "labels": list(clf.styles),
            "confusion": confusion(data.style[sv], pred[sv], len(clf.styles)).tolist(),
            "ece": expected_calibration_error(ps[sv], data.style[sv]),
            "ece_uncalibrated": expected_calibration_error(
                torch.softmax(s_logits, -1).numpy()[sv], data.style[sv]),
        }
    out["key"] = key_metrics(pk, data, pk_raw)
    return out


def key_metrics(pk: np.ndarray, data: Labelled, pk_raw: np.ndarray | None = None) -> dict:
    """Mode, tonic and tonic+mode accuracy from (P, 12, 8) probabilities, all and human-labelled."""
    mode_p, tonic_p = pk.sum(1), pk.sum(2)
    flat = pk.reshape(len(pk), -1)
    out = {}
    for name, sel in (("all", data.mode >= 0), ("human", (data.mode >= 0) & data.human_mode)):
        if not sel.any():
            continue
        keys = np.array([key_index(t, m) for t, m in zip(data.tonic[sel], data.mode[sel])])
        tv = data.tonic[sel] >= 0
        r = {"pieces": int(sel.sum()),
             "mode_accuracy": accuracy(data.mode[sel], mode_p[sel].argmax(1)),
             "tonic_accuracy": accuracy(data.tonic[sel][tv], tonic_p[sel][tv].argmax(1)),
             "key_accuracy": accuracy(keys[tv], flat[sel][tv].argmax(1)),
             "mode_confusion": confusion(data.mode[sel], mode_p[sel].argmax(1), len(MODES)).tolist(),
             "mode_ece": expected_calibration_error(mode_p[sel], data.mode[sel]),
             "key_ece": expected_calibration_error(flat[sel][tv], keys[tv])}
        if pk_raw is not None:
            r["key_ece_uncalibrated"] = expected_calibration_error(
                pk_raw.reshape(len(pk), -1)[sel][tv], keys[tv])
        out[name] = r
    if data.work is not None:  # a multi-file work (a mass) answered once, from all its files
        human = np.flatnonzero((data.mode >= 0) & data.human_mode & (data.tonic >= 0))
        works: dict[str, list[int]] = {}
        for i in human:
            works.setdefault(data.work[i], []).append(int(i))
        if works:
            got = np.stack([combine(pk[idx]) for idx in works.values()])
            first = [idx[0] for idx in works.values()]  # a work's sections share its label
            pred_mode = got.sum(1).argmax(1)
            out["human_work"] = {
                "works": len(works), "pieces": len(human),
                "mode_accuracy": accuracy(data.mode[first], pred_mode),
                "key_accuracy": accuracy(np.array([key_index(data.tonic[i], data.mode[i]) for i in first]),
                                         got.reshape(len(got), -1).argmax(1)),
                "mode_confusion": confusion(data.mode[first], pred_mode, len(MODES)).tolist()}
            multi = [n for n, idx in enumerate(works.values()) if len(idx) > 1]
            if multi:  # works of several files: how well calibrated the combined answer is
                y = data.mode[[first[n] for n in multi]]
                out["human_work"]["multi_file"] = {
                    "works": len(multi),
                    "mode_accuracy": accuracy(y, pred_mode[multi]),
                    "mode_confidence": float(got[multi].sum(1).max(1).mean()),
                    "mode_ece": expected_calibration_error(got[multi].sum(1), y)}
    return out
