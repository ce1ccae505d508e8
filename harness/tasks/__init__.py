"""Task registry. Entries are lazy so that listing tasks imports neither torch nor the loaders' dependencies."""

from __future__ import annotations

from harness.registry import Registry
from harness.tasks.base import Task

TASKS: Registry[Task] = Registry("task", entry_point_group="harness.tasks")

TASKS.register_lazy("vqa_rad", "harness.tasks.vqa_rad:TASK")
TASKS.register_lazy("slake", "harness.tasks.slake:TASK")
TASKS.register_lazy("path_vqa", "harness.tasks.path_vqa:TASK")
TASKS.register_lazy("iu_xray", "harness.tasks.iu_xray:TASK")
TASKS.register_lazy("mimic_cxr", "harness.tasks.mimic_cxr:TASK")
TASKS.register_lazy("synth_vqa", "harness.tasks.synth:SYNTH_VQA")
TASKS.register_lazy("synth_report", "harness.tasks.synth:SYNTH_REPORT")
TASKS.register_lazy("synth_probe", "harness.regress.probes:SYNTH_PROBE")
TASKS.register_lazy("slake_probe", "harness.regress.probes:SLAKE_PROBE")


def get_task(name: str) -> Task:
    """The registered task, with the options of an active ``task_options`` block merged in
    (``harness.tasks.task_options``: ``--task-option TASK.KEY=VALUE``)."""
    from harness.tasks.task_options import with_active_options

    return with_active_options(TASKS.get(name))


__all__ = ["TASKS", "Task", "get_task"]
