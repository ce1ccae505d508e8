"""The metrics the field reports, with intervals; each registers with ``@metric`` where it is defined.

See ``harness.metrics.base`` for the contract and ``harness.metrics.registry`` for the registry."""

from __future__ import annotations

from harness.metrics.base import Metric, MetricResult
from harness.metrics.registry import METRICS, get_metric


def compute_metrics(names, predictions, references, *, seed: int = 0, n_boot: int = 1000) -> dict[str, MetricResult]:
    """Score several metrics on the same samples, sharing work within each backend.

    The report metrics share one PTB tokenization, one METEOR JVM and one n-gram pass; the clinical
    metrics share one labelling of each report; anything else (including plugins) is computed alone.
    """
    from harness.metrics.suite import compute_metrics as _compute

    return _compute(names, predictions, references, seed=seed, n_boot=n_boot)


def evaluate_module_path(name: str):
    """The folder of the local Hugging Face ``evaluate`` module for ``name`` (``evaluate.load(str(path))``)."""
    from harness.metrics.suite import evaluate_module_path as _path

    return _path(name)


__all__ = ["METRICS", "Metric", "MetricResult", "compute_metrics", "evaluate_module_path", "get_metric"]
