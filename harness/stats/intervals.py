"""Confidence intervals: Wilson for proportions, percentile bootstrap, and their hull for pooled ratios.

- ``wilson_interval``: the Wilson score interval (Wilson, 1927, JASA 22:209) for k successes of n trials:
  center (p + z²/2n) / (1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n). It stays inside
  [0, 1] and never collapses to a point (645 of 645 gives [0.9941, 1]), and it widens as p leaves the
  boundary (644 of 645 gives [0.9913, 0.9997]); Brown, Cai & DasGupta (2001, Stat. Sci. 16:101) recommend it
  over the Wald and percentile intervals near 0 and 1.
- ``percentile_interval``: the percentile bootstrap interval (Efron & Tibshirani, 1993, ch. 13) of resampled
  values; None (NaN) when every resample gives one value, a certainty no finite sample has.
- ``mean_interval``: a mean of per-item scores: Wilson when the scores are 0/1 (the metric is a
  proportion of items), else the percentile bootstrap of the mean.
- ``ratio_interval``: a pooled ratio num/den over items (micro precision or recall, a pooled
  hallucination rate). Its items are clustered (one report holds several findings), which the bootstrap
  over items captures and Wilson on the pooled counts does not; near 0 or 1 the percentile bootstrap
  narrows (it cannot leave the observed support), which Wilson does not. The interval is their hull, so
  it is never narrower than either.
- ``normal_interval``: value ± z·se, for a result that only comes with a standard error (lm-eval).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from harness.stats.resample import bootstrap_values

CI_LEVEL = 0.95
Z95 = 1.959963984540054  # the standard normal quantile of 0.975
NAN = float("nan")


def wilson_interval(hits: float, n: float, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for ``hits`` successes of ``n`` trials; (nan, nan) when n is 0."""
    if n <= 0:
        return NAN, NAN
    p = min(max(hits / n, 0.0), 1.0)
    denom = 1.0 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, center - half), min(1.0, center + half)


def percentile_interval(values: np.ndarray, level: float = CI_LEVEL) -> tuple[float, float]:
    """The percentile interval of resampled values (NaNs ignored); (nan, nan) when they are all one value."""
    finite = np.asarray(values, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0 or finite.min() == finite.max():
        return NAN, NAN
    tail = (1.0 - level) / 2.0
    low, high = np.percentile(finite, [100 * tail, 100 * (1 - tail)])
    return float(low), float(high)


def bootstrap_interval(stats: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray], *, seed: int,
                       n_boot: int) -> tuple[float, float]:
    """Percentile interval of a statistic of summed per-item statistics over ``n_boot`` resamples of the items."""
    return percentile_interval(bootstrap_values(stats, statistic, seed=seed, n_boot=n_boot))


def mean_interval(scores: Sequence[float], *, seed: int, n_boot: int) -> tuple[float, float]:
    """Interval of the mean of per-item scores: Wilson for 0/1 scores, else the percentile bootstrap.

    ``n_boot <= 0`` asks for no interval (nan, nan), as when scores are only wanted per item.
    """
    x = np.asarray(scores, dtype=np.float64)
    if x.size == 0 or n_boot <= 0:
        return NAN, NAN
    if np.isin(x, (0.0, 1.0)).all():
        return wilson_interval(float(x.sum()), x.size)
    return bootstrap_interval(x, lambda sums: sums / x.size, seed=seed, n_boot=n_boot)


def ratio_interval(stats: np.ndarray, numerator: Callable[[np.ndarray], np.ndarray],
                   denominator: Callable[[np.ndarray], np.ndarray], *, seed: int, n_boot: int,
                   empty: float = 0.0) -> tuple[float, float]:
    """Interval of a pooled ratio ``numerator(sums) / denominator(sums)`` (``empty`` when the denominator is 0):
    the hull of the percentile bootstrap over items and the Wilson interval of the pooled counts."""
    stats = np.asarray(stats, dtype=np.float64)
    if stats.shape[0] == 0 or n_boot <= 0:
        return NAN, NAN

    def ratio(sums: np.ndarray) -> np.ndarray:
        num, den = numerator(sums), denominator(sums)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(den > 0, num / np.where(den > 0, den, 1), empty)

    boot = bootstrap_interval(stats, ratio, seed=seed, n_boot=n_boot)
    total = stats.sum(axis=0)[None]
    wilson = wilson_interval(float(numerator(total)[0]), float(denominator(total)[0]))
    return hull(boot, wilson)


def hull(*intervals: tuple[float, float]) -> tuple[float, float]:
    """The smallest interval holding every given one (NaN intervals are skipped; all NaN gives NaN)."""
    lows = [lo for lo, _ in intervals if lo == lo]
    highs = [hi for _, hi in intervals if hi == hi]
    if not lows or not highs:
        return NAN, NAN
    return float(min(lows)), float(max(highs))


def significant(p: float | None, low: float | None, high: float | None, alpha: float = 0.05) -> bool:
    """A difference is significant when its p-value is below ``alpha`` AND its interval excludes 0: the two come
    from one test in this harness, so they agree; a record where they do not (from an older harness, whose
    p-value tested another quantity) is not significant."""
    values = (p, low, high)
    if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in values):
        return False
    return (low > 0 or high < 0) and p < alpha


def normal_interval(value: float, se: float, z: float = Z95) -> tuple[float, float]:
    """``value ± z·se`` (a normal approximation, for results that come with a standard error only)."""
    return value - z * se, value + z * se
