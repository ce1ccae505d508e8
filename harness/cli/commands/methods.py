"""``harness methods``: list the registered preference-optimization methods with their citations.

Built-in methods and those of installed plugins (the ``harness.methods`` entry-point group) are listed the
same way. Reading a method's class attributes imports its module but not torch (losses import it lazily);
a method that cannot be loaded still gets a row, with the one-line reason in its ``note``.
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.common import add_format_option, emit
from harness.errors import HarnessError

COLUMNS = ("name", "pair_kinds", "reference_free", "defaults", "pair_builder", "origin", "citation", "note")
BUILT_IN_PACKAGES = ("baselines", "mmedpo", "harness")


def method_rows() -> list[dict[str, Any]]:
    """One row per registered method, in name order; never raises for a single bad method."""
    from harness.methods import METHODS

    rows = []
    for name in METHODS.names():
        row: dict[str, Any] = {"name": name, "pair_kinds": None, "reference_free": None, "defaults": None,
                               "pair_builder": None, "origin": None, "citation": None, "note": ""}
        try:
            cls = METHODS.get(name)
            row.update({k: v for k, v in cls.describe().items() if k in row and k != "name"})
            package = cls.__module__.split(".")[0]
            row["origin"] = "built-in" if package in BUILT_IN_PACKAGES else f"plugin ({package})"
            if cls.name != name:
                row["note"] = f"registered as '{name}' but its class says '{cls.name}'"
        except HarnessError as exc:
            row["note"] = f"error: {exc}"
        rows.append(row)
    return rows


def handler(args: argparse.Namespace) -> int:
    rows = method_rows()
    columns = [c for c in COLUMNS if c != "note" or any(r["note"] for r in rows)]
    emit(rows, args.format, columns)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "methods",
        help="list the preference-optimization methods (pair kinds, defaults, citation), plugins included",
        description="List registered methods, built-in and from plugins. Example: harness methods --format json",
    )
    add_format_option(parser)
    parser.set_defaults(func=handler)
