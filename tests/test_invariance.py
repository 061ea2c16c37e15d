"""The classifier answers for the music, not the file (#15): the same piece as kern, MusicXML,
ABC and MIDI, re-voiced onto other programs, stripped of key signatures and tempo, or transposed,
gets the same style and mode (and the tonic moves with a transposition). Real scores from
music21's corpus, the shipped classifier."""

from __future__ import annotations

from pathlib import Path

import music21
import pytest
import symusic

from musicgpt import load_classifier, load_score, write_midi
from musicgpt.theory import PITCH_CLASSES, pitch_class

pytestmark = pytest.mark.slow

CORPUS = Path(music21.__file__).parent / "corpus"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def clf():
    return load_classifier()


def answer(clf, score: symusic.Score) -> tuple[str, str, str, float]:
    r = clf.classify_score(score)
    return r["style"][0][0], r["tonic"][0][0], r["mode"][0][0], r["key"][0][1]


def transposed(score: symusic.Score, k: int) -> symusic.Score:
    out = score.copy()
    for track in out.tracks:
        for note in track.notes:
            note.pitch += k
    return out


def plain_file(score: symusic.Score) -> symusic.Score:
    """As a user's MIDI may come: no key signatures, no tempo, other programs, one name."""
    out = score.copy()
    out.key_signatures = symusic.Score(out.ticks_per_quarter).key_signatures
    out.tempos = symusic.Score(out.ticks_per_quarter).tempos
    for i, track in enumerate(out.tracks):
        track.program = (0, 40, 73, 19)[i % 4]  # piano, violin, flute, organ
        track.name = "Track"
    return out


@pytest.mark.parametrize("bwv", ["bwv281", "bwv366"])
def test_kern_musicxml_midi_and_plain_midi_give_one_answer(clf, bwv, tmp_path):
    kern = load_score(CORPUS / "bach" / f"{bwv}.krn")
    mxl = load_score(CORPUS / "bach" / f"{bwv}.mxl")
    write_midi(mxl, tmp_path / "piece.mid")
    midi = load_score(tmp_path / "piece.mid")
    answers = [answer(clf, s) for s in (kern, mxl, midi, plain_file(midi))]
    assert len({a[:3] for a in answers}) == 1, answers
    assert max(a[3] for a in answers) - min(a[3] for a in answers) < 0.1, answers


def test_abc_musicxml_and_midi_of_one_tune_give_one_answer(clf, tmp_path):
    abc = EXAMPLES / "jackson-over-the-water.abc"
    xml = tmp_path / "tune.musicxml"
    music21.converter.parse(abc).write("musicxml", fp=xml)
    write_midi(load_score(abc), tmp_path / "tune.mid")
    answers = [answer(clf, load_score(p)) for p in (abc, xml, tmp_path / "tune.mid")]
    assert len({a[:3] for a in answers}) == 1, answers
    assert answers[0][:3] == ("fiddle-tune", "G", "dorian")


@pytest.mark.parametrize("source", ["bach/bwv366.mxl", "bach/bwv281.mxl", "jig"])
def test_transposition_moves_the_tonic_and_keeps_style_and_mode(clf, source):
    path = EXAMPLES / "jackson-over-the-water.abc" if source == "jig" else CORPUS / source
    score = load_score(path)
    style, tonic, mode, _ = answer(clf, score)
    for k in range(-6, 6):
        if k == 0:
            continue
        got = answer(clf, transposed(score, k))
        assert got[0] == style and got[2] == mode, (k, got)
        assert pitch_class(got[1]) == (pitch_class(tonic) + k) % 12, (k, got, PITCH_CLASSES)
