"""The layout is the architecture: no import cycle anywhere in harness/, and the pure
layers (protocol, history, checker, latency histograms) import no client or I/O.

The import graph is computed from the source, so a cycle hidden in a function-level
import counts as well; imports under ``if TYPE_CHECKING:`` are for type checkers only
and never run, so they do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from probe import loaded_by

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "harness"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, known: set[str]) -> set[str]:
    """The harness modules ``path`` imports when it runs, at any depth of its code."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            if isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names if alias.name in known)
            elif isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                for alias in child.names:
                    submodule = f"{child.module}.{alias.name}"
                    found.add(submodule if submodule in known else child.module)
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found & known


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    known = set(paths)
    return {name: imported_modules(path, known) - {name} for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    done: set[str] = set()
    trail: list[str] = []
    on_trail: set[str] = set()

    def walk(module: str) -> list[str] | None:
        trail.append(module)
        on_trail.add(module)
        for target in sorted(graph[module]):
            if target in on_trail:
                return [*trail[trail.index(target) :], target]
            if target not in done:
                cycle = walk(target)
                if cycle:
                    return cycle
        trail.pop()
        on_trail.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        if module not in done:
            cycle = walk(module)
            if cycle:
                return cycle
    return None


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    assert len(graph) > 50  # the walk found the package
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    # Guards the test above against passing vacuously.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_a_function_level_import_is_an_edge(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from harness.x import A\n"
        "def f():\n    from harness.y import b\n"
    )
    assert imported_modules(source, {"harness.x", "harness.y"}) == {"harness.y"}


@pytest.mark.parametrize(
    "module, forbidden",
    [
        ("harness.checker", ("harness.client", "asyncio", "websockets", "gevent", "locust")),
        ("harness.history.reader", ("harness.client", "websockets", "gevent", "locust")),
        ("harness.latency.histograms", ("harness.client", "websockets", "gevent", "locust")),
        ("harness.latency.thresholds", ("harness.client", "websockets", "gevent", "locust")),
    ],
)
def test_pure_layers_import_no_client_and_no_io(module: str, forbidden: tuple[str, ...]) -> None:
    assert loaded_by(module, forbidden) == [], f"{module} pulls in client or I/O modules"
