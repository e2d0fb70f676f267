"""The package's import graph runs one way: no cycles, and nothing below the trainer imports it.

Imports are read from the source (AST), including those inside functions, so a deferred import
cannot hide a cycle. `from pkg import name` counts as an import of `pkg.name` when that is a
module, else of `pkg`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import condgan

ROOT = Path(condgan.__file__).parent
# Layers that must never reach up into the trainer (DESIGN.md: stylegan2-ada's metrics never import training/).
BELOW_TRAINER = ("condgan.metrics", "condgan.report", "condgan.data", "condgan.nets", "condgan.methods",
                 "condgan.samples", "condgan.run", "condgan.io", "condgan.config", "condgan.dist")


def _module_name(path: Path) -> str:
    parts = ("condgan",) + path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in ROOT.rglob("*.py")}


def _imports(name: str, path: Path) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] == "condgan")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.split(".")[0] != "condgan":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in MODULES else base)
    return {m for m in out if m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as a list of nodes, or None (depth-first search, colours)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _unit(module: str) -> str:
    """The package-level unit of a module: condgan.metrics.fid → condgan.metrics, condgan.cli → itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_cycle_between_modules() -> None:
    assert _cycle(GRAPH) is None, " → ".join(_cycle(GRAPH) or [])


def test_no_import_cycle_between_packages() -> None:
    units: dict[str, set[str]] = {}
    for name, deps in GRAPH.items():
        units.setdefault(_unit(name), set()).update(_unit(d) for d in deps if _unit(d) != _unit(name))
    assert _cycle(units) is None, " → ".join(_cycle(units) or [])


def test_nothing_below_the_trainer_imports_it() -> None:
    bad = sorted(f"{name} imports {dep}" for name, deps in GRAPH.items() for dep in deps
                 if name.startswith(BELOW_TRAINER) and dep.startswith("condgan.training"))
    assert not bad, bad


def test_the_checker_sees_a_planted_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
