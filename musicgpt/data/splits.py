"""A corpus's train / validation / test pieces, and their token sets.

The manifest fixes train and test (whole groups: no piece, and no melody in another setting, on
both sides). Validation is carved from train the same way, whole groups at a time, so that
checkpoints are chosen and settings tuned without ever looking at test.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from musicgpt import corpus as corpora
from musicgpt.data.tokens import TokenSet, encode_rows
from musicgpt.errors import MusicGPTError
from musicgpt.tokens.tokenizer import MusicTokenizer

VALID_SHARE = 0.1  # of the train pieces


def carve_valid(rows: list[dict], corpus: str, share: float = VALID_SHARE) -> tuple[list[dict], list[dict]]:
    """(train, valid): whole groups, taken in a fixed hash order until `share` of the pieces.

    Depends only on group names and sizes, like the train/test split, so it never changes with
    file order or a random state.
    """
    sizes = Counter(r.get("group") or r["id"] for r in rows)
    budget = round(len(rows) * share)
    chosen, n = set(), 0
    order = sorted(sizes, key=lambda g: hashlib.sha256(f"valid:{corpus}:{g}".encode()).hexdigest())
    for group in order:
        if n + sizes[group] <= budget:
            chosen.add(group)
            n += sizes[group]
    if not chosen and len(order) > 1:  # a small corpus: still one group, the smallest, to select on
        chosen.add(min(order, key=lambda g: sizes[g]))
    valid = [r for r in rows if (r.get("group") or r["id"]) in chosen]
    return [r for r in rows if (r.get("group") or r["id"]) not in chosen], valid


def split_rows(corpus: str, root: Path | None = None, valid_share: float = 0.0) -> dict[str, list[dict]]:
    """Manifest rows by split: "train" and "test", and "valid" (carved from train) when valid_share > 0."""
    rows = corpora.load_manifest(corpus, root)
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for r in rows:
        out.setdefault(r["split"], []).append(r)
    if not out["train"] or not out["test"]:
        raise MusicGPTError(f"corpus {corpus} needs pieces in both splits; rebuild it")
    if valid_share > 0:
        out["train"], out["valid"] = carve_valid(out["train"], corpus, valid_share)
        if not out["valid"]:
            raise MusicGPTError(f"corpus {corpus} has one train group only, so no validation split can "
                                "be carved from it without taking it all; add pieces to the corpus")
    return out


def token_sets(tok: MusicTokenizer, corpus: str, root: Path | None = None,
               valid_share: float = 0.0) -> dict[str, TokenSet]:
    """Token sets by split (see split_rows), encoded once and cached beside the corpus."""
    root = root or corpora.corpora_root()
    cache = root / corpus / ".cache" / "tokens"
    midi_of = lambda row: corpora.midi_path(corpus, row, root)  # noqa: E731
    return {name: encode_rows(tok, rows, midi_of, cache)
            for name, rows in split_rows(corpus, root, valid_share).items()}
