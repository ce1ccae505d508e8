"""Paired statistics for comparing two evaluations of the same items.

- ``mcnemar_exact``: McNemar's test in its exact form (McNemar, 1947; Edwards, 1948): under the null of
  equal accuracy the discordant pairs split as Binomial(b + c, 1/2), where ``b`` items only the baseline
  got right and ``c`` items only the candidate got right. Two-sided p = min(1, 2 P[X <= min(b, c)]).
- ``paired_bootstrap``: the paired bootstrap (Efron & Tibshirani, 1993, ch. 16; Koehn, 2004; Berg-Kirkpatrick
  et al., 2012): items are resampled with replacement, keeping each item's baseline and candidate scores
  together, and the difference of means is recomputed. The two-sided p-value uses the resamples shifted
  to the null (delta* - delta), the standard form for a paired bootstrap test.
- ``holm``: Holm's step-down adjustment (Holm, 1979) for several metrics tested at once; it controls the
  family-wise error rate, so a gate over k metrics still raises a false alarm with probability <= alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class McNemarResult:
    baseline_only: int  # b: baseline right, candidate wrong
    candidate_only: int  # c: candidate right, baseline wrong
    p_value: float


@dataclass(frozen=True)
class BootstrapResult:
    delta: float  # mean(candidate) - mean(baseline)
    ci_low: float
    ci_high: float
    p_value: float
    n_boot: int


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p of observing ``k`` (or fewer, or as extreme the other way) of ``n`` fair coin flips."""
    if n == 0:
        return 1.0
    low = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(low + 1))  # exact integers: no underflow for large n
    return min(1.0, 2.0 * tail / 2**n)


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


def paired_bootstrap(baseline: Sequence[float], candidate: Sequence[float], *, seed: int = 0,
                     n_boot: int = 10000, ci_level: float = 0.95) -> BootstrapResult:
    """Paired bootstrap of ``mean(candidate - baseline)``: percentile interval and two-sided p-value."""
    base = np.asarray(baseline, dtype=np.float64)
    cand = np.asarray(candidate, dtype=np.float64)
    if base.shape != cand.shape:
        raise ValueError(f"paired scores differ in length: {base.size} vs {cand.size}")
    diff = cand - base
    n = diff.size
    if n == 0:
        return BootstrapResult(float("nan"), float("nan"), float("nan"), 1.0, n_boot)
    delta = float(diff.mean())
    rng = np.random.default_rng(seed)
    boots = np.empty(n_boot)
    block = max(1, 2_000_000 // n)  # bounds memory at ~16 MB of indices per block
    for start in range(0, n_boot, block):
        size = min(block, n_boot - start)
        boots[start:start + size] = diff[rng.integers(0, n, size=(size, n))].mean(axis=1)
    tail = (1.0 - ci_level) / 2.0
    low, high = np.percentile(boots, [100 * tail, 100 * (1 - tail)])
    # Shifted to the null: how often a resample's deviation is as large as the observed difference.
    # The tolerance keeps an all-ties sample (every deviation 0, delta 0) at p = 1 despite float error.
    extreme = np.abs(boots - delta) >= abs(delta) - 1e-12
    p = (1.0 + float(extreme.sum())) / (n_boot + 1.0)
    return BootstrapResult(delta, float(low), float(high), min(1.0, p), n_boot)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (compare each to alpha), in the input order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
