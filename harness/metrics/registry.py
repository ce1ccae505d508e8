"""The metric registry: names -> ``Metric`` objects. ``harness.metrics`` re-exports it.

A built-in metric registers where it is defined: ``@metric`` on the function that builds it (or
``metric(Metric(...))``). The modules that define them (``MODULES``) are imported on demand, in order, the first
time a name is missing or the names are listed, so importing the registry imports no metric module, and asking
for a VQA metric imports no report scorer. Plugins register through the ``harness.metrics`` entry-point group
(lazy ``module:attr`` entries), or in code with ``METRICS.register``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

from harness.core.registry import Registry
from harness.metrics.base import Metric

# The modules of harness/metrics/ that define metrics (cheapest first): adding a metric to one of them is one
# @metric line; a new module is added here. None of them imports torch, transformers, datasets or evaluate.
MODULES = ("harness.metrics.vqa", "harness.metrics.report", "harness.metrics.clinical",
           "harness.metrics.synth_findings", "harness.metrics.pope")

METRICS: Registry[Metric] = Registry("metric", entry_point_group="harness.metrics", modules=MODULES)

D = TypeVar("D", bound="Metric | Callable[..., Metric]")


def metric(definition: D) -> D:
    """Register metrics where they are defined.

    - On a ``Metric``: registers it under its name and returns it (``x = metric(Metric(name="x", ...))``).
    - On a function that builds ``Metric`` objects (``@metric`` above a factory): every metric it builds is
      registered under its name as it is built, so each definition (``bleu_4 = _report_metric("bleu_4", ...)``)
      registers itself.
    """
    if isinstance(definition, Metric):
        METRICS.register(definition.name, definition)
        return definition

    @functools.wraps(definition)
    def build(*args, **kwargs) -> Metric:
        built = definition(*args, **kwargs)
        METRICS.register(built.name, built)
        return built

    return build  # type: ignore[return-value]


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


def scoring_versions(names) -> dict[str, str]:
    """``{metric: version}`` for the named metrics whose scoring rule moved past its first version (see
    ``Metric.version``); empty while every rule is at "1", so keys made before rules were versioned stay valid."""
    versions = {}
    for name in sorted(set(names)):
        version = get_metric(name).version
        if version != "1":
            versions[name] = version
    return versions
