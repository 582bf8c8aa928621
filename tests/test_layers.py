"""The package's import graph points one way (docs: ARCHITECTURE "Layers point one way") and has no cycle.

The graph is read from the source with ``ast``: every ``import`` in every module, including imports inside
functions (a lazy import is still a dependency). Each top-level part of the package sits on a layer; an import
may point to its own layer or a lower one. A part that no layer names sits just above the highest layer it
imports, so a new helper module needs no entry here and is still checked.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "streamfuse"

# color/errors -> config -> wire/transport -> sync, sources -> runtime, models -> engines -> nodes -> transcode/batch
# -> cli; data, train and evaluation sit beside engines' users: nothing in engines or below imports them.
# The package's __init__ (the public facade) and helper modules are placed by what they import.
LAYERS: list[set[str]] = [
    {"color", "errors"},
    {"config"},
    {"wire", "transport"},
    {"sync", "sources"},
    {"runtime", "models"},
    {"engines"},
    {"data", "train", "evaluation", "nodes"},
    {"transcode", "batch"},
    {"cli", "__main__"},
]
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _typing_only(tree: ast.AST) -> set[int]:
    """Ids of the import statements under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    guarded = [n for n in ast.walk(tree) if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)]
    return {id(n) for g in guarded for body in g.body for n in ast.walk(body)}


def _resolve(name: str) -> str | None:
    """The streamfuse module an import name refers to (a name inside a module resolves to the module)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports_of(module: str) -> frozenset[str]:
    """Every streamfuse module that ``module`` imports."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(), str(path))
    skip = _typing_only(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Import, ast.ImportFrom)) or id(node) in skip:
            continue
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for name in names:
            target = _resolve(name) if name.startswith("streamfuse") else None
            if target and target != module:
                found.add(target)
    return frozenset(found)


def part_of(module: str) -> str:
    """The top-level part of the package a module belongs to (``streamfuse.runtime.onnxruntime`` -> ``runtime``)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def part_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module in MODULES:
        graph[part_of(module)] |= {part_of(t) for t in imports_of(module)} - {part_of(module)}
    return graph


def ranks() -> dict[str, float]:
    """The layer of every part: named ones from LAYERS, others just above the highest part they import."""
    graph = part_graph()
    placed: dict[str, float] = dict(RANK)

    def place(part: str, seen: tuple[str, ...] = ()) -> float:
        if part not in placed:
            below = [place(t, (*seen, part)) for t in graph[part] if t not in seen]
            placed[part] = max(below, default=-1) + 0.5
        return placed[part]

    for part in graph:
        place(part)
    return placed


def test_every_import_points_down_or_sideways() -> None:
    rank = ranks()
    upward = sorted(
        f"{module} imports {target} ({part_of(module)} is below {part_of(target)})"
        for module in MODULES
        for target in imports_of(module)
        if rank[part_of(target)] > rank[part_of(module)]
    )
    assert not upward, "upward imports:\n" + "\n".join(upward)


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycle_between_parts_or_modules() -> None:
    parts = _find_cycle(part_graph())
    assert parts is None, "import cycle between parts of the package: " + " -> ".join(parts)
    modules = _find_cycle({m: set(imports_of(m)) for m in MODULES})
    assert modules is None, "import cycle between modules: " + " -> ".join(modules)


def test_the_checker_sees_an_upward_and_a_lazy_import() -> None:
    """The graph is real: known edges are found, including one written inside a function."""
    assert "streamfuse.config.schema" in imports_of("streamfuse.sync")
    assert any(t.startswith("streamfuse.nodes") for t in imports_of("streamfuse.cli"))  # lazy, inside a function
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
