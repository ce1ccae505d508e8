"""Model registry: adapters from a model spec string to a ``VisionLanguageModel``.

``load_model(spec)`` accepts a registered name (``tiny``, ``testbed``), ``openai:<model>``, a family-prefixed path
(``llava:/path``, ``qwen2_vl:/path``...) or a plain local path / hub id (the family is read from its config).
"""

from __future__ import annotations

from harness.models.base import GenerationConfig, VisionLanguageModel
from harness.models.registry import MODELS
from harness.models.resolve import load_model

__all__ = ["MODELS", "GenerationConfig", "VisionLanguageModel", "load_model"]
