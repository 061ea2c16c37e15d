"""The layout stays what docs/design.md says: imports flow one way, modules stay small, and the
model and the sampler know no music. Read from the source with ast, so nothing is imported."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "musicgpt"
MAX_LINES = 400
# Modules allowed over MAX_LINES, each with the reason it is not split.
LONG_MODULES: dict[str, str] = {}
# The model and the sampler are plain torch: they may import torch, the standard library and these.
PURE = {"musicgpt.model", "musicgpt.sampling"}
PURE_MAY_IMPORT = {"musicgpt.config", "musicgpt.errors", "musicgpt.model"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imported_names(name: str) -> set[str]:
    """Every module NAME imports, at module level, in functions or under TYPE_CHECKING alike.

    `from musicgpt.tokens import tokenizer` names the submodule musicgpt.tokens.tokenizer;
    `from musicgpt.tokens import Tokenizer` names the package musicgpt.tokens.
    """
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: strip one package per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return found


def internal_graph() -> dict[str, set[str]]:
    return {name: {m for m in imported_names(name) if m in MODULES and m != name} for name in MODULES}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_musicgpt_modules():
    found = cycles(internal_graph())
    assert found == [], "modules that import each other, directly or through others:\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES and name not in LONG_MODULES}
    assert long == {}, f"split these modules or list them in LONG_MODULES with a reason: {long}"


def test_the_model_and_the_sampler_import_only_torch_the_stdlib_config_and_errors():
    for name in sorted(PURE):
        outside = {m for m in imported_names(name)
                   if m.split(".")[0] not in {"torch", "__future__", *sys.stdlib_module_names}
                   and m not in PURE_MAY_IMPORT}
        assert outside == set(), f"{name} imports {sorted(outside)}"
