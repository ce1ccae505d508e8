"""Bootstrap confidence intervals: seeded, and they contain the value."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import get_metric
from harness.metrics.bootstrap import bootstrap_ci, mean_result, wilson_interval


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


def test_constant_hits_get_a_wilson_interval_not_a_point():
    # 645 of 645: Wilson with z = 1.96 -> center (1 + z²/2n) / (1 + z²/n), half-width (z²/2n) / (1 + z²/n).
    z2, n = 1.959963984540054 ** 2, 645
    half = (z2 / (2 * n)) / (1 + z2 / n)
    center = (1 + z2 / (2 * n)) / (1 + z2 / n)
    hits = get_metric("closed_accuracy")(["yes"] * n, ["yes"] * n, n_boot=200)
    assert hits.value == 1.0 and hits.ci_low == pytest.approx(center - half) and hits.ci_high == 1.0
    assert hits.ci_low == pytest.approx(0.99408, abs=1e-5)
    misses = get_metric("closed_accuracy")(["no"] * n, ["yes"] * n, n_boot=200)
    assert misses.ci_low == pytest.approx(0.0, abs=1e-12) and misses.ci_high == pytest.approx(1 - (center - half))
    assert wilson_interval(3, 10) == pytest.approx((0.1078, 0.6032), abs=1e-4)  # textbook value for 3/10


def test_constant_non_binary_scores_get_no_interval():
    result = mean_result("m", [0.5] * 40, n_boot=200)
    assert result.value == 0.5 and math.isnan(result.ci_low) and math.isnan(result.ci_high)


def test_a_bootstrap_with_one_value_in_every_resample_gives_no_interval():
    # No report claims a finding: hallucination rate 0 in every resample.
    result = get_metric("hallucination_rate")(["No acute disease."] * 5, ["Normal chest."] * 5, n_boot=100)
    assert result.value == 0.0 and math.isnan(result.ci_low)
