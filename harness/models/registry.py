"""The model registry: built-in and plugin model names -> factories (lazy ``module:attr`` entries)."""

from __future__ import annotations

from harness.core.registry import Registry

MODELS: Registry = Registry("model", entry_point_group="harness.models")
MODELS.register_lazy("hf", "harness.models.hf:load_hf_model")
# The built-in models tiny and testbed are trained by a module above models and training
# (harness.experiments.builtin_models): they register through the harness.models entry-point group of
# pyproject.toml, as a plugin's models do.
