"""`musicgpt evaluate-continuation`: continue the first bars of test pieces and compare each
sample with the piece's real continuation, per corpus; and how well the mode control is obeyed.

A header is a test piece's first `header_bars` bars; the model adds `bars` bars, which are set
against the piece's own next `bars` bars (music.py defines each figure). Memorisation is the
longest run of new bars found note for note, in any transposition, in a train piece of the
same corpus. Mode adherence asks for each mode in turn on one-voice headers and counts the
samples that two judges both hear in that mode: the final-note + best-scale rule and the
project's classifier, each reading the new notes alone.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import symusic
import torch

from musicgpt import corpus as corpora
from musicgpt.config import ContinuationEvalConfig, SampleConfig
from musicgpt.continuation import continue_score
from musicgpt.data.splits import VALID_SHARE, split_rows
from musicgpt.errors import MusicGPTError
from musicgpt.evaluation.music import (
    BarIndex,
    Notes,
    cardinality_score,
    groove_consistency,
    groove_similarity,
    in_scale_rate,
    onset_patterns,
    pc_distance,
    silent_bars,
)
from musicgpt.scores import first_bars, normalize
from musicgpt.theory import best_scale, final_bass_pc, pc_histogram, pitch_class, scale_fits

GRID = 40  # ticks per onset-pattern step: a 12th of a quarter at 480 ticks, REMI's finest
CARD_BEATS = range(2, 11)
ADHERENCE_MODES = ("ionian", "dorian", "mixolydian", "aeolian")


def bar_ticks(score: symusic.Score) -> list[int]:
    """Bar-line ticks as MidiTok draws them, closed by the end of the last bar."""
    from miditok.utils import get_bars_ticks

    ticks = list(get_bars_ticks(score))
    if len(ticks) > 1:
        ticks.append(ticks[-1] + (ticks[-1] - ticks[-2]))
    return ticks


def _order(rows: list[dict]) -> list[dict]:
    """A fixed order that does not depend on file order: by a hash of the id."""
    return sorted(rows, key=lambda r: hashlib.sha256(r["id"].encode()).hexdigest())


def _load(name: str, row: dict, root: Path | None) -> symusic.Score:
    path = corpora.midi_path(name, row, root)
    if not path.exists():
        raise MusicGPTError(f"{path} is missing; run `musicgpt corpus build {row.get('corpus', name)}`")
    return normalize(symusic.Score(str(path)))


def memory_index(name: str, rows: Iterable[dict], root: Path | None, longest: int) -> BarIndex:
    index = BarIndex(longest)
    for row in rows:
        score = _load(name, row, root)
        index.add(Notes.of(score), bar_ticks(score))
    return index


def headers(name: str, rows: list[dict], cfg: ContinuationEvalConfig, root: Path | None,
            one_voice: bool = False) -> list[tuple[dict, symusic.Score, list[int]]]:
    """Up to cfg.pieces (row, score, bar ticks) with a header and a real continuation that has notes."""
    out = []
    need = cfg.header_bars + cfg.bars
    for row in _order(rows):
        if len(out) >= cfg.pieces:
            break
        if one_voice and row.get("voices") != 1:
            continue
        score = _load(name, row, root)
        ticks = bar_ticks(score)
        if len(ticks) <= need or not len(Notes.of(score, ticks[cfg.header_bars], ticks[need])):
            continue
        out.append((row, score, ticks))
    return out


def _voices(notes: Notes) -> set[int]:
    return set(notes.voice.tolist())


def sample_figures(row: dict, score: symusic.Score, ticks: list[int], result, cfg: ContinuationEvalConfig,
                   index: BarIndex) -> dict:
    """Every figure of one sample beside the same figure of the real continuation."""
    h, m = cfg.header_bars, cfg.bars
    starts = ticks[h : h + m + 1]
    real = Notes.of(score, starts[0], starts[-1])
    gen = Notes.of(result.continuation, starts[0], starts[-1])
    head = Notes.of(score, 0, starts[0])
    tonic = pitch_class(row["tonic"]) if row.get("tonic") else None
    mode = row.get("mode") or ""
    key = (lambda n: in_scale_rate(n, tonic, mode)) if tonic is not None else (lambda n: float("nan"))
    g_pat, r_pat = onset_patterns(gen, starts, GRID), onset_patterns(real, starts, GRID)
    card = cardinality_score(real, gen, starts[0], score.ticks_per_quarter, CARD_BEATS)
    return {
        "notes": len(gen), "real_notes": len(real),
        "in_key": key(gen), "real_in_key": key(real),
        "pc_distance": pc_distance(gen, real),
        "voices": len(_voices(gen)), "real_voices": len(_voices(real)),
        "header_voices": len(_voices(head)), "voices_kept": _voices(gen) == _voices(head),
        "silent_bars": silent_bars(gen, starts), "real_silent_bars": silent_bars(real, starts),
        "header_silent_bars": silent_bars(head, ticks[: h + 1]),
        "new_bars": result.new_bars,
        "groove_similarity": groove_similarity(g_pat, r_pat),
        "groove_consistency": groove_consistency(g_pat), "real_groove_consistency": groove_consistency(r_pat),
        "cardinality": {str(k): v for k, v in card.items()},
        "grammar_error_rate": result.error_rate,
        "copied_bars": index.longest_copy(gen, starts),
    }


def _mean(values: Iterable[float]) -> float:
    vals = [float(v) for v in values if v is not None and not np.isnan(v)]
    return float(np.mean(vals)) if vals else float("nan")


def summarise(samples: list[dict], cfg: ContinuationEvalConfig) -> dict:
    """Per-corpus figures from per-sample ones: model and real continuation side by side."""
    if not samples:
        return {"samples": 0}
    s = lambda k: [x[k] for x in samples]  # noqa: E731
    card = {n: _mean(x["cardinality"][str(n)] for x in samples) for n in CARD_BEATS}
    real_notes = sum(s("real_notes"))
    return {
        "samples": len(samples), "pieces": len({x["piece"] for x in samples}),
        "density": sum(s("notes")) / (cfg.bars * len(samples)),
        "real_density": real_notes / (cfg.bars * len(samples)),
        "density_ratio": sum(s("notes")) / real_notes if real_notes else float("nan"),
        "in_key": _mean(s("in_key")), "real_in_key": _mean(s("real_in_key")),
        "pc_distance": _mean(s("pc_distance")),
        "voices": _mean(s("voices")), "real_voices": _mean(s("real_voices")),
        "voices_kept": _mean(s("voices_kept")),
        "silent_bars": sum(s("silent_bars")), "real_silent_bars": sum(s("real_silent_bars")),
        "header_silent_bars": sum(s("header_silent_bars")),
        "new_bars": _mean(s("new_bars")), "bars_asked": cfg.bars,
        "groove_similarity": _mean(s("groove_similarity")),
        "groove_consistency": _mean(s("groove_consistency")),
        "real_groove_consistency": _mean(s("real_groove_consistency")),
        "cardinality": {str(n): v for n, v in card.items()}, "cardinality_mean": _mean(card.values()),
        "grammar_errors": sum(1 for v in s("grammar_error_rate") if v > 0),
        "copied_bars_max": max(s("copied_bars")),
        "copied_over_4": sum(1 for v in s("copied_bars") if v > 4),
        "seconds_median": statistics.median(s("seconds")),
    }


def _splits(corpus: str, cfg: ContinuationEvalConfig, root: Path | None) -> dict[str, list[dict]]:
    """{"train": ..., "test": the headers' pieces}: the test split, or with cfg.split "valid" the
    validation carve that training held out (for tuning sampling without looking at test)."""
    if cfg.split == "test":
        return split_rows(corpus, root)
    rows = split_rows(corpus, root, valid_share=VALID_SHARE)
    return {"train": rows["train"], "test": rows["valid"]}


def _generator(cfg: ContinuationEvalConfig, *keys: object) -> torch.Generator:
    seed = int(hashlib.sha256(repr((cfg.seed, *keys)).encode()).hexdigest()[:8], 16)
    return torch.Generator().manual_seed(seed)


def evaluate_continuations(model: torch.nn.Module, tok, corpus: str, cfg: ContinuationEvalConfig,
                           root: Path | None = None, sample_cfg: SampleConfig = SampleConfig(),
                           tick: Callable[[], None] = lambda: None) -> dict:
    """{corpus name: summary} for `corpus` (each member corpus of "all"), plus "samples"."""
    rows_by_split = _splits(corpus, cfg, root)
    by_corpus: dict[str, dict[str, list[dict]]] = defaultdict(lambda: {"train": [], "test": []})
    for split in ("train", "test"):
        for r in rows_by_split[split]:
            by_corpus[str(r.get("corpus") or corpus)][split].append(r)
    report, records = {}, []
    max_tokens = max(256, 160 * cfg.bars)
    scfg = SampleConfig(**{**sample_cfg.__dict__, "max_new_tokens": max_tokens})
    for name in sorted(by_corpus):
        chosen = headers(corpus, by_corpus[name]["test"], cfg, root)
        if not chosen:
            report[name] = {"samples": 0}
            continue
        index = memory_index(corpus, by_corpus[name]["train"], root, longest=cfg.bars + 1)
        samples = []
        for row, score, ticks in chosen:
            header = first_bars(score, cfg.header_bars)
            for k in range(cfg.samples):
                t0 = time.perf_counter()
                result = continue_score(model, tok, header, sample_cfg=scfg, bars=cfg.bars,
                                        infer_key=cfg.infer_key,
                                        generator=_generator(cfg, row["id"], k))
                figures = sample_figures(row, score, ticks, result, cfg, index)
                figures.update(piece=row["id"], corpus=name, sample=k,
                               seconds=time.perf_counter() - t0)
                samples.append(figures)
                tick()
        report[name] = summarise(samples, cfg)
        records += samples
    return {"corpora": report, "samples": records}


def judge_final_scale(notes_score: symusic.Score) -> str | None:
    """The final-note + best-scale rule's mode for a score (None without notes)."""
    tonic = final_bass_pc(notes_score)
    if tonic is None:
        return None
    return best_scale(scale_fits(pc_histogram(notes_score), tonic))


def mode_adherence(model: torch.nn.Module, tok, corpus: str, cfg: ContinuationEvalConfig, classifier,
                   root: Path | None = None, modes: tuple[str, ...] = ADHERENCE_MODES,
                   sample_cfg: SampleConfig = SampleConfig(),
                   tick: Callable[[], None] = lambda: None) -> dict:
    """For one-voice test headers of `corpus`: per requested mode, the share of samples both
    judges hear in it, and how many headers gave identical notes for two different modes."""
    unknown = [m for m in modes if m not in tok.modes]
    if unknown:
        raise MusicGPTError(f"this model has no control token for {', '.join(unknown)}")
    chosen = headers(corpus, _splits(corpus, cfg, root)["test"], cfg, root, one_voice=True)
    if not chosen:
        need = cfg.header_bars + cfg.bars
        raise MusicGPTError(f"corpus {corpus} has no one-voice test piece of {need} bars")
    scfg = SampleConfig(**{**sample_cfg.__dict__, "max_new_tokens": max(256, 160 * cfg.bars)})
    heard: dict[str, list[tuple[str | None, str]]] = {m: [] for m in modes}
    identical = 0
    for row, score, _ in chosen:
        header = first_bars(score, cfg.header_bars)
        outputs = {}
        for m in modes:
            result = continue_score(model, tok, header, sample_cfg=scfg, bars=cfg.bars, mode=m,
                                    keep_key=not cfg.free,
                                    generator=_generator(cfg, row["id"], "mode"))
            new = result.continuation
            outputs[m] = tuple(sorted((n.time, n.duration, n.pitch) for t in new.tracks for n in t.notes))
            by_rule = judge_final_scale(new) if new.note_num() else None
            by_clf = classifier.classify_score(new)["mode"][0][0] if new.note_num() else ""
            heard[m].append((by_rule, by_clf))
            tick()
        identical += sum(1 for a in modes for b in modes if a < b and outputs[a] == outputs[b])
    per_mode = {m: {"both": _mean(r == m and c == m for r, c in v),
                    "rule": _mean(r == m for r, _ in v), "classifier": _mean(c == m for _, c in v)}
                for m, v in heard.items()}
    return {"headers": len(chosen), "per_mode": per_mode,
            "both_mean": _mean(v["both"] for v in per_mode.values()),
            "identical_pairs": identical}
