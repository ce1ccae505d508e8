"""Model registry: adapters from a model spec string to a ``VisionLanguageModel``.

``load_model(spec)`` accepts a registered name (``tiny``, ``testbed``), ``openai:<model>``, a family-prefixed path
(``llava:/path``, ``qwen2_vl:/path``...) or a plain local path / hub id (the family is read from its config).
"""

from __future__ import annotations

from harness.models.base import GenerationConfig, VisionLanguageModel
from harness.models.resolve import load_model
from harness.registry import Registry

MODELS: Registry = Registry("model", entry_point_group="harness.models")
MODELS.register_lazy("hf", "harness.models.hf:load_hf_model")
# The built-in models are trained by a module above models and training (harness.builtin_models).
MODELS.register_lazy("tiny", "harness.builtin_models:load_tiny")
MODELS.register_lazy("testbed", "harness.builtin_models:load_testbed")

__all__ = ["MODELS", "GenerationConfig", "VisionLanguageModel", "load_model"]
