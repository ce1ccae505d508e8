"""The import graph of the harness, read from the source with ``ast`` (nothing is executed).

``tests/test_imports.py`` checks the layers with it; run as a script, it prints the figures the architecture is
judged by::

    python scripts/import_graph.py            # a table
    python scripts/import_graph.py --json

What counts as an import: ``import a.b``, ``from a import b`` (relative ones resolved), imports inside
functions (a lazy import still couples two modules), and lazy ``"module:attr"`` strings (registry entries,
launch targets), which name a module as surely as an import does. Imports under ``if TYPE_CHECKING:`` do not
count (they exist for type checkers only).

The figures:
- modules and packages ("rooms": the folders holding modules) of ``harness/``;
- package cycles and module cycles (strongly connected components of more than one);
- layers: the longest chain of packages in the package graph once cycles are folded into one node;
- the longest import chain of modules (from ``mmedpo.text`` too: MMedPO's curation walk), with how often it
  changes room, climbs back up to a shallower folder, and returns to a room it had left.
"""

from __future__ import annotations

import argparse
import ast
import functools
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "baselines", "mmedpo", "leaderboard")
LAZY = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+):[A-Za-z_][\w.]*$")


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
        self.lazy: list[str] = []

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

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and (match := LAZY.match(node.value)):
            self.lazy.append(match.group(1))


def read_imports(path: Path, package: str) -> tuple[list[str], list[str]]:
    """(imported names, lazy ``module:attr`` module names) of one file; ``package`` anchors relative imports."""
    visitor = _Imports(package)
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    return visitor.names, visitor.lazy


def import_graph(root: Path, package: str, *, lazy: bool = True,
                 upper_layers: tuple[str, ...] = ("baselines", "mmedpo", "leaderboard"),
                 ) -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    """(edges between the package's modules, (module, top-level package) for each import of an upper layer).

    With ``lazy``, a ``"module:attr"`` string is an edge like an import.
    """
    modules = module_names(root, package)

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {}
    upper: set[tuple[str, str]] = set()
    for name, path in modules.items():
        names, strings = read_imports(path, name if path.name == "__init__.py" else name.rpartition(".")[0])
        edges[name] = set()
        for imported in names + (strings if lazy else []):
            top = imported.split(".")[0]
            if top == package:
                target = resolve(imported)
                if target and target != name:
                    edges[name].add(target)
            elif top in upper_layers:
                upper.add((name, top))
    return edges, upper


def repo_graph(root: Path = REPO) -> dict[str, set[str]]:
    """Edges between the modules of all four packages (imports and lazy strings)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        modules.update(module_names(root, package))

    def resolve(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    edges: dict[str, set[str]] = {}
    for name, path in modules.items():
        names, strings = read_imports(path, name if path.name == "__init__.py" else name.rpartition(".")[0])
        edges[name] = {t for t in map(resolve, names + strings) if t and t != name}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one node (Tarjan, iterative)."""
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


def room(module: str, modules: set[str]) -> str:
    """The folder (package) holding a module: a package's ``__init__`` is in its own folder."""
    parts = module.split(".")
    if parts[-1] == "__main__":  # the entry point stands above its package's face
        return module
    is_package = any(other.startswith(module + ".") for other in modules)
    return module if is_package else ".".join(parts[:-1]) or parts[0]


def package_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    modules = set(edges)
    out: dict[str, set[str]] = {}
    for a, targets in edges.items():
        ra = room(a, modules)
        out.setdefault(ra, set())
        for b in targets:
            rb = room(b, modules)
            out.setdefault(rb, set())
            if rb != ra:
                out[ra].add(rb)
    return out


def _condensed(edges: dict[str, set[str]]) -> tuple[dict[str, str], dict[str, set[str]]]:
    component = {node: node for node in edges}
    for scc in cycles(edges):
        name = "{" + ",".join(sorted(scc)) + "}"
        for node in scc:
            component[node] = name
    dag: dict[str, set[str]] = {c: set() for c in component.values()}
    for a, targets in edges.items():
        for b in targets:
            if component[a] != component[b]:
                dag[component[a]].add(component[b])
    return component, dag


def longest_chain(edges: dict[str, set[str]], start: str | None = None) -> list[str]:
    """The longest import chain (cycles folded into one node) from ``start``, or anywhere."""
    component, dag = _condensed(edges)

    @functools.cache
    def best(node: str) -> tuple[str, ...]:
        tails = [best(child) for child in sorted(dag[node])]
        return (node,) + max(tails, key=len, default=())

    starts = [component[start]] if start else sorted(dag)
    return list(max((best(s) for s in starts), key=len))


def walk_figures(chain: list[str], modules: set[str]) -> dict:
    rooms = [room(m.strip("{}").split(",")[0], modules) for m in chain]
    changes = climbs = returns = 0
    left: set[str] = set()
    for before, after in zip(rooms, rooms[1:]):
        if after == before:
            continue
        changes += 1
        left.add(before)
        if after.count(".") < before.count("."):
            climbs += 1
        if after in left:
            returns += 1
    return {"length": len(chain), "rooms_entered": changes, "climbs_up": climbs, "returns": returns,
            "chain": chain}


def figures(root: Path = REPO) -> dict:
    edges, _ = import_graph(root, "harness")
    modules = set(edges)
    packages = package_edges(edges)
    _, package_dag = _condensed(packages)
    everything = repo_graph(root)
    curation_start = "mmedpo.text" if "mmedpo.text" in everything else None
    return {
        "modules": len(modules),
        "packages": len(packages),
        "top_level_modules": sum(1 for m in modules if m.count(".") == 1 and room(m, modules) == "harness"),
        "module_cycles": [sorted(c) for c in cycles(edges)],
        "package_cycles": [sorted(c) for c in cycles(packages)],
        "layers": len(longest_chain(package_dag)),
        "longest_chain": walk_figures(longest_chain(edges), modules),
        "mmedpo_curation_walk": (walk_figures(longest_chain(everything, curation_start), set(everything))
                                 if curation_start else None),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="the checkout to read (default: this one)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    out = figures(args.root)
    if args.json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    lines = [f"{key:<22} {out[key]}" for key in ("modules", "packages", "top_level_modules", "layers")]
    for key in ("module_cycles", "package_cycles"):
        lines.append(f"{key:<22} {len(out[key])}: " + "; ".join(" <-> ".join(c) for c in out[key]))
    for key in ("longest_chain", "mmedpo_curation_walk"):
        if walk := out[key]:
            lines.append(f"{key:<22} {walk['length']} modules, {walk['rooms_entered']} room changes, "
                         f"{walk['climbs_up']} climbs up, {walk['returns']} returns")
            lines.append("    " + " -> ".join(walk["chain"]))
    sys.stdout.write("\n".join(lines) + "\n")

if __name__ == "__main__":
    main()
