"""The paired bootstrap of one metric between two runs on the same items (the regression gate's statistic).

Items are resampled with replacement, the same draws for both runs, and each run's metric is recomputed
from its summed per-item statistics (:mod:`harness.stats.items`) on every resample (Efron & Tibshirani,
1993, ch. 16; Koehn, 2004, EMNLP; Berg-Kirkpatrick et al., 2012, EMNLP). From that one distribution of the
difference come its percentile interval and its two-sided p-value, the interval inverted:
``p = 2 (1 + min(#{d* <= 0}, #{d* >= 0})) / (B + 1)``, so p < 1 - level when, and (up to the +1 smoothing)
only when, 0 lies outside the interval. Clustered items (several probes about one image) are resampled
as clusters, so their correlation widens the interval instead of passing for independent evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harness.stats.intervals import CI_LEVEL, percentile_interval
from harness.stats.items import ItemStatistics
from harness.stats.resample import bootstrap_many, sum_by_cluster


@dataclass(frozen=True)
class PairedResult:
    baseline: float
    candidate: float
    delta: float  # candidate - baseline on the full item set
    ci_low: float  # percentile interval of the resampled delta
    ci_high: float
    p_value: float  # two-sided: the percentile interval inverted
    se_delta: float  # standard deviation of the resampled delta
    se_baseline: float  # standard deviation of the resampled baseline value (for the minimum detectable drop)
    n_boot: int  # resamples on which both values are defined
    draws: np.ndarray = field(default_factory=lambda: np.empty(0), compare=False, repr=False)  # resampled deltas


def bootstrap_p_value(draws: np.ndarray) -> float:
    """Two-sided p of "no difference" from resampled differences: 2 x the smaller tail at 0, +1 smoothed."""
    draws = np.asarray(draws, dtype=np.float64)
    draws = draws[~np.isnan(draws)]
    if draws.size == 0:
        return 1.0
    below, above = float((draws <= 0).sum()), float((draws >= 0).sum())
    return min(1.0, 2.0 * (1.0 + min(below, above)) / (draws.size + 1.0))


def paired_bootstrap(base: ItemStatistics, cand: ItemStatistics, *, seed: int = 0, n_boot: int = 10000,
                     ci_level: float = CI_LEVEL, clusters: Sequence[object] | None = None) -> PairedResult:
    """Resample items (or ``clusters``, one key per item) with replacement, the same draws for both sides."""
    n = base.stats.shape[0]
    if cand.stats.shape[0] != n:
        raise ValueError(f"paired statistics differ in length: {n} vs {cand.stats.shape[0]}")
    b_value, c_value = base.value(), cand.value()
    nan = float("nan")
    if n == 0:
        return PairedResult(b_value, c_value, nan, nan, nan, 1.0, nan, nan, 0)
    b_stats, c_stats = base.stats, cand.stats
    if clusters is not None:
        shape = b_stats.shape[1:]
        b_stats = sum_by_cluster(list(clusters), b_stats.reshape(n, -1)).reshape(-1, *shape)
        c_stats = sum_by_cluster(list(clusters), c_stats.reshape(n, -1)).reshape(-1, *shape)
    b_all, c_all = bootstrap_many([b_stats, c_stats], [base.aggregate, cand.aggregate], seed=seed, n_boot=n_boot)
    draws = c_all - b_all
    defined = ~np.isnan(draws)  # a macro value is undefined on a resample without any positive label
    draws = draws[defined]
    delta = c_value - b_value
    if draws.size == 0:
        return PairedResult(b_value, c_value, delta, nan, nan, 1.0, nan, nan, 0)
    low, high = percentile_interval(draws, ci_level)
    if low != low:  # every resample gives one difference: the interval is that point
        low = high = float(draws[0])
    return PairedResult(b_value, c_value, delta, low, high, bootstrap_p_value(draws), float(draws.std()),
                        float(np.nanstd(b_all)), int(draws.size), draws)
