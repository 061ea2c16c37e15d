"""The token tables, the note reader and the grammar mask give what they gave before they were
rewritten around one state machine (recorded at 6d2acbd, when keyhead.py and tokenizer.py each
had their own interpreter), on real chorales, Palestrina's 4/2, random walks through the grammar
and an odd stream (notes before any bar line, a control id mid-stream, a meter change)."""

import json
from pathlib import Path

import numpy as np
import pytest

import musicgpt
from musicgpt.checkpoint import read_checkpoint
from musicgpt.config import MODES, TokenizerConfig
from musicgpt.tokens.state import read_notes
from musicgpt.tokens.tokenizer import MusicTokenizer

HERE = Path(__file__).parent / "fixtures" / "tokens"
INDEX = json.loads((HERE / "index.json").read_text())
TABLES = np.load(HERE / "tables.npz")


@pytest.fixture(scope="module")
def toks():
    # "shipped": the tokenizer the shipped model had when these were recorded (chorale-only, 414
    # ids), kept as a fixture so the record stays comparable after the shipped model changes
    shipped = json.loads((HERE / "shipped-tokenizer.json").read_text())
    return {"remi": MusicTokenizer.create(TokenizerConfig(), ("chorale", "mass"), MODES),
            "tsd": MusicTokenizer.create(TokenizerConfig(kind="TSD"), ("chorale", "mass"), MODES),
            "shipped": MusicTokenizer.from_dict(shipped)}


def test_the_shipped_model_reads_music_as_the_recorded_tokenizer_did():
    """The shipped tokenizer only adds control ids after the same MidiTok vocabulary."""
    now = MusicTokenizer.from_dict(read_checkpoint(Path(musicgpt.__file__).parent / "weights" / "default.pt")
                                   ["meta"]["tokenizer"])
    then = MusicTokenizer.from_dict(json.loads((HERE / "shipped-tokenizer.json").read_text()))
    assert now.base.vocab == then.base.vocab


@pytest.mark.parametrize("name", ["remi", "tsd", "shipped"])
def test_per_id_tables_are_unchanged(toks, name):
    tok = toks[name]
    t = tok.tables
    pitch_of_id, id_of_pitch = tok.pitch_shift_table()
    got = {"notes_per_id": tok.notes_per_id(), "pitch_of_id": pitch_of_id, "id_of_pitch": id_of_pitch,
           "program_of_id": tok.program_of_id(), "tt_scalars": np.array([t.bar_id, t.res])}
    for k in ("pitch", "program", "duration", "position", "shift", "bar_len"):
        got[f"tt_{k}"] = getattr(t, k)
    for key, value in got.items():
        np.testing.assert_array_equal(value, TABLES[f"{name}_{key}"], err_msg=key)


def test_the_position_unit_is_the_tick_unit(toks):
    """One bar length serves the grammar's positions and the reader's ticks."""
    for tok in toks.values():
        assert tok.tables.res == max(r for _, _, r in tok.cfg.beat_res)


@pytest.mark.parametrize("key", sorted(INDEX))
def test_notes_and_masks_are_unchanged(toks, key):
    rec = np.load(HERE / f"{key}.npz")
    tok = toks[INDEX[key]["tokenizer"]]
    ids = rec["ids"]
    notes = read_notes(ids, tok.tables)
    for field, value in notes.items():
        np.testing.assert_array_equal(value, rec[f"notes_{field}"], err_msg=field)
    grammar, prefix, masks = tok.grammar(), ids.tolist(), []
    for k in range(1, INDEX[key]["masked_prefixes"] + 1):
        masks.append(grammar.allowed(prefix[:k]).numpy())
    np.testing.assert_array_equal(np.packbits(np.stack(masks), axis=1), rec["masks"])
