"""Minimum detectable effects (Cohen, 1988, "Statistical Power Analysis", ch. 2).

For a two-sided test at level alpha of an effect estimated with standard error ``se``, the smallest true
effect found with probability ``power`` is ``(q_{1-alpha/2} + q_{power}) · se``, with q the quantiles of the
test's reference distribution: the standard normal, or Student's t with ``df`` degrees of freedom when the
standard error is itself estimated from few training seeds. At alpha 0.05 and power 0.8 the normal factor
is 2.80; to halve the MDE, quadruple the items (item variance) or the seeds (seed variance).
"""

from __future__ import annotations

import math


def quantile(q: float, df: float = math.inf) -> float:
    """The q-quantile of Student's t with ``df`` degrees of freedom (the standard normal when df is infinite)."""
    if math.isinf(df):
        from statistics import NormalDist

        return NormalDist().inv_cdf(q)
    from scipy.stats import t

    return float(t.ppf(q, df))


def planning_mde(se_baseline: float, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The MDE of a paired difference whose two sides have independent errors, each with standard error
    ``se_baseline``: ``(z_{1-alpha/2} + z_{power}) · sqrt(2) · se_baseline``, a planning number at a run's size
    (a candidate correlated with its baseline has a smaller standard error, so smaller effects are found)."""
    return minimum_detectable_effect(math.sqrt(2.0) * se_baseline, alpha=alpha, power=power)


def minimum_detectable_effect(se: float, *, alpha: float = 0.05, power: float = 0.8,
                              df: float = math.inf) -> float:
    """The smallest true effect a two-sided level-``alpha`` test with standard error ``se`` detects with ``power``."""
    if se is None or not math.isfinite(se):
        return float("nan")
    return (quantile(1 - alpha / 2, df) + quantile(power, df)) * se
