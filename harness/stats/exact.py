"""Exact tests for paired 0/1 outcomes, computed by ``scipy.stats.binomtest`` (no overflow at any n).

- ``binomial_two_sided_p``: the exact two-sided binomial (sign) test of k successes in n fair trials
  (the minimum-likelihood two-sided p of scipy).
- ``mcnemar_exact``: McNemar's test in its exact form (McNemar, 1947, Psychometrika 12:153; Edwards, 1948):
  under equal accuracy the discordant pairs split as Binomial(b + c, 1/2), where b items only the baseline
  got right and c items only the candidate got right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class McNemarResult:
    baseline_only: int  # b: baseline right, candidate wrong
    candidate_only: int  # c: candidate right, baseline wrong
    p_value: float


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p of ``k`` successes in ``n`` trials with success probability 1/2; 1 when n is 0."""
    if n == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(min(1.0, binomtest(int(k), int(n), 0.5).pvalue))


def mcnemar_exact(baseline_correct: Sequence[float], candidate_correct: Sequence[float]) -> McNemarResult:
    """Exact McNemar test on paired 0/1 outcomes of the same items."""
    base = np.asarray(baseline_correct, dtype=float)
    cand = np.asarray(candidate_correct, dtype=float)
    if base.shape != cand.shape:
        raise ValueError(f"paired outcomes differ in length: {base.size} vs {cand.size}")
    if not (np.isin(base, (0.0, 1.0)).all() and np.isin(cand, (0.0, 1.0)).all()):
        raise ValueError("McNemar's test needs 0/1 outcomes")
    b = int(((base == 1) & (cand == 0)).sum())
    c = int(((base == 0) & (cand == 1)).sum())
    return McNemarResult(b, c, binomial_two_sided_p(b, b + c))
