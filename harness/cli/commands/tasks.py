"""``harness tasks``: list the registered tasks with their splits, sizes, metrics and version.

Sizes come from each task's annotation files (JSON / CSV reading only), so the listing imports neither
torch nor ``datasets``. A task that cannot be loaded or whose data is malformed still gets a row, with the
one-line reason in its ``note``.
"""

from __future__ import annotations

import argparse
from typing import Any

from harness.cli.common import add_data_dir_option, add_format_option, emit
from harness.errors import HarnessError
from harness.tasks._loading import options_help

COLUMNS = ("name", "family", "splits", "sizes", "metrics", "version", "note")


def task_rows(data_dir: str | None = None) -> list[dict[str, Any]]:
    """One row per registered task, in name order; never raises for a single bad task."""
    from harness.tasks import TASKS

    rows = []
    for name in TASKS.names():
        row: dict[str, Any] = {"name": name, "family": None, "splits": None, "sizes": None,
                               "metrics": None, "version": None, "note": ""}
        try:
            task = TASKS.get(name)
            row.update(family=task.family, splits=list(task.splits), metrics=list(task.metrics), version=task.version)
            row["description"] = task.description
            options_class = getattr(task, "options_class", None)
            if options_class is not None:
                row["options"] = options_help(options_class)
            row["sizes"] = task.sizes(data_dir)
            if row["sizes"] is None and task.folder:
                folder = task.data_dir(data_dir)
                row["note"] = f"no data in {folder}" if folder else "no data: pass --data-dir or set HARNESS_DATA"
        except HarnessError as exc:
            row["note"] = f"error: {exc}"
        rows.append(row)
    return rows


def handler(args: argparse.Namespace) -> int:
    rows = task_rows(args.data_dir)
    columns = [c for c in COLUMNS if c != "note" or any(r["note"] for r in rows)]
    emit(rows, args.format, columns)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tasks",
        help="list the registered tasks (splits, sizes when data is present, metrics, version)",
        description="List registered tasks. Example: harness tasks --data-dir ../shared/data --format json",
    )
    add_data_dir_option(parser)
    add_format_option(parser)
    parser.set_defaults(func=handler)
