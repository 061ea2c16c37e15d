"""The batches the trainer reads (random windows) and the evaluator reads (every window of a split)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from musicgpt.data.tokens import IGNORE, TokenSet, bits_report, shift_bounds
from musicgpt.errors import MusicGPTError
from musicgpt.theory import PITCH_CLASSES, pitch_class
from musicgpt.tokens.tokenizer import MusicTokenizer

WINDOWS = ("piece", "packed")


class LMBatches:
    """Random (B, T) training windows and their targets.

    windows="piece": `[BOS, style?, mode?] + a stretch of one piece starting at a bar line`, padded
    where the piece ends. windows="packed": the train pieces laid end to end, each as
    `[BOS, style?, mode?] + piece + [EOS]`, and a window cut anywhere in that stream, so no target
    slot is padding and a window may begin mid-bar or mid-piece, as later test windows do.
    In both, the control tokens (and BOS) are given, never predicted; each piece gets its own
    random transposition and control dropout.
    """

    def __init__(self, ts: TokenSet, tok: MusicTokenizer, context: int, batch_size: int,
                 transpose: int = 0, control_drop: float = 0.0, windows: str = "piece",
                 balance: float = 1.0):
        if windows not in WINDOWS:
            raise MusicGPTError(f"windows must be one of {', '.join(WINDOWS)}, not {windows!r}")
        self.ts, self.tok, self.T, self.B = ts, tok, context, batch_size
        self.control_drop, self.windows = control_drop, windows
        lengths = np.diff(ts.offsets).astype(np.float64)
        if windows == "packed":  # as laid out: BOS, the controls, the piece, EOS
            lengths = lengths + 2 + (4 if tok.tonics or tok.voice_counts else 2)
        self.weights = torch.tensor(balanced_weights(lengths, ts.corpora, balance))
        table = tok.pitch_shift_table()
        self.shift = None
        if transpose and table is not None:
            ref_min = ts.prog_min.min(axis=0)
            ref_max = ts.prog_max.max(axis=0)
            self.bounds = shift_bounds(ts, ref_min, ref_max, transpose)
            self.pitch_of_id, self.id_of_pitch = (torch.from_numpy(a) for a in table)
            self.shift = transpose
        bar = None if tok.uses_bpe else tok.base.vocab.get("Bar_None")
        # piece windows start at bar lines, so that a window reads like the start of a header; BPE
        # merges bar lines into other tokens, so there any position may start a window
        self.starts = [np.flatnonzero(ts.piece(i) == bar) if bar is not None
                       else np.arange(len(ts.piece(i))) for i in range(len(ts))]

    def _keep(self, gen: torch.Generator) -> list[bool]:
        """Which controls (style, voices, tonic, mode) a piece keeps this time. A tokenizer without
        tonic and voices tokens draws two numbers, as before they existed, so its batches repeat."""
        if not (self.tok.tonics or self.tok.voice_counts):
            style, mode = (torch.rand(2, generator=gen) >= self.control_drop).tolist()
            return [style, False, False, mode]
        return (torch.rand(4, generator=gen) >= self.control_drop).tolist()

    def _header_and_shift(self, i: int, gen: torch.Generator) -> tuple[list[int], int]:
        keep = self._keep(gen)
        k = self._shift(i, gen)
        return self.tok.header(**piece_controls(self.ts, i, self.tok, keep, k)), k

    def _shift(self, i: int, gen: torch.Generator) -> int:
        if self.shift is None:
            return 0
        lo, hi = (int(v) for v in self.bounds[i])
        return int(torch.randint(lo, hi + 1, (1,), generator=gen))

    def _transpose(self, ids: torch.Tensor, k: int) -> torch.Tensor:
        if k == 0:
            return ids
        pitch = self.pitch_of_id[ids]
        moved = self.id_of_pitch[(pitch + k).clamp(0, 127)]
        return torch.where(pitch >= 0, moved, ids)

    def _body(self, i: int, k: int) -> torch.Tensor:
        return self._transpose(torch.from_numpy(self.ts.piece(i).astype(np.int64)), k)

    def __call__(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.full((self.B, self.T), self.tok.pad_id, dtype=torch.long)
        y = torch.full((self.B, self.T), IGNORE, dtype=torch.long)
        if self.windows == "packed":
            rows = [self._packed(gen) for _ in range(self.B)]
        else:
            pieces = torch.multinomial(self.weights, self.B, replacement=True, generator=gen)
            rows = [self._piece(i, gen) for i in pieces.tolist()]
        for b, (seq, given) in enumerate(rows):
            n = len(seq) - 1
            x[b, :n] = seq[:-1]
            y[b, :n] = torch.where(given[1:], IGNORE, seq[1:])
        return x, y

    def _draw(self, gen: torch.Generator) -> int:
        return int(torch.multinomial(self.weights, 1, generator=gen))

    def _piece(self, i: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Piece `i` from a random bar line: (T+1 or fewer ids, which of them are given)."""
        keep = self._keep(gen)
        starts = self.starts[i]
        s = int(starts[torch.randint(len(starts), (1,), generator=gen)]) if len(starts) else 0
        k = self._shift(i, gen)
        header = self.tok.header(**piece_controls(self.ts, i, self.tok, keep, k))
        piece_len = len(self.ts.piece(i))
        body = self._transpose(
            torch.from_numpy(self.ts.piece(i)[s : s + self.T + 1 - len(header)].astype(np.int64)), k)
        tail = [self.tok.eos_id] if s + len(body) >= piece_len else []
        seq = torch.cat([torch.tensor(header, dtype=torch.long), body,
                         torch.tensor(tail, dtype=torch.long)])[: self.T + 1]
        given = torch.zeros(len(seq), dtype=torch.bool)
        given[: len(header)] = True
        return seq, given

    def _packed(self, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """T+1 ids from a random point of the laid-out stream, crossing into further random pieces."""
        parts, given, n = [], [], 0
        i = self._draw(gen)
        first = True
        while n < self.T + 1:
            ids, k = self._header_and_shift(i, gen)
            header = torch.tensor(ids, dtype=torch.long)
            unit = torch.cat([header, self._body(i, k), torch.tensor([self.tok.eos_id])])
            flags = torch.zeros(len(unit), dtype=torch.bool)
            flags[: len(header)] = True
            if first:  # start anywhere in the first piece, its header included
                s = int(torch.randint(len(unit), (1,), generator=gen))
                unit, flags, first = unit[s:], flags[s:], False
            parts.append(unit)
            given.append(flags)
            n += len(unit)
            i = self._draw(gen)
        return torch.cat(parts)[: self.T + 1], torch.cat(given)[: self.T + 1]


def piece_controls(ts: TokenSet, i: int, tok: MusicTokenizer, keep: list[bool], shift: int = 0) -> dict:
    """Piece i's control values that `tok` has tokens for, each kept where `keep` says
    (style, voices, tonic, mode); the tonic moved by a transposition of `shift` semitones."""
    tonic = ts.tonics[i]
    if tonic and tok.tonics:
        tonic = PITCH_CLASSES[(pitch_class(tonic) + shift) % 12]
    return {"style": ts.styles[i] if keep[0] and ts.styles[i] in tok.styles else None,
            "voices": ts.voices[i] if keep[1] and ts.voices[i] > 0 else None,
            "tonic": tonic if keep[2] and tonic else None,
            "mode": ts.modes[i] if keep[3] and ts.modes[i] in tok.modes else None}


def balanced_weights(lengths: np.ndarray, corpora: list[str], balance: float) -> np.ndarray:
    """Each piece's chance of being drawn: in proportion to its length within its corpus, and
    each corpus in proportion to its size ** `balance` (1: as the data falls, so the largest
    corpus dominates; 0: every corpus equally often)."""
    names = np.asarray(corpora if len(corpora) == len(lengths) else [""] * len(lengths))
    if balance == 1.0 or len(set(names.tolist())) == 1:
        return lengths / lengths.sum()
    w = np.zeros(len(lengths))
    for name in np.unique(names):
        sel = names == name
        total = lengths[sel].sum()
        w[sel] = lengths[sel] / total * total ** balance
    return w / w.sum()


def eval_windows(ts: TokenSet, tok: MusicTokenizer, context: int,
                 with_controls: bool = True) -> Iterator[tuple[list[int], list[int]]]:
    """Every test piece cut into consecutive windows, each led by the header; (x, y) lists."""
    for i in range(len(ts)):
        header = tok.header(**piece_controls(ts, i, tok, [with_controls] * 4))
        body = ts.piece(i).astype(np.int64).tolist() + [tok.eos_id]
        step = context + 1 - len(header)  # body tokens each window predicts
        for s in range(0, len(body), step):
            seq = header + body[s : s + step]
            x, y = seq[:-1], seq[1:]
            y = [IGNORE] * (len(header) - 1) + y[len(header) - 1 :]
            yield x, y


def make_evaluator(ts: TokenSet, tok: MusicTokenizer, context: int, batch_size: int = 16,
                   max_batches: int | None = None, with_controls: bool = True
                   ) -> Callable[[torch.nn.Module], dict[str, float]]:
    """A function that scores a model on `ts`: nats/token ("loss"), bits/token, bits/note, accuracy.
    Each window is led by BOS and the piece's control tokens (none without `with_controls`)."""
    notes_per_id = torch.from_numpy(tok.notes_per_id())
    windows = list(eval_windows(ts, tok, context, with_controls))
    batches = [windows[i : i + batch_size] for i in range(0, len(windows), batch_size)]
    if max_batches:
        batches = batches[:max_batches]

    @torch.no_grad()
    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        nll = correct = tokens = notes = 0.0
        for batch in batches:
            T = max(len(x) for x, _ in batch)
            x = torch.full((len(batch), T), tok.pad_id, dtype=torch.long)
            y = torch.full((len(batch), T), IGNORE, dtype=torch.long)
            for b, (xs, ys) in enumerate(batch):
                x[b, : len(xs)] = torch.tensor(xs)
                y[b, : len(ys)] = torch.tensor(ys)
            x, y = x.to(device), y.to(device)
            logits, _ = model(x)
            logits = logits.float()
            valid = y != IGNORE
            tgt = y.clamp(min=0)
            token_nll = F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")  # (B, T)
            nll += float(token_nll[valid].sum())
            correct += float((logits.argmax(-1) == y)[valid].sum())
            tokens += float(valid.sum())
            notes += float(notes_per_id[tgt.cpu()][valid.cpu()].sum())
        model.train(was_training)
        return bits_report(nll, tokens, notes, correct)

    return evaluate
