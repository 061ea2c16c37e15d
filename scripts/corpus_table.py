"""Write the per-corpus tables of corpora/README.md from the built manifests.

    python scripts/corpus_table.py [--log build_all.log] [--readme corpora/README.md]

Replaces the text between `<!-- tables:start -->` and `<!-- tables:end -->` in the README (or
prints the tables with --print). `--log` is the output of `musicgpt corpus build ...`; its
"NAME: ... N s" lines give the build time per corpus.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

from musicgpt import corpus as corpora
from musicgpt.errors import MusicGPTError

START, END = "<!-- tables:start -->", "<!-- tables:end -->"


def _times(log: Path | None) -> dict[str, tuple[str, int]]:
    """corpus -> (seconds, skipped) from the CLI's summary lines."""
    if log is None:
        return {}
    out = {}
    pattern = r"^([\w.-]+): \d+ pieces in \d+ groups; \d+ files parsed, \d+ cached, (\d+) skipped; ([\d.]+) s"
    for m in re.finditer(pattern, log.read_text(encoding="utf-8"), re.M):
        out[m.group(1)] = (m.group(3), int(m.group(2)))
    return out


def _dist(rows: list[dict], field: str, source: str | None) -> str:
    """'ionian 209 (human 12, derived 197)'-style cells, most common first."""
    counts = Counter(r[field] for r in rows)
    cells = []
    for value, n in counts.most_common():
        if source:
            src = Counter(
                "human" if r[source] == "human" else (r[source] or "none")
                for r in rows if r[field] == value
            )
            how = ", ".join(f"{k} {v}" for k, v in src.most_common())
            cells.append(f"{value} {n} ({how})")
        else:
            cells.append(f"{value} {n}")
    return "; ".join(cells)


def tables(times: dict[str, tuple[str, int]]) -> str:
    lines = [
        "| corpus | pieces | groups | train | test | train share | notes | skipped | build s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    details = []
    total = Counter()
    for name in corpora.CORPORA:
        try:
            rows = corpora.load_manifest(name)
        except MusicGPTError:
            lines.append(f"| {name} | not built | | | | | | | |")
            continue
        info = corpora.info(name)
        secs, skipped = times.get(name, ("", ""))
        share = info["train"] / info["pieces"]
        lines.append(
            f"| {name} | {info['pieces']} | {info['groups']} | {info['train']} | {info['test']} "
            f"| {share:.1%} | {info['notes']} | {skipped} | {secs} |"
        )
        total.update({k: info[k] for k in ("pieces", "groups", "train", "test", "notes")})
        biggest = Counter(r["group"] for r in rows).most_common(1)[0]
        details += [
            f"### {name}",
            "",
            f"{corpora.CORPORA[name].description}.",
            "",
            "| field | distribution (label source) |",
            "|---|---|",
            f"| style | {_dist(rows, 'style', 'style_source')} |",
            f"| mode | {_dist(rows, 'mode', 'mode_source')} |",
            f"| tonic source | {_dist(rows, 'key_source', None)} |",
            f"| voices | {_dist(rows, 'voices', None)} |",
            f"| meter | {'; '.join(f'{k} {v}' for k, v in list(info['meter'].items())[:6])} |",
            f"| largest group | {biggest[0]} ({biggest[1]} pieces) |",
            "",
        ]
    if "all" in times:
        secs = times["all"][0]
    else:
        secs = ""
    lines.append(
        f"| **all** | {total['pieces']} | {total['groups']} | {total['train']} | {total['test']} "
        f"| {total['train'] / max(total['pieces'], 1):.1%} | {total['notes']} | | {secs} |"
    )
    return "\n".join(lines + [""] + details).rstrip() + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--log", type=Path, help="output of `musicgpt corpus build all`")
    ap.add_argument("--readme", type=Path, default=corpora.corpora_root() / "README.md")
    ap.add_argument("--print", action="store_true", help="print the tables instead of editing the README")
    args = ap.parse_args()
    times = _times(args.log)
    if args.log is not None:
        m = re.search(r"^all: \d+ pieces; ([\d.]+) s", args.log.read_text(encoding="utf-8"), re.M)
        if m:
            times["all"] = (m.group(1), 0)
    text = tables(times)
    if args.print:
        print(text, end="")
        return
    readme = args.readme.read_text(encoding="utf-8")
    if START not in readme or END not in readme:
        raise SystemExit(f"{args.readme}: no {START} ... {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    args.readme.write_text(f"{head}{START}\n{text}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    main()
