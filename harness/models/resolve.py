"""Turn a model spec string into a loaded ``VisionLanguageModel``.

Specs, tried in this order:

- ``openai:<model>``: an OpenAI-compatible chat endpoint (``harness.models.openai_model``, loaded lazily).
- ``hf:<path or hub id>`` or ``<family>:<path>`` (``llava:/models/x``): a Hugging Face model folder.
- a registered name (``tiny``, ``testbed``, or a plugin's): the registry entry is a factory called with the options.
- an existing local folder, or a hub id shaped ``org/name``: loaded through ``load_hf_model``.

Anything else is an unknown name, reported with the closest registered names.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from harness.core.errors import HarnessError, UnknownNameError
from harness.models.base import VisionLanguageModel


def load_model(spec: str, **options: Any) -> VisionLanguageModel:
    """Load the model named by ``spec``; ``options`` (device, dtype, adapter...) go to the loader.

    Options that are None are dropped, so callers can pass CLI flags through unchanged.
    """
    from harness.models.hf import FAMILIES
    from harness.models.registry import MODELS

    if not spec or not isinstance(spec, str):
        raise HarnessError(f"model spec must be a non-empty string, got {spec!r}")
    options = {k: v for k, v in options.items() if v is not None}
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "openai":
        if not rest:
            raise HarnessError("model spec 'openai:' needs a model name, e.g. 'openai:gpt-4o-mini'")
        return _load_openai(rest, **options)
    if sep and (prefix == "hf" or prefix in FAMILIES) and rest:
        model = _load_hf(rest, **options)
        if prefix != "hf" and model.family.name != prefix:
            raise HarnessError(f"model spec '{spec}': the folder holds a '{model.family.name}' model, not '{prefix}'")
        return model
    if spec in MODELS and spec != "hf":
        factory = MODELS.get(spec)
        model = factory(**options)
        if not isinstance(model, VisionLanguageModel):
            raise HarnessError(f"model '{spec}': its registry entry returned {type(model).__name__}, not a model")
        return model
    if Path(spec).expanduser().exists():
        return _load_hf(str(Path(spec).expanduser()), **options)
    if _looks_like_hub_id(spec):
        return _load_hf(spec, **options)
    raise UnknownNameError(_unknown_message(spec, [n for n in MODELS.names() if n != "hf"]))


def _load_hf(path: str, **options: Any) -> VisionLanguageModel:
    from harness.models.hf import load_hf_model

    return load_hf_model(path, **options)


def _load_openai(model_name: str, **options: Any) -> VisionLanguageModel:
    try:
        from harness.models import openai_model
    except ImportError as exc:
        raise HarnessError(f"the OpenAI-compatible endpoint model is not available: {exc}") from None
    factory = getattr(openai_model, "load_openai_model", None) or getattr(openai_model, "OpenAIModel", None)
    if factory is None:
        raise HarnessError("harness.models.openai_model defines neither load_openai_model nor OpenAIModel")
    return factory(model_name, **options)


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "~"))


def _unknown_message(spec: str, names: list[str]) -> str:
    close = difflib.get_close_matches(spec, names, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    known = ", ".join(names) or "none"
    return (
        f"unknown model '{spec}'{hint} (registered: {known}; or give a model folder, "
        f"'hf:<hub id>', '<family>:<folder>' or 'openai:<model>')"
    )
