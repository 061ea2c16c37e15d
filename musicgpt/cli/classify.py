"""`musicgpt classify` and `musicgpt evaluate-classifier` (placeholder)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    pass
