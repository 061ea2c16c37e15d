"""`musicgpt corpus ...` commands (placeholder until the corpora module lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("corpus", help="list, build and inspect the named corpora")
