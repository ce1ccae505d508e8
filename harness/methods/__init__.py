"""The method contract and its registry: every preference-optimization method, built-in or plugin.

Built-in methods and plugins alike are entries of the ``harness.methods`` entry-point group (the built-ins are
declared in the harness's own ``pyproject.toml``), read lazily, so listing names imports no method module and
no torch."""

from __future__ import annotations

from harness.core.registry import Registry
from harness.methods.base import LogProbs, LossOutput, Method, PairContext

METHODS: Registry[type[Method]] = Registry("method", entry_point_group="harness.methods")

# The method a study compares every other entry with by default (``harness study --reference``): declared by the
# methods' distribution as an entry point of this group (``NAME = "module:Class"``, the method's own entry), so
# no module of the harness names one.
REFERENCE_GROUP = "harness.reference_method"


def get_method(name: str) -> type[Method]:
    return METHODS.get(name)


def default_reference() -> str | None:
    """The name of the method a study compares the others with unless told otherwise: the first entry of the
    ``harness.reference_method`` group (the harness's own declaration before a plugin's); None when none is
    declared. Reads metadata only: no method module is imported."""
    from harness.core.registry import declared_entry_points

    declared = declared_entry_points(REFERENCE_GROUP)
    return declared[0][1] if declared else None


__all__ = ["METHODS", "REFERENCE_GROUP", "LogProbs", "LossOutput", "Method", "PairContext", "default_reference",
           "get_method"]
