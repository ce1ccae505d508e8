"""Model registry: adapters from a model spec string to a ``VisionLanguageModel``.

``load_model(spec)`` accepts a registered name (``tiny``), ``openai:<model>``, a family-prefixed path
(``llava:/path``, ``qwen2_vl:/path``...) or a plain local path / hub id (the family is read from its config).
"""

from __future__ import annotations

from harness.models.base import GenerationConfig, VisionLanguageModel
from harness.models.resolve import load_model
from harness.registry import Registry

MODELS: Registry = Registry("model", entry_point_group="harness.models")
MODELS.register_lazy("hf", "harness.models.hf:load_hf_model")
MODELS.register_lazy("tiny", "harness.models.tiny:load_tiny")

__all__ = ["MODELS", "GenerationConfig", "VisionLanguageModel", "load_model"]
