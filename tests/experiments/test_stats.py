from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from fyp.experiments.stats import (
    SRM_THRESHOLD,
    cuped,
    cuped_theta,
    delta_ratio,
    gini,
    srm_check,
    welch,
)


def test_srm_fires_on_a_52_48_split_of_20000_users() -> None:
    res = srm_check({"a": 10_400, "b": 9_600}, {"a": 0.5, "b": 0.5})
    # By hand: expected 10,000 each, chi2 = 2 * 400^2 / 10,000 = 32.
    assert res.chi2 == pytest.approx(32.0)
    assert res.p_value == pytest.approx(sps.chisquare([10_400, 9_600]).pvalue)
    assert res.p_value < SRM_THRESHOLD
    assert res.mismatch


def test_srm_quiet_on_a_fair_split_and_honours_weights() -> None:
    fair = srm_check({"a": 10_050, "b": 9_950}, {"a": 1, "b": 1})
    assert fair.chi2 == pytest.approx(0.5)  # 2 * 50^2 / 10,000
    assert not fair.mismatch
    # 3:1 weights: 15,000 / 5,000 is exactly as planned, 10,000 / 10,000 is badly off.
    assert srm_check({"c": 15_000, "t": 5_000}, {"c": 3, "t": 1}).chi2 == pytest.approx(0.0)
    skewed = srm_check({"c": 10_000, "t": 10_000}, {"c": 3, "t": 1})
    ref = sps.chisquare([10_000, 10_000], f_exp=[15_000, 5_000])
    assert skewed.chi2 == pytest.approx(ref.statistic)
    assert skewed.mismatch
    assert skewed.expected == {"c": 15_000.0, "t": 5_000.0}


def test_srm_with_no_users_is_not_a_mismatch() -> None:
    res = srm_check({}, {"a": 1, "b": 1})
    assert not res.mismatch
    assert res.p_value == 1.0


def test_welch_matches_scipy() -> None:
    rng = np.random.default_rng(7)
    a = rng.exponential(30.0, 400)
    b = rng.exponential(33.0, 250) + rng.normal(0, 5, 250)
    res = welch(a, b)
    ref = sps.ttest_ind(b, a, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert res.status == "ok"
    assert res.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert res.ci_low == pytest.approx(ci.low, rel=1e-9)
    assert res.ci_high == pytest.approx(ci.high, rel=1e-9)
    assert res.diff == pytest.approx(b.mean() - a.mean())
    assert res.rel_lift == pytest.approx((b.mean() - a.mean()) / a.mean())
    assert res.significant == (ref.pvalue < 0.05)


def test_welch_by_hand() -> None:
    # a: mean 2, var 1; b: mean 5.5, var 5/3. se^2 = 1/3 + 5/12 = 3/4.
    res = welch([1, 2, 3], [4, 5, 6, 7])
    assert res.diff == pytest.approx(3.5)
    df = 0.75**2 / ((1 / 3) ** 2 / 2 + (5 / 12) ** 2 / 3)
    half = sps.t.ppf(0.975, df) * math.sqrt(0.75)
    assert res.ci_low == pytest.approx(3.5 - half)
    assert res.ci_high == pytest.approx(3.5 + half)
    assert res.control == 2.0 and res.treatment == 5.5


def test_not_enough_data_below_the_minimum() -> None:
    res = welch(np.ones(50), np.ones(49), min_users=50)
    assert res.status == "not_enough_data"
    assert res.p_value is None and res.diff is None
    assert res.n_treatment == 49
    assert res.to_dict()["status"] == "not_enough_data"
    assert welch([1.0], [2.0, 3.0]).status == "not_enough_data"  # a variance needs two
    ratio = delta_ratio([1, 2], [1, 1], [1, 2, 3], [1, 1, 1], min_users=3)
    assert ratio.status == "not_enough_data"
    assert ratio.control == 1.5


def test_delta_ratio_by_hand() -> None:
    # control: ratio 6/6 = 1; var(num) = 1, var(den) = 0, cov = 0 -> var(R) = 1 / (3 * 2^2).
    # treatment: every user at exactly 2 -> var 0.
    res = delta_ratio([1, 2, 3], [2, 2, 2], [2, 2, 2, 2], [1, 1, 1, 1])
    se = math.sqrt(1 / 12)
    assert res.control == pytest.approx(1.0)
    assert res.treatment == pytest.approx(2.0)
    assert res.diff == pytest.approx(1.0)
    assert res.ci_low == pytest.approx(1.0 - 1.959964 * se, rel=1e-6)
    assert res.ci_high == pytest.approx(1.0 + 1.959964 * se, rel=1e-6)
    assert res.p_value == pytest.approx(2 * sps.norm.sf(1.0 / se))


def test_delta_ratio_with_unit_denominators_is_a_test_of_means() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(10, 2, 500), rng.normal(10.3, 2, 500)
    res = delta_ratio(a, np.ones(500), b, np.ones(500))
    se = math.sqrt(a.var(ddof=1) / 500 + b.var(ddof=1) / 500)
    assert res.ci_high - res.ci_low == pytest.approx(2 * 1.959964 * se, rel=1e-6)  # type: ignore[operator]


def test_delta_ratio_covers_the_truth_about_95_percent_of_the_time() -> None:
    # Users with varying numbers of plays, completion 0.4 vs 0.4: A/A; intervals should cover 0.
    rng = np.random.default_rng(11)
    covered = 0
    trials = 400
    for _ in range(trials):
        dens = [rng.integers(1, 30, 200) for _ in range(2)]
        nums = [rng.binomial(d, rng.beta(4, 6, d.size)) for d in dens]
        r = delta_ratio(nums[0], dens[0], nums[1], dens[1])
        assert r.ci_low is not None and r.ci_high is not None
        covered += r.ci_low <= 0.0 <= r.ci_high
    assert 0.91 <= covered / trials <= 0.99


def test_cuped_reduces_variance_and_keeps_the_effect() -> None:
    rng = np.random.default_rng(5)
    n = 2_000
    habit = rng.gamma(2.0, 50.0, 2 * n)  # each user's own level, seen before and during
    pre = habit + rng.normal(0, 10, 2 * n)
    post = habit + rng.normal(0, 10, 2 * n)
    post[n:] += 5.0  # the treatment's true effect
    res = cuped(post[:n], post[n:], pre[:n], pre[n:])
    raw = welch(post[:n], post[n:])
    assert res.method == "welch+cuped"
    assert res.variance_reduction is not None and res.variance_reduction > 0.8
    assert res.ci_high - res.ci_low < 0.5 * (raw.ci_high - raw.ci_low)  # type: ignore[operator]
    assert res.ci_low < 5.0 < res.ci_high  # type: ignore[operator]
    assert res.control == pytest.approx(post[:n].mean())  # reported means are the raw ones
    slope = np.polyfit(pre, post, 1)[0]
    # The pooled theta is the OLS slope up to the (small) treatment shift inside Y.
    assert res.cuped_theta == pytest.approx(slope, rel=0.01)


def test_cuped_theta_by_hand_and_useless_covariates() -> None:
    # y = 2x exactly -> theta 2.
    assert cuped_theta([[2, 4], [6, 8]], [[1, 2], [3, 4]]) == pytest.approx(2.0)
    assert cuped_theta([[1, 2, 3]], [[0, 0, 0]]) == 0.0  # nobody had a pre-period
    rng = np.random.default_rng(1)
    y = rng.normal(0, 1, (2, 3000))
    noise = rng.normal(0, 1, (2, 3000))
    res = cuped(y[0], y[1], noise[0], noise[1])
    assert res.variance_reduction is not None and abs(res.variance_reduction) < 0.01
    with pytest.raises(ValueError):
        cuped([1, 2, 3], [1, 2, 3], [1, 2], [1, 2, 3])


def test_gini() -> None:
    assert gini([5, 5, 5, 5]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 1]) == pytest.approx(0.75)
    assert gini([]) == 0.0
    assert gini([1, 2, 3, 4]) == pytest.approx(0.25)
