"""`musicgpt corpus ...`: list, build and inspect the named corpora."""

from __future__ import annotations

import argparse
import json
import os

from musicgpt.errors import MusicGPTError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("corpus", help="list, build and inspect the named corpora")
    csub = p.add_subparsers(dest="corpus_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    ls = csub.add_parser("list", help="the named corpora and whether they are built")
    ls.set_defaults(func=cmd_list)

    b = csub.add_parser(
        "build",
        help="build a named corpus (or all), or one from your own files with --from",
        description="Build MIDI + manifest under corpora/NAME. Unchanged sources are not parsed again.",
    )
    b.add_argument("name", nargs="?", help="a named corpus, or 'all'")
    b.add_argument("--from", dest="src", metavar="DIR",
                   help="build a corpus from MIDI/MusicXML/kern/ABC files in DIR")
    b.add_argument("--name", dest="new_name", metavar="NAME", help="name of the corpus built with --from")
    b.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                   help="label every piece built with --from: style=motet, mode=dorian (repeatable)")
    b.add_argument("--jobs", type=int, default=None, help=f"worker processes (default: {os.cpu_count()})")
    b.add_argument("--no-progress", action="store_true", help="no progress bar")
    b.set_defaults(func=cmd_build)

    i = csub.add_parser("info", help="pieces, groups, splits and labels of a built corpus")
    i.add_argument("name")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=cmd_info)


def _parse_labels(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise MusicGPTError(f"--label {item!r}: expected KEY=VALUE, e.g. --label style=motet")
        out[key.strip()] = value.strip()
    return out


def cmd_list(args: argparse.Namespace) -> int:
    from collections import Counter

    from musicgpt import corpus as corpora

    print(f"{'name':16} {'pieces':>7} {'built':>7}  {'styles':32} description")
    for name in corpora.names():
        try:
            rows = corpora.load_manifest(name)
        except MusicGPTError:
            rows = []
        # the manifest is committed; the MIDI files are the cache a build makes
        built = sum(corpora.midi_path(name, r).is_file() for r in rows)
        styles = ", ".join(s for s, _ in Counter(r["style"] for r in rows).most_common(3)) or "-"
        print(f"{name:16} {len(rows) or '-':>7} {built if rows else '-':>7}  {styles[:32]:32} "
              f"{corpora.get_recipe(name).description}")
    print(f"{'all':16} {'':>7} {'':>7}  {'':32} the union of the named corpora")
    print("labels per corpus: `musicgpt corpus info NAME`; build: `musicgpt corpus build NAME`")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from musicgpt import corpus as corpora

    if args.jobs is not None and args.jobs < 1:
        raise MusicGPTError("--jobs must be at least 1")
    progress = not args.no_progress
    if args.src:
        if args.name:
            raise MusicGPTError("give either NAME or --from DIR --name NAME, not both")
        if not args.new_name:
            raise MusicGPTError("--from DIR needs --name NAME for the new corpus")
        report = corpora.build_from(args.src, args.new_name, _parse_labels(args.label),
                                    jobs=args.jobs, progress=progress)
    else:
        if not args.name:
            raise MusicGPTError("name a corpus to build (see `musicgpt corpus list`), 'all', "
                                "or use --from DIR")
        if args.label or args.new_name:
            raise MusicGPTError("--label and --name go with --from DIR")
        report = corpora.build(args.name, jobs=args.jobs, progress=progress)
    for r in report.get("corpora", [report]):
        print(f"{r['corpus']}: {r['pieces']} pieces in {r['groups']} groups; "
              f"{r['built']} files parsed, {r['cached']} cached, {len(r['skipped'])} skipped; "
              f"{r['seconds']} s")
        for where, why in r["skipped"]:
            print(f"  skipped {where}: {why}")
    if "corpora" in report:
        print(f"all: {report['pieces']} pieces; {report['seconds']} s")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from musicgpt import corpus as corpora

    info = corpora.info(args.name)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    print(f"{info['corpus']}: {info['pieces']} pieces, {info['groups']} groups, "
          f"train {info['train']} / test {info['test']}, {info['notes']} notes")
    for field in ("style", "style_source", "mode", "mode_source", "voices", "meter"):
        print(f"  {field}: " + ", ".join(f"{k} {v}" for k, v in info[field].items()))
    return 0
