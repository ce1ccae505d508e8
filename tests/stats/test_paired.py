"""The paired bootstrap of one metric (the gate's statistic): seeded, centred, the interval and p agree."""

import numpy as np
import pytest

from harness.stats.items import mean_statistics
from harness.stats.paired import bootstrap_p_value, paired_bootstrap


def _mean_stats(scores):
    scores = np.asarray(scores, dtype=float)
    return mean_statistics(np.stack([scores, np.ones_like(scores)], axis=1))


def test_paired_bootstrap_is_seeded_and_centred_on_the_difference():
    rng = np.random.default_rng(0)
    base = rng.random(200)
    cand = base - 0.1 + rng.normal(0, 0.05, 200)
    a = paired_bootstrap(_mean_stats(base), _mean_stats(cand), seed=3, n_boot=2000)
    assert a == paired_bootstrap(_mean_stats(base), _mean_stats(cand), seed=3, n_boot=2000)
    assert a.delta == pytest.approx(float((cand - base).mean()))
    assert a.ci_low < a.delta < a.ci_high < 0 and a.p_value < 0.001
    # the standard error of a mean difference: sd(d) / sqrt(n)
    assert a.se_delta == pytest.approx((cand - base).std() / np.sqrt(200), rel=0.1)


def test_identical_scores_give_p_one_and_a_point_interval():
    scores = np.random.default_rng(0).random(50)
    result = paired_bootstrap(_mean_stats(scores), _mean_stats(scores), n_boot=500)
    assert result.delta == 0 and result.p_value == 1.0 and (result.ci_low, result.ci_high) == (0, 0)


def test_p_is_the_percentile_interval_inverted():
    # 1 of 999 resampled differences at or below 0: p = 2 (1 + 1) / 1000
    draws = np.concatenate([[-0.1], np.full(998, 0.2)])
    assert bootstrap_p_value(draws) == pytest.approx(4 / 1000)
    assert bootstrap_p_value(np.zeros(10)) == 1.0
