"""musicgpt: a symbolic-music language model (continue a theme, classify style and mode)."""

__version__ = "0.1.0"
