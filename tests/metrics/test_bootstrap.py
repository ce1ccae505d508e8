"""Bootstrap confidence intervals: seeded, and they contain the value."""

from __future__ import annotations

import math

import numpy as np

from harness.metrics import get_metric
from harness.metrics.bootstrap import bootstrap_ci, mean_result


def test_same_seed_same_interval_and_contains_value():
    scores = np.random.default_rng(1).random(200)
    a = mean_result("m", scores, seed=7, n_boot=500)
    b = mean_result("m", scores, seed=7, n_boot=500)
    c = mean_result("m", scores, seed=8, n_boot=500)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low < a.value < a.ci_high


def test_interval_width_matches_normal_theory_for_a_mean():
    scores = np.random.default_rng(2).integers(0, 2, 1000).astype(float)
    low, high = bootstrap_ci(scores, lambda sums: sums / scores.size, seed=0, n_boot=2000)
    p = scores.mean()
    half = 1.96 * math.sqrt(p * (1 - p) / len(scores))
    assert abs((high - low) / 2 - half) < 0.2 * half


def test_no_samples_or_no_resamples_give_nan():
    assert all(math.isnan(x) for x in bootstrap_ci(np.array([]), lambda sums: sums, seed=0, n_boot=10))
    result = mean_result("m", [1.0, 0.0], n_boot=0)
    assert result.value == 0.5 and math.isnan(result.ci_low)


def test_metric_ci_is_seeded():
    preds = ["yes", "no", "no", "yes", "yes", "no"] * 5
    refs = ["yes", "yes", "no", "no", "yes", "no"] * 5
    metric = get_metric("closed_accuracy")
    a, b = metric(preds, refs, seed=3), metric(preds, refs, seed=3)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.ci_low <= a.value <= a.ci_high
