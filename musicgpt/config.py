"""Frozen configuration dataclasses, one per concern, saved as JSON beside checkpoints. Stdlib only."""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import math
from pathlib import Path
from typing import Any, TypeVar

from musicgpt.errors import MusicGPTError

T = TypeVar("T")


def shipped(name: str) -> Path:
    """A checkpoint shipped inside the installed package: musicgpt/weights/NAME."""
    return Path(str(importlib.resources.files("musicgpt") / "weights" / name))


# What one render will make: the audio buffer grows with the music's length (a 100,000 s note
# asked for 8 GiB) and music21's notation with its notes (50,000 took 209 s); `render` refuses
# more, and its --max-seconds / --max-notes raise the caps.
MAX_AUDIO_S = 3600.0
MAX_SCORE_NOTES = 20_000
SHIPPED_MODEL = "default.pt"  # the language model
# the shipped classifier: a body fine-tuned for style, with a key head fitted on it frozen
# (docs/classification.md); default.pt is the language model, with frozen-body heads
SHIPPED_CLASSIFIER = "classifier.pt"
# `classify` answers "unsure" for a question whose best calibrated probability is below this
# (docs/classification.md gives the accuracy of the answers above it on held-out collections)
UNSURE_BELOW = 0.5


def option(default: Any, help: str, **cli: Any) -> Any:
    """A field's default with its help text. `cli` holds hints for the command-line option made
    from the field (musicgpt.cli.options): flag (when it is not --field-name), choices, metavar,
    bounds (least, above, most), off_flag/off_help (a bool's opposite flag). A name written in
    backquotes, `like_this`, is a parameter: the CLI shows it as its flag."""
    return dataclasses.field(default=default, metadata={"help": help, **cli})


def out_of_bounds(value: float, meta: Any) -> str | None:
    """Why `value` breaks the bounds in a field's metadata ("is not above 0 and at most 1"),
    or None when it keeps them. NaN keeps none."""
    least, above, most = meta.get("least"), meta.get("above"), meta.get("most")
    ok = ((least is None or value >= least) and (above is None or value > above)
          and (most is None or value <= most) and not math.isnan(value))
    if ok:
        return None
    def num(v: float) -> str:
        return str(v) if isinstance(v, int) else f"{v:g}"

    words = [f"{num(least)} or more" if least is not None else "",
             f"above {num(above)}" if above is not None else "",
             f"at most {num(most)}" if most is not None else ""]
    return "is not " + " and ".join(w for w in words if w)


def check_bounds(cfg: Any) -> None:
    """Refuse a config whose fields break their metadata's bounds, naming the parameter."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        why = out_of_bounds(value, f.metadata) if numeric else None
        if why:
            raise MusicGPTError(f"`{f.name}` {value} {why}")

# MIDI programs given to voices, top voice first. MidiTok merges tracks that share a program, so
# each voice must keep its own; a short fixed list also keeps the token vocabulary small.
# Organ-family programs (16-23) sound like sustained voices when a chorale is played back.
VOICE_PROGRAMS: tuple[int, ...] = (16, 17, 18, 19, 20, 21, 22, 23)

# Audio sample rate of rendered WAVs, in Hz: plenty for organ-like partials of these pitches.
# Here, not in render/, so that `musicgpt render --help` shows it without importing numpy.
SAMPLE_RATE = 22050

# The clock's eight positions used for every mode label in the project.
MODES: tuple[str, ...] = (
    "ionian", "dorian", "phrygian", "lydian", "mixolydian", "aeolian", "locrian", "other",
)


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """How scores become tokens. REMI by default; TSD selectable."""

    kind: str = option("REMI", "MidiTok token scheme; continuation by bars needs REMI",
                       flag="--tokenizer", choices=("REMI", "TSD"))
    pitch_range: tuple[int, int] = (21, 109)
    # Positions per beat, by beat range. 12 per beat for the first beats keeps 16ths and triplets
    # on the grid (the default 8 moves 2-3% of folk-tune notes); longer notes need less.
    beat_res: tuple[tuple[int, int, int], ...] = ((0, 4, 12), (4, 12, 4))
    num_velocities: int = 1  # corpora carry no dynamics; one velocity saves tokens
    use_tempos: bool = False
    # Meters as (denominator, (numerators...)), MidiTok's time_signature_range. x/2 is included
    # so Palestrina's 4/2 survives; MidiTok's default has no x/2 meters.
    time_signatures: tuple[tuple[int, tuple[int, ...]], ...] = (
        (2, (2, 3, 4, 6, 8)), (4, (1, 2, 3, 4, 5, 6, 7, 8)), (8, (3, 6, 9, 12)),
    )
    programs: tuple[int, ...] = VOICE_PROGRAMS
    bpe_vocab_size: int = option(0, "learn MidiTok BPE up to this vocabulary size (0: off; "
                                 "BPE turns transposition off: lm_train_config)",
                                 flag="--bpe", metavar="VOCAB")
    # tonic and voices control tokens (since #14); tokenizers saved before had none (legacy)
    texture_controls: bool = option(True, "a control token per tonic and per number of voices, "
                                    "besides style and mode", off_flag="--no-texture-controls",
                                    off_help="style and mode control tokens only", legacy=False)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer. vocab_size comes from the tokenizer, never guessed."""

    vocab_size: int
    context: int = option(512, "tokens of context")
    n_layer: int = option(4, "transformer blocks", flag="--layers")
    n_head: int = option(4, "attention heads per block; must divide `d_model`", flag="--heads")
    d_model: int = option(256, "width of the hidden states")
    dropout: float = option(0.1, "dropout rate in training, on embeddings and residual branches")
    # On attention weights. Off by default: any value > 0 sends scaled_dot_product_attention to
    # its unfused path, which cost about a third of CPU training throughput (docs/benchmarks.md).
    attn_dropout: float = 0.0
    # rotary positions learn the bar and beat grid far sooner than a learned table (docs/
    # benchmarks.md); checkpoints saved before this field existed used the table (legacy)
    rope: bool = option(True, "rotary (relative) position encoding instead of a learned position table",
                        off_flag="--no-rope", off_help="a learned position table (GPT-2's), as in the "
                        "shipped model", legacy=False)
    n_style: int = 0  # classification heads; 0 = no head
    n_mode: int = 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation and evaluation settings for `musicgpt train`."""

    steps: int = option(2000, "optimiser steps in all")
    batch_size: int = option(16, "windows of `context` tokens per step")
    lr: float = option(1e-3, "peak learning rate (AdamW), reached after `warmup` steps, then "
                       "cosine decay to `min_lr`")
    # None: lr / 10, resolved when the config is made (so a saved config holds the number)
    min_lr: float | None = option(None, "learning rate at the end of the cosine decay; "
                                  "default `lr` / 10")
    warmup: int = option(100, "steps of linear warmup")
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = option(200, "steps between evaluations (each keeps best.pt if it is the best)")
    save_every: float = option(120.0, "seconds of training between saves of last.pt, besides those at "
                               "each evaluation, so a killed run resumes close to where it was; 0: only "
                               "at evaluations", least=0.0)
    eval_batches: int = option(20, "batches read per evaluation")
    log_every: int = 10
    seed: int = option(0, "random seed (weights, batches)")
    device: str = option("auto", "auto (a CUDA GPU when present), cpu or cuda")
    transpose: int = option(0, "random transposition up to this many semitones, kept within "
                            "each voice's range")
    control_drop: float = option(0.3, "chance of dropping each style/mode control token")
    # "packed" wastes no target slot and lets a window begin mid-bar, as every test window after
    # a piece's first does; "piece" is how the shipped model was trained (legacy)
    windows: str = option("packed", "training windows: piece (one piece from a bar line, padded "
                          "where it ends) or packed (cut anywhere from the pieces laid end to end, "
                          "each led by BOS and closed by EOS)", choices=("piece", "packed"),
                          legacy="piece")
    balance: float = option(0.5, "how often each corpus of a union (all) is drawn: in proportion "
                            "to its size to this power (1: as the data falls; 0: all equally)",
                            least=0.0, most=1.0, legacy=1.0)
    valid_share: float = option(0.1, "share of the train pieces, whole groups, held out for "
                                "validation: best.pt is chosen on it, never on test",
                                above=0.0, most=0.5)


    def __post_init__(self) -> None:
        if self.min_lr is None:  # the documented rule: the decay ends at a tenth of the peak
            object.__setattr__(self, "min_lr", self.lr / 10)


def lm_train_config(train: TrainConfig, tok: TokenizerConfig) -> TrainConfig:
    """`train` as used with `tok`: BPE merges pitch tokens with what follows them, so a shifted
    pitch would need ids that do not exist; a BPE tokenizer turns transposition off."""
    return dataclasses.replace(train, transpose=0) if tok.bpe_vocab_size else train


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """Sampling settings for `musicgpt continue`."""

    temperature: float = option(1.0, "sampling temperature, 0 to 100; 0 (or under 0.001) picks the "
                                "most likely token", least=0.0, most=100.0)
    top_k: int = option(0, "sample only from the K likeliest tokens; 0: off", least=0)
    top_p: float = option(0.95, "sample only from the likeliest tokens that together hold this "
                          "share of the probability, above 0 and at most 1; 1.0: off",
                          above=0.0, most=1.0)
    max_new_tokens: int = option(512, "most tokens sampled", least=1)
    # None: a new seed each time
    seed: int | None = option(0, "random seed, 0 to 2**63 - 1; the same seed repeats the result",
                              least=0, most=2**63 - 1)

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclasses.dataclass(frozen=True)
class ContinuationEvalConfig:
    """What `musicgpt evaluate-continuation` samples: headers, lengths, repeats."""

    pieces: int = option(20, "test pieces per corpus (the first, in a fixed order, that have "
                         "`header_bars` + `bars` bars)", least=1, most=2000)
    header_bars: int = option(4, "bars of each test piece given as the header", least=1, most=64)
    bars: int = option(4, "bars the model adds, compared with the piece's own next bars",
                       least=1, most=32)
    samples: int = option(1, "continuations per header", least=1, most=20)
    seed: int = option(0, "random seed of the samples")
    split: str = option("test", "where the headers come from: test, or valid (the validation carve "
                        "that `train --corpus` of this corpus holds out: tune sampling there, never "
                        "on test)", choices=("test", "valid"))
    infer_key: bool = option(True, "tell the model each header's inferred key as control tokens, "
                             "as `continue` does", off_flag="--no-infer-key",
                             off_help="no key tokens (to measure what the inferred key changes)")
    free: bool = option(False, "with --adherence: only tell the model the requested mode, as "
                        "`continue --free` does, instead of holding the notes to it")

    def __post_init__(self) -> None:
        check_bounds(self)


@dataclasses.dataclass(frozen=True)
class ClassifierTrainConfig:
    """Fine-tuning settings for `musicgpt train-classifier`."""

    steps: int = option(400, "fine-tuning steps (not with `freeze`)")
    batch_size: int = option(16, "crops per fine-tuning step (not with `freeze`)")
    lr: float = option(3e-4, "body learning rate, when the body is not frozen")
    head_lr: float = option(3e-3, "learning rate of the style and key heads")
    weight_decay: float = 0.01
    warmup: int = 20
    freeze: bool = option(False, "body frozen, heads fitted on its features (how the "
                          "weights/default.pt heads were made)",
                          off_flag="--unfreeze", off_help="fine-tune the body too")
    scratch: bool = option(False, "same network and steps from random weights (measures the "
                           "pre-training gain)")
    window: int = option(256, "tokens per training crop, BOS included")
    transpose: bool = option(True, "transposition augmentation (a random -6..+5 semitone shift "
                             "of pitch tokens, the tonic label moved with it)")
    derived_mode_weight: float = option(0.3, "loss weight of derived (not human) mode labels; "
                                        "0 ignores them")
    derived_style_weight: float = 1.0
    calib_fraction: float = 0.1  # train groups held out to fit the temperatures
    calib_max: int = 600  # at most this many of their pieces are scored (whole pieces are slow)
    probe_iters: int = option(700, "`freeze`: head updates (batches of `probe_batch`) on the "
                              "cached features")
    probe_batch: int = 256
    probe_passes: int = option(2, "`freeze`: passes over the pieces, each under a new random "
                               "transposition", flag="--passes")
    probe_per_style: int = option(250, "`freeze`: pieces per style, besides every piece with a "
                                  "human mode label", flag="--per-style")
    key_proj: int = 4  # numbers each pooled state is projected to in the key head
    key_hidden: int = 128
    key_dropout: float = 0.5
    keep_style_head: bool = option(False, "with `freeze` and a classifier as `init`: keep its "
                                   "style head (say, from fine-tuning) and fit only the key head "
                                   "on the frozen body")
    key_style_input: bool = option(True, "the key head reads the style head's probabilities, so "
                                   "that an ending can mean different things in a mass and in a "
                                   "fiddle tune")
    style_balance: str = option("style", "fine-tuning draws crops with weight count ** -0.5, "
                                "counting pieces per style or per (style, collection): palestrina, "
                                "trecento, oneills1850, ...", choices=("style", "style+source"))
    seed: int = option(0, "random seed (new heads, calibration hold-out, crops, transpositions)")
    device: str = option("auto", "auto (a CUDA GPU when present), cpu or cuda")


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _tuplify(value: Any) -> Any:
    """JSON turns tuples into lists; turn them back so frozen configs stay hashable and equal."""
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build `cls` from a dict, ignoring unknown keys so older files still load. A field missing
    from the dict takes its `legacy` value when it has one (what files saved before the field
    existed meant), else its default."""
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    names = {f.name for f in fields}
    legacy = {f.name: f.metadata["legacy"] for f in fields
              if "legacy" in f.metadata and f.name not in data}
    return cls(**legacy, **{k: _tuplify(v) for k, v in data.items() if k in names})


def dumps(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)
