import numpy as np
import pytest
from scipy.stats import binomtest

from harness.regress import stats


@pytest.mark.parametrize("b,c", [(0, 0), (3, 0), (10, 2), (7, 8), (40, 25), (1, 300)])
def test_mcnemar_exact_matches_scipy_binomial_test(b, c):
    base = [1] * b + [0] * c + [1] * 5 + [0] * 4
    cand = [0] * b + [1] * c + [1] * 5 + [0] * 4
    result = stats.mcnemar_exact(base, cand)
    assert (result.baseline_only, result.candidate_only) == (b, c)
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)


def test_mcnemar_rejects_non_binary_scores():
    with pytest.raises(ValueError):
        stats.mcnemar_exact([0.5, 1.0], [1.0, 1.0])


def test_paired_bootstrap_is_seeded_and_centred_on_the_difference():
    rng = np.random.default_rng(0)
    base = rng.random(200)
    cand = base - 0.1 + rng.normal(0, 0.05, 200)
    a = stats.paired_bootstrap(base, cand, seed=3, n_boot=2000)
    b = stats.paired_bootstrap(base, cand, seed=3, n_boot=2000)
    assert a == b
    assert a.delta == pytest.approx(float((cand - base).mean()))
    assert a.ci_low < a.delta < a.ci_high < 0
    assert a.p_value < 0.001


def test_paired_bootstrap_of_identical_scores_is_not_significant():
    scores = np.random.default_rng(0).random(50)
    result = stats.paired_bootstrap(scores, scores, n_boot=500)
    assert result.delta == 0 and result.p_value == 1.0


def test_holm_adjustment_by_hand():
    # sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04, kept monotone)
    assert stats.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert stats.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
