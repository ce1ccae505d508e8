"""Holm and Benjamini-Hochberg adjustments by hand."""

import pytest

from harness.stats.multiplicity import adjust, benjamini_hochberg, holm


def test_holm_by_hand():
    # sorted p: 0.01 (x3 = 0.03), 0.02 (x2 = 0.04), 0.04 (x1 = 0.04, kept monotone)
    assert holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.02, 0.03, 0.2 with m = 4: 0.04, 0.04, 0.04, 0.2 (each min over the ones above it)
    assert benjamini_hochberg([0.2, 0.01, 0.03, 0.02]) == pytest.approx([0.2, 0.04, 0.04, 0.04])
    assert benjamini_hochberg([0.9]) == pytest.approx([0.9])


def test_adjust_skips_missing_values():
    assert adjust([None, 0.01, 0.04, None], "holm") == [None, pytest.approx(0.02), pytest.approx(0.04), None]
    assert adjust([0.01, 0.02], "none") == [0.01, 0.02]
    with pytest.raises(ValueError):
        adjust([0.1], "bonferroni-ish")
