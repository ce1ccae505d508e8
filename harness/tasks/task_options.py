"""Task options from the command line and config files: ``--task-option TASK.KEY=VALUE``.

A task's loader options (``source=osf`` for VQA-RAD, ``test_size=50`` for the synthetic suite...) are the
fields of its ``options_class`` (``harness tasks NAME`` lists them). :func:`parse_task_options` reads the
command-line spelling into ``{task: {key: value}}``; :func:`check_task_options` validates it through each
task's options class (unknown tasks, keys and bad values are one-line errors) and returns the typed values.

While :func:`task_options` is active, :func:`harness.tasks.get_task` returns each named task with the options
merged into ``Task.options``. Everything downstream then sees them: ``Task.load``, the data record every
evaluation keeps (``harness.tasks.identity.split_record``), the content digests that key the pair cache and
the base evaluation. So runs on other task options never share a cache or a comparison.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from harness.core.errors import HarnessError
from harness.core.options import parse_options, shown, suggest

FLAG = "--task-option"

# task name -> options, while a `task_options` block is active (a plain module value, not a contextvar: the
# evaluation engine and the study may load data from worker threads, which must see the same options)
_active: dict[str, dict[str, Any]] = {}


def parse_task_options(items: Iterable[str], flag: str = FLAG) -> dict[str, dict[str, str]]:
    """``["vqa_rad.source=osf", "synth_vqa.test_size=50"]`` -> ``{"vqa_rad": {"source": "osf"}, ...}``.

    The task name ends at the first '.', the key at the first '='; a later item for the same key wins."""
    parsed: dict[str, dict[str, str]] = {}
    for item in items:
        target, sep, value = str(item).partition("=")
        task, dot, key = target.partition(".")
        if not sep or not dot or not task.strip() or not key.strip():
            raise HarnessError(f"{flag} expects TASK.KEY=VALUE (e.g. vqa_rad.source=osf), got {shown(str(item))}")
        parsed.setdefault(task.strip(), {})[key.strip()] = value
    return parsed


def check_task_options(options: Mapping[str, Mapping[str, Any]] | None, tasks: Iterable[str] | None = None,
                       flag: str = FLAG) -> dict[str, dict[str, Any]]:
    """``options`` validated through each task's options class: ``{task: {key: typed value}}``, sorted.

    ``tasks``: the tasks the command works on; options for any other task are refused (a typo in the task
    name would otherwise be ignored silently)."""
    from harness.tasks.registry import TASKS

    tasks = list(tasks) if tasks is not None else None
    checked: dict[str, dict[str, Any]] = {}
    for name in sorted(options or {}):
        given = options[name]
        if not isinstance(given, Mapping):
            raise HarnessError(f"{flag} {name}: expected KEY=VALUE options, got {shown(given)}")
        if tasks is not None and name not in tasks:
            raise HarnessError(f"{flag} {name}.{next(iter(given), 'KEY')}: task '{name}' is not among this "
                               f"command's tasks ({', '.join(tasks) or 'none'}){suggest(name, tasks)}")
        task = TASKS.get(name)  # an unknown name fails with a suggestion
        cls = _options_class(task)
        if cls is None:
            raise HarnessError(f"{flag} {name}: task '{name}' takes no options")
        keys = {str(k): v for k, v in given.items()}
        parsed = parse_options(f"task '{name}'", cls, {**task.options, **keys})
        checked[name] = {key: _plain(getattr(parsed, key)) for key in sorted(keys)}
    return checked


def keyed(options: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, str]]:
    """Task options as a cache key or signature holds them: values as text, an option naming a file or folder
    (``harness.tasks.identity.PATH_OPTIONS``) by its last component only. What was read is in the content
    digests beside it, so no key depends on where the data lies."""
    from pathlib import Path

    from harness.tasks.identity import PATH_OPTIONS

    return {task: {key: Path(str(value)).name if key in PATH_OPTIONS and str(value) else str(value)
                   for key, value in sorted(values.items())}
            for task, values in sorted((options or {}).items())}


def _options_class(task) -> type | None:
    """The task's options class; a task built from another task's rows (the probe tasks: ``source``) passes
    its options to that task's loader, so that task's class checks them."""
    cls = getattr(task, "options_class", None)
    source = getattr(task, "source", None)
    if cls is None and isinstance(source, str) and source != task.name:
        from harness.tasks.registry import TASKS

        if source in TASKS:
            return getattr(TASKS.get(source), "options_class", None)
    return cls


def _plain(value: Any) -> Any:
    """A value as a config file and a JSON record hold it (tuples become lists)."""
    return list(value) if isinstance(value, tuple) else value


@contextmanager
def task_options(options: Mapping[str, Mapping[str, Any]] | None) -> Iterator[None]:
    """While active, ``get_task(name)`` gives ``name`` with ``options[name]`` merged into its options.
    Nested blocks add to (and, for a key both set, override) the outer one; each restores it on exit."""
    global _active
    saved = _active
    merged = {name: dict(values) for name, values in saved.items()}
    for name, values in (options or {}).items():
        merged.setdefault(name, {}).update(values)
    _active = merged
    try:
        yield
    finally:
        _active = saved


def with_active_options(task):
    """``task`` with the active options of its name merged in (a copy; the registered task is unchanged)."""
    extra = _active.get(getattr(task, "name", None))
    if not extra:
        return task
    return dataclasses.replace(task, options={**task.options, **extra})
