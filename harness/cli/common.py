"""Shared CLI helpers: output formats and common options."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import Any


def add_format_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=("table", "json"), default="table", help="output format")


def add_data_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder holding one sub-folder per dataset (default: $HARNESS_DATA)",
    )


class _FlattenTasks(argparse.Action):
    """Collects task names given as ``a,b``, ``a b`` or ``--tasks a --tasks b`` into one flat list."""

    def __call__(self, parser, namespace, values, option_string=None):
        names = list(getattr(namespace, self.dest, None) or [])
        for value in values if isinstance(values, list) else [values]:
            names.extend(v.strip() for v in str(value).split(",") if v.strip())
        setattr(namespace, self.dest, list(dict.fromkeys(names)))


def add_tasks_option(parser: argparse.ArgumentParser, *, required: bool = False,
                     help: str = "task names: comma-separated, space-separated or a repeated flag") -> None:
    """``--tasks``, one syntax for every command: ``--tasks a,b`` = ``--tasks a b`` = ``--tasks a --tasks b``."""
    parser.add_argument("--tasks", nargs="+", action=_FlattenTasks, required=required, default=None,
                        metavar="TASK", help=help)


def add_task_option_option(parser: argparse.ArgumentParser) -> None:
    """``--task-option TASK.KEY=VALUE`` (repeatable): a task's loader option (``vqa_rad.source=osf``); the
    task's options class checks it (``harness tasks NAME`` lists the options)."""
    parser.add_argument("--task-option", dest="task_options", action="append", default=[], metavar="TASK.KEY=VALUE",
                        help="a task's loader option, e.g. vqa_rad.source=osf or synth_vqa.test_size=50 "
                             "(repeatable; harness tasks NAME lists a task's options)")


def task_options_from_args(args: argparse.Namespace, tasks) -> dict[str, dict[str, Any]]:
    """The ``--task-option`` values, checked against the command's ``tasks`` and each task's options class."""
    from harness.tasks.task_options import check_task_options, parse_task_options

    return check_task_options(parse_task_options(getattr(args, "task_options", None) or []), tasks)


def add_progress_options(parser: argparse.ArgumentParser) -> None:
    """``--no-progress`` (no progress bars) and ``--quiet`` (warnings and errors only, no bars) on a long command;
    ``harness.cli.main`` applies them. Defaults are suppressed so the global ``harness --quiet`` still counts."""
    parser.add_argument("--no-progress", dest="no_progress", action="store_true", default=argparse.SUPPRESS,
                        help="hide progress bars (in a non-tty log they update at most every 30 s anyway)")
    parser.add_argument("--quiet", dest="quiet", action="store_true", default=argparse.SUPPRESS,
                        help="log warnings and errors only, and no progress bars")


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A plain-text table with aligned columns (no extra dependency)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) for i, col in enumerate(columns)]
    line = "  ".join(col.ljust(w) for col, w in zip(columns, widths))
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join([line, rule, *body])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_cell(v)}" for k, v in value.items())
    return str(value)


def emit(rows: Sequence[dict[str, Any]], fmt: str, columns: Sequence[str] | None = None) -> None:
    if fmt == "json":
        json.dump(list(rows), sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    else:
        print(format_table(rows, columns))


@contextlib.contextmanager
def stdout_for_data(enabled: bool = True) -> Iterator[None]:
    """While a ``--format json`` command works, send everything else written to standard output to stderr.

    Libraries print to stdout: DeepSpeed's logger has a handler on ``sys.stdout`` that says "Setting accelerator
    to CPU" when ``accelerate`` imports it for training, and native code writes to file descriptor 1 directly.
    Both Python's ``sys.stdout`` and descriptor 1 point at stderr inside the block; the command prints its JSON
    after it, so stdout holds that JSON only.
    """
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = None
    try:
        fd = sys.__stdout__.fileno() if sys.__stdout__ is not None else -1
        if fd >= 0:
            sys.__stdout__.flush()
            sys.stderr.flush()
            saved = os.dup(fd)
            os.dup2(sys.__stderr__.fileno() if sys.__stderr__ is not None else 2, fd)
    except (AttributeError, OSError, ValueError):  # no real descriptors (an embedding host): Python level only
        saved = None
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        if saved is not None:
            with contextlib.suppress(OSError, ValueError):
                sys.__stdout__.flush()
            os.dup2(saved, fd)
            os.close(saved)


def print_json(data: Any) -> None:
    """``data`` as indented strict JSON on stdout (NaN and infinities become null)."""
    json.dump(_strict(data), sys.stdout, indent=2, default=str, allow_nan=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _strict(value: Any) -> Any:
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(v) for v in value]
    return value
