"""`musicgpt` command line. The only place that reads argv, prints for the user, or exits.

Each subcommand group lives in its own module with a `register(subparsers)` function; every
command function takes the parsed args and returns an exit code. Options that set a config field
are made from the field (musicgpt/cli/options.py). Nothing heavy (torch, miditok, music21) is
imported until a command runs, so `--help` is instant.

Library errors name parameters in backquotes (`bars`); each command shows them as its flags.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from musicgpt.cli.options import help_with_flags, name_flags
from musicgpt.errors import MusicGPTError


class Parser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line that says where help is (argparse's
    own print the whole usage block first); subcommand parsers are of this class too."""

    def error(self, message: str):  # noqa: D102 (argparse's signature)
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from musicgpt.cli import classify, corpus, evaluation, info, insight, lm, plot, render, serve
    from musicgpt.cli.options import subcommands

    parser = Parser(
        prog="musicgpt",
        description="A symbolic-music language model: continue a theme, classify a score, "
        "render it as audio, piano roll and score, build corpora from music21's bundled scores, "
        "train and evaluate models.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    corpus.register(sub)
    lm.register(sub)
    classify.register(sub)
    render.register(sub)
    info.register(sub)
    evaluation.register(sub)
    serve.register(sub)
    insight.register(sub)
    plot.register(sub)
    for sub_parser in subcommands(parser).values():  # -v after the command works too
        sub_parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                                help="log details to stderr")
    help_with_flags(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except MusicGPTError as exc:
        print(f"musicgpt: error: {name_flags(str(exc), args.param_flags)}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `musicgpt ... | head` closed the pipe: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:  # disk full, permission denied, ...: the system's words suffice
        logging.getLogger("musicgpt").info("where it failed (-v):", exc_info=True)
        where = f"{exc.filename}: " if exc.filename and str(exc.filename) not in str(exc) else ""
        print(f"musicgpt: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("musicgpt: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
