"""Every metric as per-item sufficient statistics, by name: the metric's declared decomposition
(``Metric.items``, an ``ItemForm``) or, for a metric whose value is the mean of its per-sample scores, those
scores. The statistics themselves (``ItemStatistics``, ``check``) are ``harness.stats.items``'s; this module
is where metrics meet them, so ``harness.stats`` never imports a metric.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from harness.core.errors import HarnessError
from harness.metrics.base import ItemForm
from harness.metrics.registry import METRICS, get_metric
from harness.stats.items import ItemStatistics, cached, check, mean_statistics, mean_stats

__all__ = ["ItemStatistics", "check", "from_array", "item_statistics", "unsupported"]


def unsupported(name: str) -> str:
    """Why metric ``name`` has no per-item statistics (paired tests refuse it), or "" when it has them."""
    return get_metric(name).no_items


def item_statistics(name: str, predictions: Sequence[object], references: Sequence[object], *,
                    cache: dict | None = None) -> ItemStatistics:
    """Per-item statistics and aggregate of metric ``name`` (``cache`` shares labelling between metrics)."""
    metric = get_metric(name)
    if metric.no_items:
        raise HarnessError(f"metric '{name}' has no per-item statistics: {metric.no_items}")
    cache = {} if cache is None else cache
    form = metric.items
    if form is not None:
        return _from_form(form, cached(cache, form.family, predictions, lambda: form.counts(predictions, references)))
    result = metric(list(predictions), list(references), seed=0, n_boot=0)
    if np.asarray(result.per_sample).size != len(predictions):
        raise HarnessError(f"metric '{name}' gives no per-sample scores: it cannot be compared item by item")
    return mean_statistics(mean_stats(result.per_sample, result.value, name))


def from_array(name: str, stats: np.ndarray) -> ItemStatistics:
    """The statistics of metric ``name`` from their array (as ``item_statistics`` built them, e.g. from a
    cache); a name no longer registered (a removed plugin) is read as a mean metric, its only possible form."""
    form = METRICS.get(name).items if name in METRICS else None
    if form is None:
        return mean_statistics(stats)
    return _from_form(form, stats)


def _from_form(form: ItemForm, stats: np.ndarray) -> ItemStatistics:
    return ItemStatistics(np.asarray(stats, dtype=np.float64), form.aggregate, form.kind, form.support)
