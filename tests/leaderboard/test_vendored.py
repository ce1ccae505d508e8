"""An exported Space carries every leaderboard module its app imports at load time (a Space has no harness;
the store-only code paths import the rest lazily)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "leaderboard"


def _leaderboard_imports(name: str) -> set[str]:
    found = set()
    for node in ast.parse((ROOT / name).read_text(encoding="utf-8")).body:  # module level
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("leaderboard"):
            found |= {f"{node.module.removeprefix('leaderboard.')}.py"} if node.module != "leaderboard" else {
                f"{alias.name}.py" for alias in node.names}
    return found


def test_every_module_the_vendored_display_imports_is_vendored_too():
    from leaderboard.space import VENDORED

    imported = set().union(*(_leaderboard_imports(name) for name in VENDORED if name != "__init__.py"))
    assert {"data.py", "plots.py", "method_table.py", "cite.py"} <= imported  # the check sees the imports
    assert imported <= set(VENDORED), sorted(imported - set(VENDORED))
