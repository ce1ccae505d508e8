"""The layers of DESIGN.md and docs/architecture.md, read from the source with ``scripts/import_graph.py``'s walker
(nothing is executed):

- no module cycle, and no package cycle but the CLI's own (``harness.cli`` <-> ``harness.cli.commands``);
- the packages of ``harness/`` in one declared order (``LAYERS``), no import from a lower package to a higher one;
- ``harness/`` imports none of the packages above it (``baselines``, ``mmedpo``, ``leaderboard``) except in the
  CLI commands that launch them;
- no module of ``harness/`` but those launchers names a method of ``baselines/`` or ``mmedpo/``.

What counts as an import is the walker's: ``import``/``from`` anywhere (a lazy import inside a function still
couples two modules, it only moves the failure to run time) and lazy ``"module:attr"`` strings (registry
entries, launch targets); not imports under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
import sys
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]


def _load_walker():
    spec = importlib.util.spec_from_file_location("_import_graph", REPO / "scripts" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclass-free, but keep it findable like an imported module
    spec.loader.exec_module(module)
    return module


walker = _load_walker()
import_graph, cycles, package_edges = walker.import_graph, walker.cycles, walker.package_edges

UPPER_LAYERS = ("baselines", "mmedpo", "leaderboard")

# CLI commands exist to launch the layers above the library: these may import them (and name methods).
LAUNCHERS = {
    "harness.cli.commands.leaderboard": {"leaderboard"},  # harness leaderboard: serves / exports the app
    "harness.cli.commands.submit": {"leaderboard"},  # harness submit: the leaderboard's submission queue
}

# The packages of harness/, lowest first: a module imports only its own package and those before it. The package
# face (harness/__init__.py: the version) is the floor; python -m harness (harness/__main__.py) the roof.
# harness.findings (the one reader of findings from text, over harness.core) may be absent.
LAYERS = (
    "harness",
    "harness.core",
    "harness.findings",
    "harness.stats",
    "harness.tasks",
    "harness.metrics",
    "harness.models",
    "harness.curation",
    "harness.methods",
    "harness.training",
    "harness.results",
    "harness.evaluation",
    "harness.regress",
    "harness.experiments",
    "harness.lmeval",
    "harness.cli",
    "harness.__main__",
)

# The one package cycle allowed: the CLI's face dispatches to its commands, which use the face's helpers.
ALLOWED_PACKAGE_CYCLES = {frozenset({"harness.cli", "harness.cli.commands"})}

# Violations allowed for now: none. A cycle would be listed as the set of modules in it, a layer violation as
# (importing module, imported module), an upper-layer import as (module, package), a method named as (module, name).
KNOWN_VIOLATIONS: set = set()


@functools.cache
def harness_graph() -> tuple[dict[str, set[str]], set[tuple[str, str]]]:
    return import_graph(REPO, "harness", upper_layers=UPPER_LAYERS)


def layer_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def _describe(component: frozenset[str], edges: dict[str, set[str]]) -> str:
    links = sorted(f"{a} -> {b}" for a in component for b in edges[a] if b in component)
    return "; ".join(links)


def layer_violations(edges: dict[str, set[str]]) -> set[tuple[str, str]]:
    rank = {name: i for i, name in enumerate(LAYERS)}
    unplaced = sorted({layer_of(m) for m in edges} - set(rank))
    assert not unplaced, f"packages missing from LAYERS (place them in the order): {unplaced}"
    return {(a, b) for a, targets in edges.items() for b in targets if rank[layer_of(b)] > rank[layer_of(a)]}


# ---- the method names: those of the harness.methods entry points that live above harness/ ----

def method_names(pyproject: Path = REPO / "pyproject.toml") -> set[str]:
    """The built-in methods defined in baselines/ and mmedpo/ (harness's own SFT is the method layer's)."""
    declared = tomllib.loads(pyproject.read_text())["project"]["entry-points"]["harness.methods"]
    return {name for name, target in declared.items() if target.split(".")[0] in UPPER_LAYERS}


@functools.cache
def _word_runs(identifier: str) -> frozenset[str]:
    """Every run of consecutive words of an identifier, joined, over its snake_case and CamelCase splits: a
    method is named when one run is its name (``dpo_loss``, ``MMedPOHelper``, ``RobustDPO``)."""
    camel = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", identifier)]
    runs = set()
    for words in (identifier.lower().split("_"), camel):
        runs |= {"".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
    return frozenset(runs)


_ENTRY_LIST = re.compile(r"[\w.,\[\]=+-]+")  # "dpo", "base,dpo,mmedpo[beta=0.5]": code, not prose


def methods_named(source: str, methods: set[str]) -> set[str]:
    """The methods a module names in code: a string that is a method name or a list of method entries, or an
    identifier with a method's name as a word. Prose (docstrings, help and error text, comments) is not code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        identifiers: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and _ENTRY_LIST.fullmatch(node.value):
            words = [w.lower() for w in re.findall(r"[A-Za-z_]\w*", node.value)]
            found |= {m for m in methods if m in words}
        elif isinstance(node, ast.Name):
            identifiers = [node.id]
        elif isinstance(node, ast.Attribute):
            identifiers = [node.attr]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            identifiers = [node.name]
        elif isinstance(node, ast.arg):
            identifiers = [node.arg]
        elif isinstance(node, ast.keyword) and node.arg:
            identifiers = [node.arg]
        elif isinstance(node, ast.alias):
            identifiers = [(node.asname or node.name).split(".")[-1]]
        for identifier in identifiers:
            runs = _word_runs(identifier)
            found |= {m for m in methods if m.replace("_", "") in runs}
    return found


@functools.cache
def harness_methods_named() -> set[tuple[str, str]]:
    methods = method_names()
    out = set()
    for module, path in walker.module_names(REPO, "harness").items():
        if module not in LAUNCHERS:
            out |= {(module, m) for m in methods_named(path.read_text(encoding="utf-8"), methods)}
    return out


# ---- the tests ----

def test_the_harness_has_no_import_cycles():
    edges, _ = harness_graph()
    assert "harness.core.options" in edges["harness.methods.base"]  # the walker sees real imports
    assert "harness.tasks.vqa_rad" in edges["harness.tasks.registry"]  # ... and lazy "module:attr" strings
    new = [c for c in cycles(edges) if c not in KNOWN_VIOLATIONS]
    assert not new, "import cycles in harness/: " + " | ".join(_describe(c, edges) for c in new)


def test_no_package_cycle_but_the_clis():
    edges, _ = harness_graph()
    packages = package_edges(edges)
    new = [c for c in cycles(packages) if c not in ALLOWED_PACKAGE_CYCLES | KNOWN_VIOLATIONS]
    assert not new, "package cycles in harness/: " + " | ".join(_describe(c, packages) for c in new)


def test_no_package_imports_a_higher_one():
    edges, _ = harness_graph()
    new = sorted(layer_violations(edges) - KNOWN_VIOLATIONS)
    assert not new, "imports from a lower package to a higher one (LAYERS): " + "; ".join(
        f"{a} -> {b}" for a, b in new)


def test_the_harness_imports_no_upper_layer_except_its_launchers():
    _, upper = harness_graph()
    new = sorted((module, top) for module, top in upper
                 if top not in LAUNCHERS.get(module, set()) and (module, top) not in KNOWN_VIOLATIONS)
    assert not new, f"harness/ modules import baselines/mmedpo/leaderboard (DESIGN.md layers): {new}"
    assert ("harness.cli.commands.leaderboard", "leaderboard") in upper  # the walker sees lazy imports


def test_no_module_below_the_methods_names_one():
    methods = method_names()
    assert {"dpo", "mmedpo", "povid", "simpo", "fisao"} <= methods and "sft" not in methods
    new = sorted(harness_methods_named() - KNOWN_VIOLATIONS)
    assert not new, ("harness/ names methods (they belong to baselines/ and mmedpo/; defaults come from entry "
                     f"points, e.g. harness.reference_method): {new}")


def test_known_violations_are_still_present():
    """A fixed violation must leave KNOWN_VIOLATIONS too, so the list only shrinks."""
    edges, upper = harness_graph()
    present = set(cycles(edges)) | set(cycles(package_edges(edges))) | upper | layer_violations(edges)
    present |= harness_methods_named()
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
    edges, upper = import_graph(tmp_path, "harness", upper_layers=UPPER_LAYERS)
    assert cycles(edges) == [frozenset({"harness.a", "harness.b", "harness.sub.c"})]
    assert upper == {("harness.sub.c", "mmedpo")}


def test_the_walker_counts_lazy_module_attr_strings(tmp_path):
    package = tmp_path / "harness"
    (package / "low").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "low" / "__init__.py").write_text("")
    (package / "low" / "registry.py").write_text(
        'REG.register_lazy("x", "harness.high:THING")\n'  # a registry entry pointing up: an edge
        'LAUNCH = "mmedpo.curate:main"\n'  # a launch target in an upper layer
        'TEXT = "see harness.high: it builds THING"\n')  # prose, not a module:attr string
    (package / "high.py").write_text("from harness.low import registry\nTHING = 1\n")
    edges, upper = import_graph(tmp_path, "harness", upper_layers=UPPER_LAYERS)
    assert edges["harness.low.registry"] == {"harness.high"}
    assert cycles(edges) == [frozenset({"harness.low.registry", "harness.high"})]
    assert upper == {("harness.low.registry", "mmedpo")}
    without, _ = import_graph(tmp_path, "harness", lazy=False, upper_layers=UPPER_LAYERS)
    assert without["harness.low.registry"] == set()  # the strings were the only edge


def test_a_lower_package_importing_a_higher_one_is_found():
    edges = {"harness.stats.items": {"harness.metrics.clinical", "harness.core.errors"},
             "harness.metrics.clinical": {"harness.stats.intervals"}, "harness.stats.intervals": set(),
             "harness.core.errors": set()}
    assert layer_violations(edges) == {("harness.stats.items", "harness.metrics.clinical")}


def test_the_method_scan_finds_code_and_leaves_prose(tmp_path):
    methods = {"dpo", "mmedpo", "self_rewarding", "simpo"}
    code = '''"""Compare with DPO or mmedpo: prose."""
REFERENCE = "dpo"
ENTRIES = "base,simpo[beta=2]"
def weights_for_self_rewarding(x):
    raise ValueError("needs --methods (e.g. base,dpo)")
class MMedPOHelper:
    pass
'''
    assert methods_named(code, methods) == {"dpo", "simpo", "self_rewarding", "mmedpo"}
    assert methods_named('"""DPO, SimPO."""\nx = "the dpo loss"\n# dpo\nadopt = 1\n', methods) == set()


def test_every_package_says_what_it_is_in_one_line():
    """Each package's docstring opens with a one-line summary (a sentence of its own, then a blank line)."""
    bad = []
    for init in sorted(REPO.glob("*/**/__init__.py")):
        if init.parts[len(REPO.parts)] not in ("harness", "baselines", "mmedpo", "leaderboard"):
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        lines = (doc or "").splitlines()
        if not lines or not lines[0].rstrip().endswith((".", ")")) or (len(lines) > 1 and lines[1].strip()):
            bad.append(str(init.relative_to(REPO)))
    assert not bad, f"packages without a one-line summary docstring: {bad}"
