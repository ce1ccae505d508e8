"""Every metric as per-item sufficient statistics plus an aggregate formula: the statistics side.

A metric's value on any multiset of items is ``aggregate(sum of the items' statistics)``, so a bootstrap
resample (a vector of counts) gives the metric itself on the resampled items, whether it is a mean of
per-item scores or a pooled (corpus) value. Tests and intervals built on these statistics are therefore on
the quantity the metric reports, never on a per-item proxy (Koehn, 2004; Berg-Kirkpatrick et al., 2012):

- mean metrics (accuracy, open recall, ROUGE-L, CIDEr, ``false_finding_rate``, any plugin whose value is the
  mean of its per-sample scores): statistics ``(score, 1)``, aggregate ``sum / count``. Items scored NaN
  (left out of a metric's denominator, as ``closed_accuracy_llava_med`` does) count in neither.
- corpus metrics recompute their corpus formula: BLEU-n from summed n-gram matches and lengths; micro
  precision/recall/F1 from summed TP/FP/FN (``finding_*``, ``chexpert_*_micro``); ``laterality_accuracy``
  from summed lateralised findings; ``hallucination_rate`` from summed unsupported and claimed findings;
  the POPE scores from summed TP/FP/FN/TN.
- macro metrics (``chexpert_f1_macro``) take the mean of per-label F1 on the summed per-label counts.

Each metric declares its own decomposition (``harness.metrics.base.ItemForm``: the per-item counts and the
formula); ``harness.metrics.items`` looks it up by name. This module receives those functions and never imports
a metric. ``check`` compares an aggregate on the full set with the metric's own value, so a metric whose
definition changes without its decomposition following is an error, not a silently different test. METEOR has
no form (its statistics come from a Java scorer per call) and is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.core.errors import HarnessError

Aggregate = Callable[[np.ndarray], np.ndarray]  # (B, ...) summed statistics -> (B,) metric values


@dataclass
class ItemStatistics:
    stats: np.ndarray  # (n, ...) per-item sufficient statistics
    aggregate: Aggregate
    kind: str  # "mean", "corpus" or "macro"
    support: Callable[[np.ndarray], float] | None = None  # what the value rests on (e.g. claimed findings)

    def value(self) -> float:
        return float(self.aggregate(self.stats.sum(axis=0)[None])[0])

    def subset(self, index: Sequence[int]) -> ItemStatistics:
        """The same metric on the items at ``index`` (in that order)."""
        return ItemStatistics(self.stats[np.asarray(index, dtype=int)], self.aggregate, self.kind, self.support)


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise, 0 where ``den`` is 0 (the empty ratios of pooled metrics)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), 0.0)


def mean_aggregate(s: np.ndarray) -> np.ndarray:
    """The aggregate of a mean metric: summed scores over summed counts."""
    return ratio(s[..., 0], s[..., 1])


def mean_statistics(stats: np.ndarray) -> ItemStatistics:
    """A mean metric from its ``(n, 2)`` statistics (score, counted)."""
    return ItemStatistics(np.asarray(stats, dtype=np.float64), mean_aggregate, "mean")


def mean_stats(scores: Sequence[float], value: float, name: str) -> np.ndarray:
    """``(n, 2)`` statistics (score, counted) of a metric whose value is the mean of its per-sample scores;
    items scored NaN count in neither. A metric whose value is not that mean (a corpus value) is refused."""
    scores = np.asarray(scores, dtype=np.float64)
    valid = ~np.isnan(scores)
    mean = float(scores[valid].mean()) if valid.any() else float("nan")
    if valid.any() and not np.isclose(mean, value, rtol=1e-9, atol=1e-9):
        raise HarnessError(f"metric '{name}' is corpus-level (value {value:.6g}, per-sample mean "
                           f"{mean:.6g}) and has no per-item statistics here")
    return np.stack([np.where(valid, scores, 0.0), valid.astype(np.float64)], axis=1)


def cached(cache: dict, family: str, predictions: Sequence[object], compute: Callable[[], np.ndarray]) -> np.ndarray:
    """The statistics of one family on one list of predictions, computed once per ``cache``."""
    key = (family, id(predictions))
    if key not in cache:
        cache[key] = compute()
    return cache[key]


def check(name: str, stats: ItemStatistics, metric_value: float, side: str) -> None:
    """The aggregate on the full set must be the metric's own value: the test is on what eval reports."""
    value = stats.value()
    if np.isnan(value) and np.isnan(metric_value):
        return
    if not np.isclose(value, metric_value, rtol=1e-6, atol=1e-9):
        raise HarnessError(f"metric '{name}': the per-item statistics give {value:.6g} on the {side} but the metric "
                           f"gives {metric_value:.6g}; its per-item decomposition no longer follows its definition")
