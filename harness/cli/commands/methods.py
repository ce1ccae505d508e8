"""``harness methods``: list the registered preference-optimization methods and every option they take.

Built-in methods and those of installed plugins are entries of the same ``harness.methods`` entry-point
group and are listed the same way, each with the pip package (distribution) that registered it. Reading a
method's class attributes imports its module but not torch (losses import it lazily); a method that
cannot be loaded still gets a row, with the one-line reason in its ``note``.

Examples::

    harness methods                      # one row per method
    harness methods mmedpo povid         # each method's loss hyperparameters and builder options, with help
    harness methods --format json        # everything, for scripts
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.common import add_format_option, emit, format_table
from harness.core.errors import HarnessError

COLUMNS = ("name", "package", "pair_kinds", "reference_free", "defaults", "pair_builder", "builder_options",
           "citation", "note")


def method_rows(names: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per registered method (or per name of ``names``), in name order; a method that cannot be
    loaded gets a row with the reason in ``note`` instead of failing the listing."""
    from harness.methods import METHODS

    rows = []
    for name in names or METHODS.names():
        row: dict[str, Any] = {"name": name, "package": None, "pair_kinds": None, "reference_free": None,
                               "defaults": None, "hparams": [], "pair_builder": None, "builder_options": [],
                               "needs_model": None, "citation": None, "note": ""}
        try:
            cls = METHODS.get(name)
            row.update({k: v for k, v in cls.describe().items() if k in row and k != "name"})
            row["package"] = METHODS.origin(name) or f"{cls.__module__.split('.')[0]} (registered in code)"
            if cls.name != name:
                row["note"] = f"registered as '{name}' but its class says '{cls.name}'"
        except HarnessError as exc:
            if names:  # asked for by name: an unknown or broken method is the user's error
                raise
            row["note"] = f"error: {exc}"
        rows.append(row)
    return rows


def option_rows(row: dict[str, Any]) -> list[dict[str, Any]]:
    """A method's options as rows: its loss hyperparameters and builder options (both ``--option KEY=VALUE``)."""
    out = [{"option": h["name"], "kind": "hyperparameter (--option)", "default": h["default"],
            "range": h.get("range"), "help": h["help"]} for h in row["hparams"]]
    for o in row["builder_options"]:
        choices = f" [{', '.join(map(str, o['choices']))}]" if o.get("choices") else ""
        out.append({"option": o["name"], "kind": "pair builder (--option)", "default": o["default"],
                    "range": o.get("range"), "help": o["help"] + choices})
    return out


def handler(args: argparse.Namespace) -> int:
    rows = method_rows(args.names or None)
    if args.format == "json":
        emit(rows, "json")
        return 0
    if not args.names:
        table = [{**r, "builder_options": [o["name"] for o in r["builder_options"]]} for r in rows]
        emit(table, args.format, [c for c in COLUMNS if c != "note" or any(r["note"] for r in rows)])
        return 0
    for index, row in enumerate(rows):
        if index:
            print()
        print(f"{row['name']}  (package {row['package']}; pair kinds {','.join(row['pair_kinds'])}; "
              f"{'reference-free' if row['reference_free'] else 'needs a reference'}; "
              f"{'builds its own pairs' if row['pair_builder'] else 'trains on given pairs'}"
              f"{', needs the target model' if row['needs_model'] else ''})")
        print(row["citation"])
        options = option_rows(row)
        print(format_table(options) if options else "(no options)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "methods",
        help="list the preference-optimization methods (package, pair kinds, options, citation), plugins included",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("names", nargs="*", metavar="METHOD",
                        help="show these methods' options (hyperparameters and pair-builder options) with help")
    add_format_option(parser)
    parser.set_defaults(func=handler)
