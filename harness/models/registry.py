"""The model registry: built-in and plugin model names -> factories (lazy ``module:attr`` entries)."""

from __future__ import annotations

from harness.core.registry import Registry

MODELS: Registry = Registry("model", entry_point_group="harness.models")
MODELS.register_lazy("hf", "harness.models.hf:load_hf_model")
# The built-in models are trained by a module above models and training (harness.experiments.builtin_models).
MODELS.register_lazy("tiny", "harness.experiments.builtin_models:load_tiny")
MODELS.register_lazy("testbed", "harness.experiments.builtin_models:load_testbed")
