"""Seeded percentile bootstrap for metric confidence intervals.

Every metric resamples *samples* (rows) with replacement, ``n_boot`` times, from
``numpy.random.default_rng(seed)`` and takes the 2.5th and 97.5th percentiles of the statistic over the
resamples (Efron & Tibshirani, 1993, ch. 13). Mean-type metrics resample their per-sample scores;
corpus-level metrics (BLEU, METEOR, micro F1, ...) resample the per-sample *sufficient statistics*
(matched n-gram counts, lengths, TP/FP/FN) and recompute the corpus formula on each resample, so the
interval is for the same quantity as the reported value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from harness.metrics.base import MetricResult

CI_LEVEL = 0.95
# Resamples drawn per block: bounds memory at n * block indices (10k samples -> 8 MB per block).
_BLOCK = 100


def resample_indices(n: int, *, seed: int, n_boot: int) -> list[np.ndarray]:
    """Blocks of bootstrap index rows (each row a resample of ``range(n)``); same seed -> same rows."""
    rng = np.random.default_rng(seed)
    blocks = []
    left = n_boot
    while left > 0:
        size = min(_BLOCK, left)
        blocks.append(rng.integers(0, n, size=(size, n)))
        left -= size
    return blocks


def bootstrap_ci(
    stats: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int,
    n_boot: int,
) -> tuple[float, float]:
    """Percentile CI of ``statistic`` over row resamples of ``stats``.

    ``stats`` is ``(n, ...)``: one row of per-sample values or sufficient statistics per sample.
    ``statistic`` maps a ``(B, n, ...)`` stack of resampled rows to ``B`` values.
    Returns ``(nan, nan)`` when there are no samples or no resamples.
    """
    stats = np.asarray(stats, dtype=np.float64)
    n = stats.shape[0]
    if n == 0 or n_boot <= 0:
        return float("nan"), float("nan")
    values = np.concatenate([statistic(stats[idx]) for idx in resample_indices(n, seed=seed, n_boot=n_boot)])
    alpha = (1.0 - CI_LEVEL) / 2.0
    low, high = np.nanpercentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def mean_statistic(resampled: np.ndarray) -> np.ndarray:
    return resampled.mean(axis=1)


def mean_result(
    name: str,
    per_sample: Sequence[float],
    *,
    higher_is_better: bool = True,
    seed: int = 0,
    n_boot: int = 1000,
) -> MetricResult:
    """The result for a metric whose value is the mean of its per-sample scores."""
    scores = np.asarray(per_sample, dtype=np.float64)
    value = float(scores.mean()) if scores.size else float("nan")
    low, high = bootstrap_ci(scores, mean_statistic, seed=seed, n_boot=n_boot)
    return MetricResult(
        name=name,
        value=value,
        ci_low=low,
        ci_high=high,
        n=int(scores.size),
        higher_is_better=higher_is_better,
        per_sample=[float(s) for s in scores],
    )
