"""Command-line options made from the config dataclasses' fields, so a default or a help text is
written once, beside its field in musicgpt/config.py.

A field `batch_size` becomes `--batch-size` (or its metadata's `flag`) with the field's type,
default, help, choices and bounds. A bool field that is off by default becomes a switch that turns
it on; one that is on becomes `--no-NAME`. Names in backquotes in a help text or an error message,
`like_this`, are parameters; `flags_of` and `name_flags` show them as the command's flags.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import typing
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from musicgpt.config import out_of_bounds

T = TypeVar("T")
_PARAM = re.compile(r"`([a-z_][a-z0-9_]*)`")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default after its help, unless there is nothing worth showing (a flag
    that is off, an option that is unset) or the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        switch = action.nargs == 0  # a store_true/store_false flag: its help says what it does
        unset = switch or action.default in (None, False, argparse.SUPPRESS)
        if unset or "default" in text:
            return text
        return super()._get_help_string(action)


def whole_number(least: int, meaning: str):
    """An argparse type: a whole number of at least `least`; `meaning` says why, in the error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{text} is below {least} ({meaning})")
        return value

    return parse


def probability(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability (0 to 1)")
    return value


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def _scalar(cls: type, f: dataclasses.Field) -> type:
    """The field's type without `| None` (annotations are strings under `from __future__`)."""
    hint = typing.get_type_hints(cls)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def _typed(kind: type, meta: Any) -> Callable[[str], Any]:
    """An argparse type: a number of `kind` inside the field's bounds; finite, for floats."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            word = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{text!r} is not {word}") from None
        if kind is float and math.isinf(value):
            raise argparse.ArgumentTypeError(f"{text} is not a finite number")
        why = out_of_bounds(value, meta)
        if why:
            raise argparse.ArgumentTypeError(f"{text} {why}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value" messages
    return parse


def add_options(parser: argparse._ActionsContainer, cls: type, names: Iterable[str]) -> None:
    """One option per named field of `cls`, dest = the field's name."""
    fields = _fields(cls)
    for name in names:
        f = fields[name]
        meta = f.metadata
        flag = meta.get("flag") or "--" + name.replace("_", "-")
        kind = _scalar(cls, f)
        if kind is bool:
            _add_switch(parser, name, flag, f.default, meta)
            continue
        extra = {k: meta[k] for k in ("choices", "metavar") if k in meta}
        if "choices" not in extra:  # with choices, argparse lists them instead
            extra.setdefault("metavar", flag[2:].upper().replace("-", "_"))
        if kind in (int, float):
            extra["type"] = _typed(kind, meta)
        parser.add_argument(flag, dest=name, default=f.default, help=meta["help"], **extra)


def _add_switch(parser: argparse._ActionsContainer, name: str, flag: str, default: bool,
                meta: Any) -> None:
    off = meta.get("off_flag")
    if off:  # both ways are spelt out; they share one dest, so say in words which is the default
        group = parser.add_mutually_exclusive_group()
        group.add_argument(flag, dest=name, action="store_true",
                           help=meta["help"] + (" (the default)" if default else ""))
        group.add_argument(off, dest=name, action="store_false",
                           help=meta.get("off_help", "not " + flag) + ("" if default else " (the default)"))
        parser.set_defaults(**{name: default})
    elif default:
        parser.add_argument("--no-" + flag[2:], dest=name, action="store_false",
                            help="turn off: " + meta["help"])
    else:
        parser.add_argument(flag, dest=name, action="store_true", help=meta["help"])


def config_from(args: argparse.Namespace, cls: type[T], names: Iterable[str], **fixed: Any) -> T:
    """`cls` from the parsed options `names` (and `fixed` values); other fields keep their defaults."""
    return cls(**{name: getattr(args, name) for name in names}, **fixed)


def flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Parameter name (dest) -> the flag that sets it, for one command."""
    flags: dict[str, str] = {}
    for action in parser._actions:
        if action.option_strings and action.dest not in flags:
            flags[action.dest] = max(action.option_strings, key=len)
    return flags


def name_flags(text: str, flags: dict[str, str]) -> str:
    """`param` -> --flag where the command has one; other parameters keep their name."""
    return _PARAM.sub(lambda m: flags.get(m.group(1), m.group(1)), text)


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser, nested ones too ("corpus build"), keyed by its words."""
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for word, sub in action.choices.items():
                found[word] = sub
                found.update({f"{word} {k}": v for k, v in subcommands(sub).items()})
    return found


def help_with_flags(parser: argparse.ArgumentParser) -> None:
    """Write each option's help in the command's own terms (parameters become flags), and give
    each command its map as `args.param_flags`, for its error messages."""
    for sub in [parser, *subcommands(parser).values()]:
        flags = flags_of(sub)
        sub.set_defaults(param_flags=flags)
        for action in sub._actions:
            if action.help and action.help is not argparse.SUPPRESS:
                action.help = name_flags(action.help, flags)
