"""Round trips of real scores through the tokenizer, control tokens, and the token cache."""

import pytest
from music21 import corpus

from musicgpt.config import MODES, TokenizerConfig
from musicgpt.errors import MusicGPTError
from musicgpt.scores import m21_to_score
from musicgpt.tokens.tokenizer import MusicTokenizer


@pytest.fixture(scope="module")
def tok():
    return MusicTokenizer.create(TokenizerConfig(), styles=("chorale", "mass"), modes=MODES)


def notes_in_quarters(score):
    """Per program, the sorted (onset, duration, pitch) of every note, in quarter notes."""
    q = score.ticks_per_quarter
    return {t.program: sorted((n.time / q, n.duration / q, n.pitch) for n in t.notes)
            for t in score.tracks}


@pytest.mark.parametrize("work", ["bach/bwv66.6", "bach/bwv269", "bach/bwv347"])
def test_chorale_round_trip_keeps_four_voices_and_their_notes(tok, work):
    score = m21_to_score(corpus.parse(work))
    assert len(score.tracks) == 4
    back = tok.decode(tok.encode(score))
    assert len(back.tracks) == 4
    # chorales sit on a sixteenth grid, which the tokenizer represents exactly
    assert notes_in_quarters(back) == notes_in_quarters(score)


def test_four_two_meter_survives(tok):
    """Palestrina's 4/2 is outside MidiTok's default meters; our config keeps it."""
    path = next(p for p in corpus.getComposer("palestrina") if str(p).endswith(".krn"))
    score = m21_to_score(corpus.parse(path))
    ts = score.time_signatures[0]
    back = tok.decode(tok.encode(score))
    got = back.time_signatures[0]
    assert (got.numerator, got.denominator) == (ts.numerator, ts.denominator)
    assert back.note_num() == score.note_num()


def test_triplets_stay_on_the_grid(tok):
    import symusic

    s = symusic.Score(480)
    s.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    tr = symusic.Track(program=16)
    for k in range(6):  # triplet eighths
        tr.notes.append(symusic.Note(k * 160, 160, 60 + k, 80))
    s.tracks.append(tr)
    assert notes_in_quarters(tok.decode(tok.encode(s))) == notes_in_quarters(s)


def test_control_tokens_follow_the_base_vocabulary(tok):
    assert tok.vocab_size == tok.base_size + 2 + len(MODES)
    h = tok.header("mass", "dorian")
    assert h == [tok.bos_id, tok.base_size + 1, tok.base_size + 2 + MODES.index("dorian")]
    # control tokens decode to nothing
    assert tok.decode(h).note_num() == 0
    with pytest.raises(MusicGPTError, match="unknown style"):
        tok.header("madrigal")


def test_save_and_load_give_the_same_tokenizer(tok):
    again = MusicTokenizer.from_dict(tok.to_dict())
    score = m21_to_score(corpus.parse("bach/bwv66.6"))
    assert again.encode(score) == tok.encode(score)
    assert again.vocab_size == tok.vocab_size and again.modes == tok.modes


def test_token_cache_follows_the_midi_files(tok, tmp_path):
    """A corpus rebuilt with other MIDI (a new extraction) must not be read from a stale cache."""
    import os

    from musicgpt.data.tokens import encode_rows
    from musicgpt.scores import write_midi

    score = m21_to_score(corpus.parse("bach/bwv66.6"))
    midi = tmp_path / "a.mid"
    write_midi(score, midi)
    rows = [{"id": "a", "style": "chorale", "mode": "ionian"}]
    first = encode_rows(tok, rows, lambda r: midi, tmp_path / "cache")
    again = encode_rows(tok, rows, lambda r: midi, tmp_path / "cache")  # from the cache
    assert (again.ids == first.ids).all()
    write_midi(score.clip(0, 8 * 1920), midi)  # the same piece, re-extracted shorter
    stat = midi.stat()
    os.utime(midi, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))  # distinct even on a coarse clock
    rebuilt = encode_rows(tok, rows, lambda r: midi, tmp_path / "cache")
    assert len(rebuilt.ids) < len(first.ids)
    assert len(list((tmp_path / "cache").glob("tokens-*.npz"))) == 2


def test_texture_controls_add_a_token_per_tonic_and_per_voice_count():
    tok = MusicTokenizer.create(TokenizerConfig(), ("folk-song", "mass"), MODES, texture_controls=True)
    base = tok.base_size + 2 + len(MODES)
    assert tok.vocab_size == base + 12 + 8
    h = tok.header("mass", "dorian", "D", 4)  # BOS, style, voices, tonic, mode
    dorian = tok.base_size + 2 + MODES.index("dorian")
    assert h == [tok.bos_id, tok.base_size + 1, base + 12 + 3, base + 2, dorian]
    assert tok.tonic_id("Db") == tok.tonic_id("C#") == base + 1
    assert tok.decode(h).note_num() == 0
    assert tok.header(voices=20)[1] == base + 12 + 7  # more voices than programs: the most
    again = MusicTokenizer.from_dict(tok.to_dict())
    assert again.tonics == tok.tonics and again.voice_counts == tok.voice_counts
    assert again.vocab_size == tok.vocab_size
    plain = MusicTokenizer.create(TokenizerConfig(), ("mass",), MODES)
    assert plain.header("mass", None, "D", 4) == plain.header("mass")  # no such tokens: left out
    assert "tonics" not in plain.to_dict()  # older tokenizers' dicts and cache keys unchanged
    with pytest.raises(MusicGPTError, match="key control"):
        plain.tonic_id("D")
