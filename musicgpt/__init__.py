"""musicgpt: a symbolic-music language model (continue a theme, classify style and mode).

    from musicgpt import load_model, continue_score, write_midi
    model, tok, meta = load_model()  # the shipped model
    write_midi(continue_score(model, tok, "C4 D4 E4 F4 G4:h").score, "theme.mid")

The names below are imported on first use (PEP 562), so `import musicgpt` (and the CLI's
`--help`) loads no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module that defines it
_HOMES = {
    "load_model": "musicgpt.lm",
    "load_classifier": "musicgpt.classifier.classify",
    "load_score": "musicgpt.scores",
    "write_midi": "musicgpt.scores",
    "continue_score": "musicgpt.api",
    "classify": "musicgpt.api",
    "render": "musicgpt.api",
    "SampleConfig": "musicgpt.config",
    "MusicGPTError": "musicgpt.errors",
}
__all__ = list(_HOMES)


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'musicgpt' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # found once; later lookups are plain attributes
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
