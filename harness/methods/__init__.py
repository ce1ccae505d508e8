"""Method registry: built-in methods and plugins alike are entries of the ``harness.methods`` entry-point
group (the built-ins are declared in the harness's own ``pyproject.toml``), read lazily, so listing names
imports no method module and no torch."""

from __future__ import annotations

from harness.core.registry import Registry
from harness.methods.base import LogProbs, LossOutput, Method, PairContext

METHODS: Registry[type[Method]] = Registry("method", entry_point_group="harness.methods")


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)


__all__ = ["METHODS", "LogProbs", "LossOutput", "Method", "PairContext", "get_method"]
