"""The task registry: names -> ``Task`` objects (lazy ``module:attr`` entries, so that listing tasks imports
neither torch nor the loaders' dependencies; plugins through the ``harness.tasks`` entry-point group)."""

from __future__ import annotations

from harness.core.registry import Registry
from harness.tasks.base import Task

TASKS: Registry[Task] = Registry("task", entry_point_group="harness.tasks")

TASKS.register_lazy("vqa_rad", "harness.tasks.vqa_rad:TASK")
TASKS.register_lazy("slake", "harness.tasks.slake:TASK")
TASKS.register_lazy("path_vqa", "harness.tasks.path_vqa:TASK")
TASKS.register_lazy("iu_xray", "harness.tasks.iu_xray:TASK")
TASKS.register_lazy("mimic_cxr", "harness.tasks.mimic_cxr:TASK")
TASKS.register_lazy("synth_vqa", "harness.tasks.synth:SYNTH_VQA")
TASKS.register_lazy("synth_report", "harness.tasks.synth:SYNTH_REPORT")
# The probe sets of the regression gate (synth_probe, slake_probe) are tasks of harness.regress, above this
# package: they register through the harness.tasks entry-point group of pyproject.toml, as a plugin's would.
