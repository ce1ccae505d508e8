"""Seeded percentile bootstrap for metric confidence intervals.

Every metric resamples *samples* (rows) with replacement, ``n_boot`` times, from
``numpy.random.default_rng(seed)`` and takes the 2.5th and 97.5th percentiles of the statistic over the
resamples (Efron & Tibshirani, 1993, ch. 13). Mean-type metrics resample their per-sample scores;
corpus-level metrics (BLEU, METEOR, micro F1, ...) resample the per-sample *sufficient statistics*
(matched n-gram counts, lengths, TP/FP/FN) and recompute the corpus formula on each resample, so the
interval is for the same quantity as the reported value.

A percentile bootstrap of constant scores is the single point [x, x], which claims a certainty n items
cannot give. So a mean-type metric whose per-sample scores are all equal gets instead:

- the Wilson score interval (Wilson, 1927) when the scores are 0/1 hits, i.e. the metric is a
  proportion: k hits of n give center (p + z²/2n) / (1 + z²/n) and half-width
  z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n), z = 1.96; all 645 hits give [0.994, 1.0], none [0, 0.006];
- no interval (NaN, shown as n/a) for any other constant score.

The same NaN replaces any bootstrap interval whose resamples all give one value (a corpus metric such as
a hallucination rate of 0 on every report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from harness.metrics.base import MetricResult

CI_LEVEL = 0.95
_Z = 1.959963984540054  # the normal quantile for CI_LEVEL
# Resamples drawn per block: bounds memory at block * n resample counts.
_BLOCK = 100


def resample_counts(n: int, *, seed: int, n_boot: int):
    """Yield blocks of resample count rows ``(b, n)``: how often each sample is drawn in each resample.

    Counts rather than index rows, so a corpus statistic is one matrix product (counts @ stats) per block.
    Same ``seed`` -> same resamples.
    """
    rng = np.random.default_rng(seed)
    left = n_boot
    while left > 0:
        size = min(_BLOCK, left)
        idx = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        yield np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(np.float64)
        left -= size


def bootstrap_ci(
    stats: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    seed: int,
    n_boot: int,
) -> tuple[float, float]:
    """Percentile CI of a statistic of *summed* per-sample statistics over resamples of the samples.

    ``stats`` is ``(n, ...)``: one row of per-sample values or sufficient statistics per sample.
    ``statistic`` maps ``(B, ...)`` sums over each resample's rows to ``B`` values (a mean is
    ``sums / n``; corpus BLEU applies its formula to the summed counts). Returns ``(nan, nan)`` when
    there are no samples or no resamples.
    """
    stats = np.asarray(stats, dtype=np.float64)
    n = stats.shape[0]
    if n == 0 or n_boot <= 0:
        return float("nan"), float("nan")
    flat = stats.reshape(n, -1)
    values = np.concatenate(
        [statistic((counts @ flat).reshape(-1, *stats.shape[1:])) for counts in resample_counts(n, seed=seed, n_boot=n_boot)]
    )
    alpha = (1.0 - CI_LEVEL) / 2.0
    finite = values[np.isfinite(values)]
    if finite.size == 0 or finite.min() == finite.max():
        return float("nan"), float("nan")  # one value in every resample: no interval (see the module doc)
    low, high = np.nanpercentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def wilson_interval(hits: float, n: int, z: float = _Z) -> tuple[float, float]:
    """The Wilson score interval for ``hits`` successes of ``n`` trials; (nan, nan) when n is 0."""
    if n <= 0:
        return float("nan"), float("nan")
    p = hits / n
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return float(max(0.0, center - half)), float(min(1.0, center + half))


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
    if scores.size and n_boot > 0 and scores.min() == scores.max():
        # Constant scores: Wilson for a proportion, else no interval (see the module doc).
        binary = value in (0.0, 1.0)
        low, high = wilson_interval(value * scores.size, scores.size) if binary else (float("nan"), float("nan"))
    else:
        low, high = bootstrap_ci(scores, lambda sums: sums / scores.size, seed=seed, n_boot=n_boot)
    return MetricResult(
        name=name,
        value=value,
        ci_low=low,
        ci_high=high,
        n=int(scores.size),
        higher_is_better=higher_is_better,
        per_sample=[float(s) for s in scores],
    )
