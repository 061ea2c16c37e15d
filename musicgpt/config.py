"""Frozen configuration dataclasses, one per concern, saved as JSON beside checkpoints. Stdlib only."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

T = TypeVar("T")

# MIDI programs given to voices, top voice first. MidiTok merges tracks that share a program, so
# each voice must keep its own; a short fixed list also keeps the token vocabulary small.
# Organ-family programs (16-23) sound like sustained voices when a chorale is played back.
VOICE_PROGRAMS: tuple[int, ...] = (16, 17, 18, 19, 20, 21, 22, 23)

# The clock's eight positions used for every mode label in the project.
MODES: tuple[str, ...] = (
    "ionian", "dorian", "phrygian", "lydian", "mixolydian", "aeolian", "locrian", "other",
)


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
    """How scores become tokens. REMI by default; TSD selectable."""

    kind: str = "REMI"  # "REMI" or "TSD"
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
    bpe_vocab_size: int = 0  # 0: no BPE; otherwise MidiTok's BPE to this vocabulary size


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """A decoder-only transformer. vocab_size comes from the tokenizer, never guessed."""

    vocab_size: int
    context: int = 512
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 256
    dropout: float = 0.1  # on embeddings and residual branches
    # On attention weights. Off by default: any value > 0 sends scaled_dot_product_attention to
    # its unfused path, which cost about a third of CPU training throughput (docs/benchmarks.md).
    attn_dropout: float = 0.0
    n_style: int = 0  # classification heads; 0 = no head
    n_mode: int = 0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Optimisation and evaluation settings for `musicgpt train`."""

    steps: int = 2000
    batch_size: int = 16
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_every: int = 200
    eval_batches: int = 20
    log_every: int = 10
    seed: int = 0
    device: str = "auto"  # "auto" picks CUDA when present, else CPU
    transpose: int = 6  # augmentation: random shift in [-transpose, transpose] semitones
    control_drop: float = 0.3  # probability of dropping each control token during training


@dataclasses.dataclass(frozen=True)
class SampleConfig:
    """Sampling settings for `musicgpt continue`."""

    temperature: float = 1.0
    top_k: int = 0  # 0: off
    top_p: float = 0.95  # 1.0: off
    max_new_tokens: int = 512
    seed: int | None = None


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def _tuplify(value: Any) -> Any:
    """JSON turns tuples into lists; turn them back so frozen configs stay hashable and equal."""
    if isinstance(value, list):
        return tuple(_tuplify(v) for v in value)
    return value


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build `cls` from a dict, ignoring unknown keys so older files still load."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: _tuplify(v) for k, v in data.items() if k in names})


def dumps(cfg: Any) -> str:
    return json.dumps(to_dict(cfg), indent=2, sort_keys=True)
