"""Metric intervals: seeded, they contain the value, and proportions get Wilson (never narrower at the boundary)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.metrics import get_metric
from harness.metrics.base import mean_result
from harness.stats.intervals import wilson_interval


def test_same_seed_same_interval_and_contains_value():
    scores = np.random.default_rng(1).random(200)
    a = mean_result("m", scores, seed=7, n_boot=500)
    b = mean_result("m", scores, seed=7, n_boot=500)
    c = mean_result("m", scores, seed=8, n_boot=500)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low < a.value < a.ci_high


def test_no_samples_or_no_resamples_give_nan():
    assert math.isnan(mean_result("m", [], n_boot=10).ci_low)
    result = mean_result("m", [1.0, 0.0], n_boot=0)
    assert result.value == 0.5 and math.isnan(result.ci_low)


def test_metric_ci_contains_the_value():
    preds = ["yes", "no", "no", "yes", "yes", "no"] * 5
    refs = ["yes", "yes", "no", "no", "yes", "no"] * 5
    a = get_metric("closed_accuracy")(preds, refs, seed=3)
    assert a.ci_low <= a.value <= a.ci_high


def test_every_accuracy_is_a_proportion_with_a_wilson_interval():
    # 645 of 645: Wilson with z = 1.96 -> center (1 + z²/2n) / (1 + z²/n), half-width (z²/2n) / (1 + z²/n).
    z2, n = 1.959963984540054 ** 2, 645
    half = (z2 / (2 * n)) / (1 + z2 / n)
    center = (1 + z2 / (2 * n)) / (1 + z2 / n)
    hits = get_metric("closed_accuracy")(["yes"] * n, ["yes"] * n, n_boot=200)
    assert hits.value == 1.0 and hits.ci_low == pytest.approx(center - half) and hits.ci_high == 1.0
    misses = get_metric("closed_accuracy")(["no"] * n, ["yes"] * n, n_boot=200)
    assert misses.ci_low == pytest.approx(0.0, abs=1e-12) and misses.ci_high == pytest.approx(1 - (center - half))
    # 644 of 645 (not constant): Wilson too, wider than 645/645 (the percentile bootstrap gave [0.9953, 1.0])
    one_wrong = get_metric("closed_accuracy")(["no"] + ["yes"] * (n - 1), ["yes"] * n, n_boot=200)
    assert (one_wrong.ci_low, one_wrong.ci_high) == pytest.approx(wilson_interval(644, 645))
    assert one_wrong.ci_high - one_wrong.ci_low > hits.ci_high - hits.ci_low


def test_constant_non_binary_scores_get_no_interval():
    result = mean_result("m", [0.5] * 40, n_boot=200)
    assert result.value == 0.5 and math.isnan(result.ci_low) and math.isnan(result.ci_high)


def test_a_rate_with_nothing_claimed_gives_no_interval():
    # No report claims a finding: the hallucination rate has no denominator in any resample.
    result = get_metric("hallucination_rate")(["No acute disease."] * 5, ["Normal chest."] * 5, n_boot=100)
    assert result.value == 0.0 and math.isnan(result.ci_low)


def test_pooled_finding_metrics_are_never_narrower_than_wilson_on_their_counts():
    from harness.metrics.synth_findings import finding_counts

    ref = "The heart size is normal. There is a small nodule in the right upper lung. There is no pneumothorax."
    right = ref
    wrong = "The heart size is normal. There is a small nodule in the left upper lung. There is no pneumothorax."
    preds, refs = [right] * 60 + [wrong], [ref] * 61
    counts = finding_counts(preds, refs).sum(axis=0)  # TP 60, FP 1, FN 1
    precision = get_metric("finding_precision")(preds, refs, n_boot=500)
    low, high = wilson_interval(counts[0], counts[0] + counts[1])
    assert precision.ci_low <= low and precision.ci_high >= high
    f1 = get_metric("finding_f1")(preds, refs, n_boot=500)  # F1 as TP / (TP + (FP + FN) / 2): 60 of 61
    assert f1.ci_low <= wilson_interval(60, 61)[0]
    false = get_metric("false_finding_rate")(preds, refs, n_boot=500)  # 1 report of 61: a proportion
    assert (false.ci_low, false.ci_high) == pytest.approx(wilson_interval(1, 61))
