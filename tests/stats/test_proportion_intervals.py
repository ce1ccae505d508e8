"""Intervals: Wilson for every proportion (consistent at the boundary), the percentile bootstrap, their hull."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.stats.intervals import (
    bootstrap_interval,
    hull,
    mean_interval,
    normal_interval,
    percentile_interval,
    ratio_interval,
    wilson_interval,
)

Z2 = 1.959963984540054 ** 2


def _wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    center = (p + Z2 / (2 * n)) / (1 + Z2 / n)
    half = math.sqrt(Z2) * math.sqrt(p * (1 - p) / n + Z2 / (4 * n * n)) / (1 + Z2 / n)
    return center - half, center + half


def test_wilson_matches_the_formula_and_textbook_values():
    assert wilson_interval(3, 10) == pytest.approx((0.1078, 0.6032), abs=1e-4)  # Brown, Cai & DasGupta's 3/10
    assert wilson_interval(644, 645) == pytest.approx(_wilson_by_hand(644, 645))
    assert wilson_interval(644, 645) == pytest.approx((0.99128, 0.99973), abs=1e-5)  # the numbers
    low, high = wilson_interval(645, 645)
    assert low == pytest.approx(_wilson_by_hand(645, 645)[0]) and high == 1.0
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


def test_a_proportion_off_the_boundary_is_never_surer_than_one_on_it():
    """644 of 645 used to get [0.9953, 1.0] from the percentile bootstrap: tighter than 645 of 645 and than
    Wilson. Every 0/1 metric now gets Wilson, whose width grows as p leaves the boundary."""
    ones = np.ones(645)
    almost = ones.copy()
    almost[0] = 0
    all_low, all_high = mean_interval(ones, seed=0, n_boot=2000)
    low, high = mean_interval(almost, seed=0, n_boot=2000)
    assert (low, high) == pytest.approx(wilson_interval(644, 645))
    assert high - low > all_high - all_low
    assert low < all_low
    # the percentile bootstrap alone is what went wrong: narrower than Wilson at 644/645
    boot = bootstrap_interval(almost, lambda s: s / 645, seed=0, n_boot=2000)
    assert boot[0] > low


def test_mean_interval_of_non_binary_scores_is_the_seeded_percentile_bootstrap():
    scores = np.random.default_rng(1).random(200)
    a = mean_interval(scores, seed=7, n_boot=500)
    assert a == mean_interval(scores, seed=7, n_boot=500) != mean_interval(scores, seed=8, n_boot=500)
    assert a[0] < scores.mean() < a[1]
    assert all(math.isnan(x) for x in mean_interval([0.5] * 40, seed=0, n_boot=200))  # constant: no interval
    assert all(math.isnan(x) for x in mean_interval([1.0, 0.0], seed=0, n_boot=0))  # no interval asked for


def test_percentile_interval_width_matches_normal_theory_for_a_mean():
    scores = np.random.default_rng(2).normal(0.3, 1.0, 1000)
    low, high = bootstrap_interval(scores, lambda sums: sums / scores.size, seed=0, n_boot=2000)
    half = 1.96 * scores.std() / math.sqrt(scores.size)
    assert abs((high - low) / 2 - half) < 0.1 * half
    assert all(math.isnan(x) for x in percentile_interval(np.array([2.0, 2.0, 2.0])))


def test_a_pooled_ratio_gets_the_hull_of_its_bootstrap_and_wilson():
    # 40 reports: 39 claim one finding each, all supported; one claims 3, one of them unsupported
    counts = np.array([[0, 1]] * 39 + [[1, 3]], dtype=float)  # (unsupported, claimed)
    low, high = ratio_interval(counts, lambda s: s[..., 0], lambda s: s[..., 1], seed=0, n_boot=2000)
    boot = bootstrap_interval(counts, lambda s: s[..., 0] / s[..., 1], seed=0, n_boot=2000)
    wilson = wilson_interval(1, 42)
    assert (low, high) == pytest.approx(hull(boot, wilson))
    assert low <= min(boot[0], wilson[0]) and high >= max(boot[1], wilson[1])
    # a rate of 0 claimed findings is still an interval (Wilson), not a point
    zero = np.array([[0, 1]] * 40, dtype=float)
    assert ratio_interval(zero, lambda s: s[..., 0], lambda s: s[..., 1], seed=0, n_boot=200) == pytest.approx(
        wilson_interval(0, 40))


def test_normal_interval():
    assert normal_interval(0.5, 0.1) == pytest.approx((0.5 - 0.196, 0.5 + 0.196), abs=1e-3)
