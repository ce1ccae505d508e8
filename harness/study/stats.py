"""The statistics of a study: a paired sign-flip test over items and the minimum detectable effect.

- ``sign_flip_test``: the paired permutation test of Fisher (1935, "The Design of Experiments", §21) on
  per-item differences ``d_i``. Under the null that the two systems are exchangeable on every item, each
  ``d_i`` is as likely to have either sign, so the observed mean is compared with the means of all
  ``2^n`` sign patterns (exactly when ``n <= EXACT_MAX``, else ``n_perm`` random patterns, with the
  ``(1 + hits) / (1 + n_perm)`` estimate of Phipson & Smyth, 2010). Two-sided:
  ``p = P(|mean(s * d)| >= |mean(d)|)``.
- ``minimum_detectable_effect``: for a paired test of a mean difference at level alpha (two-sided) and
  the given power, the normal approximation ``MDE = (z_{1-alpha/2} + z_{power}) * sd(d) / sqrt(n)``
  (e.g. Cohen, 1988, ch. 2; with alpha 0.05 and power 0.8 the factor is 2.80).
- ``mean_interval``: ``mean(d) +- z_{0.975} * sd(d) / sqrt(n)``, the interval the effect plot draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

EXACT_MAX = 16  # 2^16 sign patterns enumerated exactly


def sign_flip_test(differences: Sequence[float], *, n_perm: int = 20000, seed: int = 0) -> float:
    """Two-sided p-value of the paired sign-flip permutation test of ``mean(differences) = 0``."""
    d = np.asarray(differences, dtype=np.float64)
    n = d.size
    if n == 0:
        return 1.0
    observed = abs(d.mean())
    tolerance = 1e-12 * max(1.0, float(np.abs(d).max()))  # ties with the observed mean count as extreme
    if n <= EXACT_MAX:
        patterns = ((np.arange(2**n)[:, None] >> np.arange(n)) & 1) * 2 - 1
        means = np.abs(patterns @ d) / n
        return float((means >= observed - tolerance).mean())
    rng = np.random.default_rng(seed)
    hits = 0
    block = max(1, 2_000_000 // n)
    for start in range(0, n_perm, block):
        size = min(block, n_perm - start)
        signs = rng.integers(0, 2, size=(size, n)) * 2 - 1
        hits += int((np.abs(signs @ d) / n >= observed - tolerance).sum())
    return (1.0 + hits) / (1.0 + n_perm)


def minimum_detectable_effect(sd: float, n: int, *, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference a two-sided paired test detects with ``power`` at ``alpha``."""
    if n < 2 or not math.isfinite(sd):
        return float("nan")
    z = NormalDist()
    return (z.inv_cdf(1 - alpha / 2) + z.inv_cdf(power)) * sd / math.sqrt(n)


def mean_interval(differences: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Normal-approximation interval of the mean difference."""
    d = np.asarray(differences, dtype=np.float64)
    if d.size < 2:
        return float("nan"), float("nan")
    half = NormalDist().inv_cdf(0.5 + level / 2) * d.std(ddof=1) / math.sqrt(d.size)
    return float(d.mean() - half), float(d.mean() + half)
