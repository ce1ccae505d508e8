"""``harness tasks``: list the registered tasks with their splits, sizes, metrics and version.

Sizes come from each task's annotation files (JSON / CSV reading only), so the listing imports neither
torch nor ``datasets``. A task that cannot be loaded or whose data is malformed still gets a row, with the
one-line reason in its ``note``.

Sizes count the records a load would keep: bad records (a missing, empty or mistyped field) are skipped
and counted, shown as ``train=4918 (1 skipped: empty answer)`` (JSON: a ``skipped`` object per split).
``--strict`` (or ``HARNESS_STRICT=1``) refuses them instead: the first bad record is a one-line error and
the command exits with status 2.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from harness.cli.common import add_data_dir_option, add_format_option, add_task_option_option, emit
from harness.core.errors import DataError, HarnessError
from harness.tasks._loading import options_help, strict_from_env

COLUMNS = ("name", "family", "splits", "sizes", "metrics", "version", "note")


def task_rows(data_dir: str | None = None, *, strict: bool = False) -> list[dict[str, Any]]:
    """One row per registered task, in name order; never raises for a single bad task unless ``strict``.

    With ``strict`` a bad record raises its ``DataError`` (the CLI prints it as one line and exits 2).
    """
    from harness.tasks import TASKS, get_task

    rows = []
    for name in TASKS.names():
        row: dict[str, Any] = {"name": name, "family": None, "splits": None, "sizes": None,
                               "metrics": None, "version": None, "note": ""}
        try:
            task = get_task(name)  # with the options of --task-option, if any
            row.update(family=task.family, splits=list(task.splits), metrics=list(task.metrics), version=task.version)
            row["description"] = task.description
            options_class = getattr(task, "options_class", None)
            if options_class is not None:
                row["options"] = options_help(options_class)
            report = _size_report(task, data_dir, strict)
            row["sizes"] = None if report is None else report[0]
            if report is not None and report[1]:
                row["skipped"] = report[1]
            if row["sizes"] is None and task.folder:
                folder = task.data_dir(data_dir)
                row["note"] = f"no data in {folder}" if folder else "no data: pass --data-dir or set HARNESS_DATA"
        except DataError as exc:
            if strict:
                raise
            row["note"] = f"error: {exc}"
        except HarnessError as exc:
            row["note"] = f"error: {exc}"
        rows.append(row)
    return rows


def _size_report(task, data_dir: str | None, strict: bool):
    options_class = getattr(task, "options_class", None)
    takes_strict = options_class is not None and "strict" in {f.name for f in dataclasses.fields(options_class)}
    if strict and takes_strict:
        return task.size_report(data_dir, strict=True)
    return task.size_report(data_dir)


def _table_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sizes with their skipped counts for the table: ``train=4918 (1 skipped: empty answer)``."""
    out = []
    for row in rows:
        skipped = row.get("skipped") or {}
        if skipped and row["sizes"]:
            row = {**row, "sizes": {k: f"{v} ({skipped[k]})" if k in skipped else v for k, v in row["sizes"].items()}}
        out.append(row)
    return out


def handler(args: argparse.Namespace) -> int:
    from harness.cli.common import task_options_from_args
    from harness.tasks.task_options import task_options

    with task_options(task_options_from_args(args, None)):
        rows = task_rows(args.data_dir, strict=args.strict or strict_from_env())
    columns = [c for c in COLUMNS if c != "note" or any(r["note"] for r in rows)]
    emit(rows if args.format == "json" else _table_rows(rows), args.format, columns)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tasks",
        help="list the registered tasks (splits, sizes when data is present, metrics, version)",
        description="List registered tasks. Example: harness tasks --data-dir ../shared/data --format json "
        "(--strict: refuse bad records instead of skipping them)",
    )
    add_data_dir_option(parser)
    add_task_option_option(parser)
    add_format_option(parser)
    parser.add_argument(
        "--strict", action="store_true",
        help="refuse a split with a bad record (missing, empty or mistyped field): one-line error, exit 2 "
        "(default: skip it and show the count; HARNESS_STRICT=1 does the same as --strict)",
    )
    parser.set_defaults(func=handler)
