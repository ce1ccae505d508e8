"""Metric registry. Entries are lazy ``module:attr`` strings; see ``harness.metrics.base`` for the contract."""

from __future__ import annotations

from harness.metrics.base import Metric, MetricResult
from harness.registry import Registry

METRICS: Registry[Metric] = Registry("metric", entry_point_group="harness.metrics")


def get_metric(name: str) -> Metric:
    return METRICS.get(name)


__all__ = ["METRICS", "Metric", "MetricResult", "get_metric"]
