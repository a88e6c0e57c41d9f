"""Paired comparisons: against scipy's paired t-test, a hand-counted sign-flip test and Holm's procedure."""

import math

import pytest
from scipy import stats

from dtlib.stats import holm, mean_sd, paired_difference


def test_paired_difference_equals_scipys_paired_t_test_and_its_interval():
    a = [49.1, 49.8, 50.2, 49.5, 50.0, 49.7, 49.9, 50.4, 49.6, 50.1]
    b = [48.9, 49.0, 49.9, 49.6, 49.2, 49.1, 49.8, 49.7, 49.0, 49.5]
    d = paired_difference(a, b)
    ref = stats.ttest_rel(a, b)
    diffs = [x - y for x, y in zip(a, b)]
    assert math.isclose(d["mean"], sum(diffs) / 10) and math.isclose(d["t"], ref.statistic)
    assert math.isclose(d["p_t"], ref.pvalue, rel_tol=1e-9)
    low, high = ref.confidence_interval(0.95)
    assert math.isclose(d["ci_low"], low, rel_tol=1e-9) and math.isclose(d["ci_high"], high, rel_tol=1e-9)


def test_sign_flip_p_counts_the_sign_patterns_as_extreme_as_the_data():
    # Three positive differences: only all-plus and all-minus reach |sum| = 6 of 2^3 patterns.
    assert paired_difference([3, 4, 5], [1, 2, 3])["p_sign_flip"] == 2 / 8
    # With 3 seeds no sign-flip test can go below 2/8: why 3 seeds never show "beats".
    assert paired_difference([1, 2, 3], [0, 0, 0])["p_sign_flip"] == 0.25


def test_holm_adjusts_step_down_and_keeps_order():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_mean_sd_and_bad_input():
    assert mean_sd([1.0, 3.0]) == (2.0, math.sqrt(2))
    assert mean_sd([4.0]) == (4.0, 0.0)
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference([1.0, 2.0], [1.0])
