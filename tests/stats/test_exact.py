"""Exact tests: McNemar and the binomial sign test through scipy, at any number of discordant pairs."""

import pytest
from scipy.stats import binomtest

from harness.stats.exact import binomial_two_sided_p, mcnemar_exact


@pytest.mark.parametrize("b,c", [(0, 0), (3, 0), (10, 2), (7, 8), (40, 25), (1, 300)])
def test_mcnemar_exact_matches_scipy_binomial_test(b, c):
    base = [1] * b + [0] * c + [1] * 5 + [0] * 4
    cand = [0] * b + [1] * c + [1] * 5 + [0] * 4
    result = mcnemar_exact(base, cand)
    assert (result.baseline_only, result.candidate_only) == (b, c)
    expected = 1.0 if b + c == 0 else binomtest(b, b + c, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-9)


def test_thousands_of_discordant_pairs_do_not_overflow():
    """The old p was 2.0 * tail / 2**n: a float overflow from 1,024 discordant items on."""
    result = mcnemar_exact([1] * 2500 + [0] * 10, [0] * 2500 + [0] * 10)
    assert result.baseline_only == 2500 and 0 <= result.p_value < 1e-300
    assert binomial_two_sided_p(1250, 2500) == pytest.approx(1.0)
    assert binomial_two_sided_p(1100, 2500) == pytest.approx(binomtest(1100, 2500).pvalue)
    # by hand: 1 of 3 fair flips, two-sided: P(X <= 1) + P(X >= 2) = 1
    assert binomial_two_sided_p(0, 3) == pytest.approx(2 / 8)


def test_mcnemar_rejects_non_binary_scores():
    with pytest.raises(ValueError):
        mcnemar_exact([0.5, 1.0], [1.0, 1.0])
