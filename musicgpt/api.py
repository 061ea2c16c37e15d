"""The public API's convenience functions (exported by musicgpt/__init__.py): continue a theme,
classify a file, render a file, in one call each, without building generators by hand.

Each is a thin layer over the library function it names; reach for that one for more control
(continuation.continue_score takes a Score and a torch.Generator; Classifier.classify_work
answers for several files that form one work).
"""

from __future__ import annotations

from pathlib import Path

import symusic
import torch

from musicgpt.classifier.classify import Classifier, load_classifier
from musicgpt.config import SAMPLE_RATE, SampleConfig
from musicgpt.continuation import Continuation, load_prompt
from musicgpt.continuation import continue_score as continue_prompt
from musicgpt.errors import MusicGPTError
from musicgpt.rendering import outputs
from musicgpt.rendering.outputs import KINDS
from musicgpt.scores import load_score
from musicgpt.tokens.tokenizer import MusicTokenizer


def continue_score(model: torch.nn.Module, tok: MusicTokenizer, prompt: str | Path, *,
                   bars: int | None = 4, sample: SampleConfig = SampleConfig(),
                   header_bars: int | None = None, style: str | None = None,
                   mode: str | None = None, voices: int | None = None,
                   key: str | None = None) -> Continuation:
    """Continue `prompt`, a score file or a note string such as "C4 D4 E4 F4 G4:h", by `bars`
    new bars (None: until `sample.max_new_tokens`). `header_bars` keeps only the prompt's first
    bars; `voices` N lets the continuation use N voices (default: the header's own); `key`
    names a tonic ("D", "F#", "Bb") for models with key controls (`musicgpt info`);
    `sample.seed` repeats a result (None: a new one each time)."""
    generator = torch.Generator()
    if sample.seed is None:
        generator.seed()
    else:
        generator.manual_seed(sample.seed)
    return continue_prompt(model, tok, load_prompt(str(prompt), header_bars), sample_cfg=sample,
                           bars=bars, style=style, mode=mode, voices=voices, tonic=key,
                           generator=generator)


def _score(score_or_path: symusic.Score | str | Path) -> symusic.Score:
    return score_or_path if isinstance(score_or_path, symusic.Score) else load_score(score_or_path)


def classify(score_or_path: symusic.Score | str | Path, classifier: Classifier | None = None,
             bars: int | None = None, top: int = 3) -> dict:
    """{"style": [[label, p], ...], "mode": ..., "tonic": ..., "key": ...}, the `top` likeliest
    of each. Without `classifier`, the shipped one is loaded (pass one to classify many files)."""
    clf = classifier or load_classifier()
    return clf.classify_score(_score(score_or_path), bars, top)


def render(score_or_path: symusic.Score | str | Path, stem: str | Path | None = None,
                 kinds: tuple[str, ...] = KINDS, sample_rate: int = SAMPLE_RATE) -> list[Path]:
    """Write STEM.wav (audio), STEM.png (piano roll) and STEM.musicxml (score); return their
    paths. A file's outputs go beside it unless `stem` says where."""
    if stem is None:
        if isinstance(score_or_path, symusic.Score):
            raise MusicGPTError("rendering a Score needs a `stem` for its output files")
        stem = Path(score_or_path).with_suffix("")
    return outputs.render(_score(score_or_path), stem, kinds, sample_rate)
