"""The tasks: loaders of the real dataset layouts (release and Hub) and of the synthetic suite.

The registry (``harness.tasks.registry``) holds lazy entries, so that listing tasks imports neither torch nor
the loaders' dependencies; ``get_task`` applies the active ``--task-option`` values."""

from __future__ import annotations

from harness.tasks.base import Task
from harness.tasks.registry import TASKS


def get_task(name: str) -> Task:
    """The registered task, with the options of an active ``task_options`` block merged in
    (``harness.tasks.task_options``: ``--task-option TASK.KEY=VALUE``)."""
    from harness.tasks.task_options import with_active_options

    return with_active_options(TASKS.get(name))


__all__ = ["TASKS", "Task", "get_task"]
