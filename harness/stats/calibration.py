"""Checks that a test is calibrated: under a true null its p-values are uniform and about alpha of them fall
below alpha.

- ``uniformity_p``: the one-sample Kolmogorov-Smirnov test of p-values against Uniform(0, 1) (Kolmogorov,
  1933; Smirnov, 1948), via ``scipy.stats.kstest``: a small value says the p-values are not uniform.
- ``excess_false_positives_p``: the exact binomial probability of at least k false positives among m null
  tests at level alpha, i.e. how surprising the count is if the test's size really is alpha.
"""

from __future__ import annotations

from collections.abc import Sequence


def uniformity_p(p_values: Sequence[float]) -> float:
    """Kolmogorov-Smirnov p-value of "these p-values are Uniform(0, 1)"."""
    from scipy.stats import kstest

    return float(kstest(list(p_values), "uniform").pvalue)


def excess_false_positives_p(k: int, m: int, alpha: float = 0.05) -> float:
    """P(X >= k) for X ~ Binomial(m, alpha)."""
    from scipy.stats import binom

    return float(binom.sf(k - 1, m, alpha))
