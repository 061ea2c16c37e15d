"""Property-based fuzzing (#17): random token sequences through decoding, and random small MIDI
files (and random bytes called .mid) through `continue`, `classify` and `render`. Whatever comes
in, the answer is a result or one clear error line, never a traceback."""

import os

import pytest

hypothesis = pytest.importorskip("hypothesis")  # in the test extra: pip install -e '.[test]'
import symusic  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from musicgpt.cli import main  # noqa: E402
from musicgpt.errors import MusicGPTError  # noqa: E402
from musicgpt.lm import load_model  # noqa: E402

# 20 examples each in CI; FUZZ_EXAMPLES=500 for a longer hunt
FUZZ = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 20)), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
_, TOK, _ = load_model()

notes = st.lists(st.tuples(st.integers(0, 4000), st.integers(0, 3000), st.integers(0, 127),
                           st.integers(1, 127)), min_size=0, max_size=40)
tracks = st.lists(st.tuples(st.integers(0, 127), st.booleans(), notes), min_size=0, max_size=5)


def _score(tpq: int, qpm: float, spec) -> symusic.Score:
    score = symusic.Score(tpq)
    score.tempos.append(symusic.Tempo(0, qpm))
    for program, drum, ns in spec:
        track = symusic.Track(program=program, is_drum=drum)
        for time, dur, pitch, vel in ns:
            track.notes.append(symusic.Note(time, dur, pitch, vel))
        score.tracks.append(track)
    return score


@FUZZ
@given(st.lists(st.integers(0, TOK.vocab_size - 1), max_size=300))
def test_any_token_sequence_decodes_or_is_a_clear_error(ids):
    try:
        TOK.decode(ids)
        TOK.error_rate(ids)
    except MusicGPTError:
        pass


@FUZZ
@given(st.sampled_from([96, 220, 480]), st.floats(0.5, 2000), tracks)
def test_any_small_midi_file_is_continued_classified_and_rendered_or_refused_in_one_line(
        tmp_path_factory, tpq, qpm, spec):
    tmp = tmp_path_factory.mktemp("fuzz")
    path = tmp / "in.mid"
    path.write_bytes(_score(tpq, qpm, spec).dumps_midi())
    for argv in (["continue", str(path), "--length", "1bars", "--out", str(tmp / "out.mid")],
                 ["classify", str(path)],
                 ["render", str(path), "--roll", "--wav", "--out-dir", str(tmp / "r")]):
        assert main(argv) in (0, 1, 2)  # an exception here would be a traceback for the user


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_called_mid_are_refused_in_one_line(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("bytes") / "noise.mid"
    path.write_bytes(data)
    assert main(["classify", str(path)]) == 1
    assert main(["continue", str(path), "--length", "1bars", "--out", str(path.with_name("o.mid"))]) == 2
