"""Two arms of training runs compared over test items and training seeds (the statistic of ``harness study``).

An arm is one method entry trained with S seeds (the base model is an arm of one run). Each run's metric is
computed from its per-item statistics (:mod:`harness.stats.items`), so the effect tested is the effect
printed: ``delta = mean_s f(A_s) - mean_s f(B_s)``, f the metric on the shared test items.

Its variance has two sources (a two-level random-effects view of test items and training seeds; cf.
Bouthillier et al., 2021, "Accounting for variance in machine learning benchmarks", MLSys):

- items: the paired bootstrap over items, the same draws for every run of both arms; on each resample every
  run's metric is recomputed and averaged over its arm's seeds: ``se_item² = var*(delta*)``;
- seeds: an arm with S >= 2 seeds has the between-seed variance ``s² = var_s f(A_s)`` of its metric on the
  fixed items. Part of s² is item-level noise the bootstrap already counts (each seed gets different items
  right), ``w = S/(S-1) · mean_s var*(f*(A_s) - mean_t f*(A_t))``; the rest is training variance,
  ``sigma² = max(0, s² - w)`` (a method-of-moments estimate), and the arm adds ``sigma² / S``.

``se² = se_item² + sum_k sigma_k² / S_k``, so counting the seeds never makes a difference more certain than
the items alone. ``t = delta / se`` is referred to Student's t with the Welch-Satterthwaite degrees of
freedom ``df = se⁴ / sum_k (s_k² / S_k)² / (S_k - 1)`` (Satterthwaite, 1946: each seed term, a difference of
mean squares, has ``(s² - w)² (S - 1) / s⁴`` degrees of freedom; the item term has many), or to the normal
when no arm has several seeds. The p-value, the interval ``delta ± q_{1-alpha/2} · se`` and the MDE
``(q_{1-alpha/2} + q_{power}) · se`` come from that one distribution, so the interval excludes 0 exactly when
p < alpha. ``p_item`` is the same test with ``se_item`` alone (the seeds taken as given, normal reference);
a difference significant only there is reported as item-level only. With one seed per arm the seed variance
is not estimated and the test is the item-level one. With 2 or 3 seeds per arm the test is conservative
(like Welch's t with so few observations): in simulated A/A comparisons it rejects 2-5% of the time at
alpha 0.05, where the item-level test alone rejects 20-50% once training seeds matter (docs/study.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harness.stats.items import ItemStatistics
from harness.stats.power import minimum_detectable_effect, quantile
from harness.stats.resample import bootstrap_many


@dataclass(frozen=True)
class Arm:
    """One arm on shared items: each run's metric on the items and on the same bootstrap resamples."""

    values: np.ndarray  # (S,) the metric of each seed's run
    draws: np.ndarray  # (S, B) the metric of each seed's run on resample b

    @property
    def n_seeds(self) -> int:
        return int(self.values.size)

    @property
    def mean(self) -> float:
        return float(self.values.mean())


@dataclass(frozen=True)
class ArmComparison:
    delta: float  # mean over A's seeds minus mean over B's seeds
    ci_low: float
    ci_high: float
    p_value: float  # items and seeds
    p_item: float  # items only (the seeds taken as given)
    se: float
    se_item: float
    seed_variance: tuple[float | None, float | None]  # training variance sigma² per arm; None: one seed
    df: float  # of the t reference distribution (inf: normal)
    mde: float
    n_boot: int
    alpha: float

    @property
    def item_level_only(self) -> bool:
        """Significant when the seeds are taken as given, not once their variance is counted."""
        return self.p_item < self.alpha <= self.p_value

    @property
    def seeds_estimated(self) -> bool:
        return any(v is not None for v in self.seed_variance)

    def method(self) -> str:
        if not self.seeds_estimated:
            return f"paired bootstrap over items (B={self.n_boot}), normal; seed variance not estimated (one seed)"
        reference = "normal" if math.isinf(self.df) else f"Welch-Satterthwaite t, df {self.df:.1f}"
        return f"paired bootstrap over items (B={self.n_boot}) + seed variance, {reference}"


def arms(groups: Sequence[Sequence[ItemStatistics]], *, seed: int = 0, n_boot: int = 2000) -> list[Arm]:
    """One :class:`Arm` per group of runs (its seeds), all on the same resamples of their shared items."""
    flat = [s for group in groups for s in group]
    draws = bootstrap_many([s.stats for s in flat], [s.aggregate for s in flat], seed=seed, n_boot=n_boot)
    out, start = [], 0
    for group in groups:
        stop = start + len(group)
        out.append(Arm(np.array([s.value() for s in group]), draws[start:stop]))
        start = stop
    return out


def seed_terms(arm: Arm) -> tuple[float, float] | None:
    """``(s², w)`` of an arm with two or more seeds, else None: the between-seed variance of its metric on the
    fixed items, and the item-level noise part of it (see the module doc)."""
    s = arm.n_seeds
    if s < 2:
        return None
    between = float(np.var(arm.values, ddof=1))
    draws = arm.draws[:, ~np.isnan(arm.draws).any(axis=0)]
    if draws.shape[1] < 2:
        return between, 0.0
    deviation = draws - draws.mean(axis=0)
    return between, s / (s - 1) * float(np.mean(np.var(deviation, axis=1, ddof=1)))


def training_variance(arm: Arm) -> float | None:
    """sigma² = max(0, s² - w): the between-seed variance less its item-level noise (None with one seed)."""
    terms = seed_terms(arm)
    return None if terms is None else max(0.0, terms[0] - terms[1])


def compare_arms(a: Arm, b: Arm, *, alpha: float = 0.05, power: float = 0.8) -> ArmComparison:
    """Arm A minus arm B: delta, interval, p (items and seeds), item-only p and MDE (see the module doc)."""
    delta = a.mean - b.mean
    resampled = a.draws.mean(axis=0) - b.draws.mean(axis=0)
    resampled = resampled[~np.isnan(resampled)]
    se_item = float(resampled.std(ddof=1)) if resampled.size > 1 else float("nan")
    terms = [(arm.n_seeds, seed_terms(arm)) for arm in (a, b)]
    seeded = [(k, between, within) for k, t in terms if t is not None for between, within in [t]]
    # the seeds add their training variance, the between-seed variance less its item-level noise (never < 0)
    seed_part = sum(max(0.0, between - within) / k for k, between, within in seeded)
    se = math.sqrt(se_item**2 + seed_part) if se_item == se_item else float("nan")
    spread = sum((between / k) ** 2 / (k - 1) for k, between, _ in seeded if between > 0)
    df = se**4 / spread if spread > 0 else math.inf
    p, low, high = _t_test(delta, se, df, alpha)
    p_item, _, _ = _t_test(delta, se_item, math.inf, alpha)
    sigmas = (training_variance(a), training_variance(b))
    return ArmComparison(delta=delta, ci_low=low, ci_high=high, p_value=p, p_item=p_item, se=se, se_item=se_item,
                         seed_variance=sigmas, df=df, mde=minimum_detectable_effect(se, alpha=alpha, power=power, df=df),
                         n_boot=int(resampled.size), alpha=alpha)


def _t_test(delta: float, se: float, df: float, alpha: float) -> tuple[float, float, float]:
    """(two-sided p, interval low, interval high) of ``delta`` with standard error ``se`` against t(df)."""
    if se != se:
        return float("nan"), float("nan"), float("nan")
    if se == 0:  # every resample and seed gives one difference
        return (1.0 if delta == 0 else 0.0), delta, delta
    statistic = abs(delta) / se
    if math.isinf(df):
        from statistics import NormalDist

        p = 2 * (1 - NormalDist().cdf(statistic))
    else:
        from scipy.stats import t

        p = 2 * float(t.sf(statistic, df))
    half = quantile(1 - alpha / 2, df) * se
    return min(1.0, p), delta - half, delta + half
