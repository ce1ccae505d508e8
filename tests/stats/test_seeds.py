"""Arms of several training seeds compared over items and seeds (harness study's test), by hand and by
simulation: the interval excludes 0 exactly when p < 0.05, seed variance can take away an item-level
significance, and A/A comparisons are calibrated."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import t as student_t

from harness.stats.calibration import excess_false_positives_p, uniformity_p
from harness.stats.items import mean_statistics
from harness.stats.seeds import arms, compare_arms, seed_terms

N = 1000


def _accuracy(right) -> object:
    right = np.asarray(right, dtype=float)
    return mean_statistics(np.stack([right, np.ones_like(right)], axis=1))


def _first(k: int) -> np.ndarray:
    return (np.arange(N) < k).astype(float)


def test_seed_variance_takes_away_an_item_level_significance_by_hand():
    """Three seeds at 50%, 70% and 90% accuracy on 1,000 items against a base at 60%: the items alone say
    +10 points with p < 1e-6; the seeds say the training procedure moves the metric by 20 points."""
    seeds = [_first(500), _first(700), _first(900)]  # nested: seed s is right on the first k_s items
    base = np.roll(_first(600), 50)
    method, reference = arms([[_accuracy(s) for s in seeds], [_accuracy(base)]], seed=0, n_boot=4000)
    result = compare_arms(method, reference)
    assert result.delta == pytest.approx(0.7 - 0.6)
    # by hand: s² = var(0.5, 0.7, 0.9) = 0.04; the item-level noise of the seeds, w, is the variance over
    # items of each seed's deviation from the seeds' mean, / n, times S/(S-1)
    deviation = np.stack(seeds) - np.mean(seeds, axis=0)
    w = 3 / 2 * float(np.mean(deviation.var(axis=1))) / N
    between, within = seed_terms(method)
    assert between == pytest.approx(0.04) and within == pytest.approx(w, rel=0.1)
    v = float(np.var(np.mean(seeds, axis=0) - base)) / N  # the bootstrap variance of a mean difference
    se = math.sqrt(v + (0.04 - w) / 3)  # se_item² plus the training variance over 3 seeds
    df = se**4 / ((0.04 / 3) ** 2 / 2)
    assert result.se == pytest.approx(se, rel=0.05) and result.df == pytest.approx(df, rel=0.1)
    assert result.p_value == pytest.approx(2 * student_t.sf(0.1 / se, df), abs=0.02)
    assert result.p_value > 0.05 and result.p_item < 1e-6 and result.item_level_only
    assert result.ci_low < 0 < result.ci_high
    assert result.seed_variance[0] == pytest.approx(0.04 - w, rel=0.1) and result.seed_variance[1] is None


def test_the_interval_excludes_zero_exactly_when_p_is_below_alpha():
    rng = np.random.default_rng(5)
    for trial in range(40):
        shift = rng.uniform(-0.08, 0.08)
        runs = [[_accuracy(rng.random(300) < 0.6 + shift + rng.normal(0, 0.03)) for _ in range(int(rng.integers(1, 4)))]
                for _ in range(2)]
        a, b = arms(runs, seed=trial, n_boot=300)
        result = compare_arms(a, b)
        assert (result.ci_low > 0 or result.ci_high < 0) == (result.p_value < 0.05), trial
        assert result.ci_low <= result.delta <= result.ci_high
        assert result.p_value >= result.p_item - 1e-12  # counting the seeds never makes a difference surer


def test_one_seed_per_arm_is_the_item_level_test_and_says_so():
    rng = np.random.default_rng(0)
    a, b = arms([[_accuracy(rng.random(500) < 0.7)], [_accuracy(rng.random(500) < 0.6)]], seed=0, n_boot=1000)
    result = compare_arms(a, b)
    assert result.p_value == result.p_item and math.isinf(result.df) and not result.seeds_estimated
    assert "seed variance not estimated" in result.method()
    # the MDE is (z_0.975 + z_0.8) times the standard error
    assert result.mde == pytest.approx(2.8016 * result.se, rel=1e-3)


def test_identical_arms_give_p_one():
    same = _accuracy(_first(600))
    a, b = arms([[same, same], [same]], seed=0, n_boot=200)
    result = compare_arms(a, b)
    assert result.delta == 0 and result.p_value == 1.0 and result.ci_low == result.ci_high == 0


@pytest.mark.parametrize("tau", [0.0, 0.5])
def test_aa_comparisons_are_calibrated_in_simulation(tau):
    """A/A: two arms of 3 seeds of one simulated method (per-item logits plus a seed effect of sd ``tau`` plus
    per-item noise), 200 times. The item-only test ignores the seed effect and is far too liberal when it
    is real; the test over items and seeds keeps about alpha (Welch is slightly conservative at 3 seeds)."""
    rng = np.random.default_rng(11)
    logits = rng.normal(1.5, 1.5, 300)

    def run():
        shift = rng.normal(0, tau)
        return _accuracy(rng.random(300) < 1 / (1 + np.exp(-(logits + shift + rng.normal(0, 1, 300)))))

    p, p_item = [], []
    for trial in range(200):
        a, b = arms([[run() for _ in range(3)], [run() for _ in range(3)]], seed=trial, n_boot=300)
        result = compare_arms(a, b)
        p.append(result.p_value)
        p_item.append(result.p_item)
    false_positives = sum(x < 0.05 for x in p)
    print(f"tau {tau}: {false_positives}/200 false positives, KS p {uniformity_p(p):.3f}; item-only "
          f"{sum(x < 0.05 for x in p_item)}/200")
    assert excess_false_positives_p(false_positives, 200) > 0.01  # not more than alpha allows
    assert false_positives >= 2  # and not a test that cannot fail
    if tau:
        assert sum(x < 0.05 for x in p_item) > 50  # the item-level test alone: ~50% false positives
