"""The layers of DESIGN.md, read from the source: ``harness/`` has no import cycles and imports none of the
packages above it (``baselines``, ``mmedpo``, ``leaderboard``) except in the CLI commands that launch them.

The imports are read with ``ast`` (nothing is executed). Imports inside functions count: a lazy import
still couples two modules, it only moves the failure to run time. Imports under ``if TYPE_CHECKING:``
do not count (they exist for type checkers only).
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
UPPER_LAYERS = ("baselines", "mmedpo", "leaderboard")

# CLI commands exist to launch the layers above the library: these may import them.
LAUNCHERS = {
    "harness.cli.commands.leaderboard": {"leaderboard"},  # harness leaderboard: serves / exports the app
    "harness.cli.commands.submit": {"leaderboard"},  # harness submit: the leaderboard's submission queue
}

# Violations allowed for now: none. (The last two, package facades whose registry a submodule imported
# back, went when MODELS and METRICS moved into harness/models/registry.py and harness/metrics/registry.py.)
# A cycle would be listed as the set of modules in it, a layer violation as (importing module, package).
KNOWN_VIOLATIONS: set = set()


def module_names(root: Path, package: str) -> dict[str, Path]:
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


class _Imports(ast.NodeVisitor):
    def __init__(self, package: str):
        self.package = package  # the package relative imports start from
        self.names: list[str] = []

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else test.attr if isinstance(test, ast.Attribute) else ""
        if name == "TYPE_CHECKING":
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        self.names += [alias.name for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        # "from a.b import c": c may be a module (a.b.c) or a name in a.b; resolved against the module list
        self.names += [f"{module}.{alias.name}" for alias in node.names]


def import_graph(root: Path, package: str) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """(edges between the package's modules, (module, top-level package) for each import of an upper layer)."""
    modules = module_names(root, package)

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {}
    upper: set[tuple[str, str]] = set()
    for name, path in modules.items():
        visitor = _Imports(name if path.name == "__init__.py" else name.rpartition(".")[0])
        visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        edges[name] = set()
        for imported in visitor.names:
            top = imported.split(".")[0]
            if top == package:
                target = resolve(imported)
                if target and target != name:
                    edges[name].add(target)
            elif top in UPPER_LAYERS:
                upper.add((name, top))
    return edges, upper


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[frozenset[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(frozenset(component))
    return found


@functools.cache
def harness_graph() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    return import_graph(REPO, "harness")


def _describe(component: frozenset[str], edges: dict[str, set[str]]) -> str:
    links = sorted(f"{a} -> {b}" for a in component for b in edges[a] if b in component)
    return "; ".join(links)


def test_the_harness_has_no_new_import_cycles():
    edges, _ = harness_graph()
    assert "harness.core.options" in edges["harness.methods.base"]  # the walker sees real imports
    new = [c for c in cycles(edges) if c not in KNOWN_VIOLATIONS]
    assert not new, "import cycles in harness/: " + " | ".join(_describe(c, edges) for c in new)


def test_the_harness_imports_no_upper_layer_except_its_launchers():
    _, upper = harness_graph()
    new = sorted((module, top) for module, top in upper
                 if top not in LAUNCHERS.get(module, set()) and (module, top) not in KNOWN_VIOLATIONS)
    assert not new, f"harness/ modules import baselines/mmedpo/leaderboard (DESIGN.md layers): {new}"
    assert ("harness.cli.commands.leaderboard", "leaderboard") in upper  # the walker sees lazy imports


def test_known_violations_are_still_present():
    """A fixed violation must leave KNOWN_VIOLATIONS too, so the list only shrinks."""
    edges, upper = harness_graph()
    present = set(cycles(edges)) | upper
    assert not KNOWN_VIOLATIONS - present, f"fixed, remove from KNOWN_VIOLATIONS: {KNOWN_VIOLATIONS - present}"


def test_the_walker_finds_cycles_and_upper_imports(tmp_path):
    package = tmp_path / "harness"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from harness import b\n")
    (package / "b.py").write_text("def f():\n    from harness.sub.c import g\n")  # lazy imports count
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "c.py").write_text("from ..a import x\nimport mmedpo.curate\n")  # relative: harness.a
    (package / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from harness import e\n")
    (package / "e.py").write_text("from harness.d import y\n")  # d -> e is type-only: no cycle
    edges, upper = import_graph(tmp_path, "harness")
    assert cycles(edges) == [frozenset({"harness.a", "harness.b", "harness.sub.c"})]
    assert upper == {("harness.sub.c", "mmedpo")}
