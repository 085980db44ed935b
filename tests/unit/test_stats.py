"""Statistics for evaluation: unbiased pass@k, Student-t intervals over runs, the paired t over seeds with
its MDE and TOST, paired bootstrap over (seeds ×) items, and the sign-flip permutation test, each against
values worked out independently (scipy / statsmodels references hard-coded from a scratch run)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acqsynth.evaluation import stats
from acqsynth.evaluation.stats import (
    Estimate,
    bootstrap_mean,
    item_mde,
    mde,
    paired_bootstrap,
    paired_t,
    pass_at_k,
    permutation_test,
    t_interval,
    tost,
    wilson,
)


def comb_pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k straight from the definition, in exact integer arithmetic."""
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def exact_sign_flip_p(diffs: list[int]) -> float:
    """Exact two-sided sign-flip p-value for integer differences, by counting signed sums (no enumeration)."""
    sums = Counter({0: 1})
    for x in diffs:
        nxt: Counter[int] = Counter()
        for s, count in sums.items():
            nxt[s + x] += count
            nxt[s - x] += count
        sums = nxt
    observed = abs(sum(diffs))
    return sum(count for s, count in sums.items() if abs(s) >= observed) / 2 ** len(diffs)


# --- pass@k --------------------------------------------------------------------------------------

CASES = [
    (n, c, k) for n in (1, 2, 3, 5, 10, 20, 37, 100, 200) for c in range(n + 1) for k in (1, 2, 5, 10, 50, n)
]
CASES = [(n, c, k) for n, c, k in CASES if k <= n]


def test_pass_at_k_matches_combinatorics():
    for n, c, k in CASES:
        assert pass_at_k(n, c, k) == pytest.approx(comb_pass_at_k(n, c, k), rel=1e-12, abs=1e-12), (n, c, k)


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (10, 0, 1, 0.0),  # nothing correct
        (10, 0, 10, 0.0),
        (10, 10, 1, 1.0),  # everything correct
        (10, 3, 1, 0.3),  # pass@1 is the share correct
        (10, 3, 8, 1.0),  # n - c = 7 < k = 8: every draw of 8 holds a correct one
        (5, 1, 5, 1.0),
        (4, 2, 2, 1 - 1 / 6),  # C(2, 2) / C(4, 2) = 1/6
        (5, 2, 2, 0.7),  # 1 - C(3, 2) / C(5, 2) = 1 - 3/10
    ],
)
def test_pass_at_k_known_values(n, c, k, expected):
    got = pass_at_k(n, c, k)
    assert isinstance(got, float)
    assert got == pytest.approx(expected, abs=1e-15)


def test_pass_at_k_large_n_is_finite_and_exact():
    assert pass_at_k(1000, 1, 1) == pytest.approx(0.001, rel=1e-12)
    assert pass_at_k(1000, 17, 100) == pytest.approx(comb_pass_at_k(1000, 17, 100), rel=1e-12)


def test_pass_at_k_vectorised_equals_scalar_calls():
    n = np.array([10, 10, 20, 50, 7, 100])
    c = np.array([0, 10, 3, 25, 6, 1])
    got = pass_at_k(n, c, 5)
    assert isinstance(got, np.ndarray)
    assert got.shape == n.shape
    assert got.tolist() == [pass_at_k(int(ni), int(ci), 5) for ni, ci in zip(n, c, strict=True)]
    broadcast = pass_at_k(20, np.array([[0, 5], [10, 20]]), 3)
    assert broadcast.shape == (2, 2)
    assert broadcast[1, 0] == pytest.approx(comb_pass_at_k(20, 10, 3), rel=1e-12)


@pytest.mark.parametrize(
    ("n", "c", "k", "match"),
    [
        (10, 3, 0, "k=0"),
        (5, 3, 6, r"k=6 .*n=5"),
        (10, -1, 1, "c=-1"),
        (10, 11, 1, r"c=11 .*n=10"),
        (np.array([10, 3]), np.array([1, 1]), 4, r"k=4 .*n=3"),
        (np.array([10, 10]), np.array([1, 12]), 1, "c=12"),
        (10, 2.5, 1, "c"),
    ],
)
def test_pass_at_k_errors_name_the_bad_value(n, c, k, match):
    with pytest.raises(ValueError, match=match):
        pass_at_k(n, c, k)


@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_is_a_probability_monotone_in_k_and_c(nck):
    n, c, k = nck
    p = pass_at_k(n, c, k)
    assert 0.0 <= p <= 1.0
    if k < n:
        assert pass_at_k(n, c, k + 1) >= p - 1e-12
    if c < n:
        assert pass_at_k(n, c + 1, k) >= p - 1e-12


# --- t interval ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("level", "t_quantile"), [(0.95, 4.302652729749464), (0.90, 2.919985580353726)])
def test_t_interval_known_half_width(level, t_quantile):
    # With 2 degrees of freedom the quantile has a closed form, t = q·sqrt(2 / (1 - q²)) with q = level.
    assert t_quantile == pytest.approx(level * math.sqrt(2 / (1 - level**2)), rel=1e-14)
    est = t_interval([1.0, 2.0, 3.0], level=level)
    half = t_quantile * 1.0 / math.sqrt(3)  # sample std of [1, 2, 3] is 1
    assert est.mean == 2.0
    assert est.lo == pytest.approx(2.0 - half, rel=1e-12)
    assert est.hi == pytest.approx(2.0 + half, rel=1e-12)
    assert (est.n, est.level) == (3, level)


def test_t_interval_wider_than_normal_for_few_runs():
    values = np.array([0.61, 0.64, 0.58, 0.66, 0.60])
    est = t_interval(values)
    normal_half = 1.959963984540054 * values.std(ddof=1) / math.sqrt(5)
    assert est.hi - est.mean > normal_half
    assert est.hi - est.mean == pytest.approx(
        2.7764451051977934 * values.std(ddof=1) / math.sqrt(5), rel=1e-12
    )


def test_t_interval_single_run_has_no_interval():
    est = t_interval(np.array([0.7]))
    assert est.mean == 0.7 and est.n == 1
    assert math.isnan(est.lo) and math.isnan(est.hi)


def test_t_interval_constant_runs_give_a_point():
    assert t_interval([0.5, 0.5, 0.5]) == Estimate(0.5, 0.5, 0.5, 3, 0.95)


@pytest.mark.parametrize("values", [[1.0, float("nan"), 3.0], [], [[1.0, 2.0], [3.0, 4.0]]])
def test_t_interval_rejects_nan_empty_and_2d(values):
    with pytest.raises(ValueError):
        t_interval(values)


# --- paired bootstrap ----------------------------------------------------------------------------


def test_paired_bootstrap_constant_difference_is_degenerate():
    rng = np.random.default_rng(1)
    b = rng.random(50)
    est = paired_bootstrap(b + 0.25, b)
    assert est.mean == pytest.approx(0.25, abs=1e-12)
    assert est.lo == pytest.approx(0.25, abs=1e-12)
    assert est.hi == pytest.approx(0.25, abs=1e-12)
    b2 = rng.random((3, 40))
    est2 = paired_bootstrap(b2 + 0.25, b2)
    assert (est2.mean, est2.lo, est2.hi) == pytest.approx((0.25, 0.25, 0.25), abs=1e-12)


def test_paired_bootstrap_identical_methods_give_zero():
    a = np.random.default_rng(2).random((4, 30))
    assert paired_bootstrap(a, a) == Estimate(0.0, 0.0, 0.0, 30, 0.95)
    assert paired_bootstrap(a[0], a[0]) == Estimate(0.0, 0.0, 0.0, 30, 0.95)


def test_paired_bootstrap_1d_known_mean():
    a = np.array([1, 1, 1, 0, 1, 1, 0, 1, 1, 1] * 10, dtype=float)  # 80 correct
    b = np.array([1, 0, 1, 0, 0, 1, 0, 1, 0, 1] * 10, dtype=float)  # 50 correct
    est = paired_bootstrap(a, b)
    assert est.mean == 0.3
    assert est.lo <= est.mean <= est.hi
    assert 0.15 < est.lo < 0.3 < est.hi < 0.45
    assert est.n == 100
    # 1-D paired bootstrap is the item bootstrap of the differences, with the same draws.
    assert est == bootstrap_mean(a - b)


def test_paired_bootstrap_is_deterministic_under_seed():
    rng = np.random.default_rng(3)
    a, b = rng.random((3, 60)), rng.random((3, 60))
    assert paired_bootstrap(a, b, seed=7) == paired_bootstrap(a, b, seed=7)
    assert paired_bootstrap(a, b, seed=7) != paired_bootstrap(a, b, seed=8)
    assert paired_bootstrap(a[0], b[0], seed=7) == paired_bootstrap(a[0], b[0], seed=7)


def test_paired_bootstrap_2d_is_the_mean_of_resampled_matrices():
    rng = np.random.default_rng(4)
    d = rng.normal(size=(3, 25))
    est = paired_bootstrap(d, np.zeros_like(d), n_boot=500, seed=11)
    draws = np.random.default_rng(11)
    rows = draws.integers(0, 3, size=(500, 3))
    cols = draws.integers(0, 25, size=(500, 25))
    means = np.array([d[np.ix_(r, c)].mean() for r, c in zip(rows, cols, strict=True)])
    lo, hi = np.quantile(means, [0.025, 0.975])
    assert (est.lo, est.hi) == pytest.approx((lo, hi), rel=1e-10)
    assert est.mean == pytest.approx(d.mean(), rel=1e-12)


def test_paired_bootstrap_2d_with_identical_seeds_matches_1d():
    d = np.random.default_rng(5).integers(-1, 2, size=200).astype(float)
    one = paired_bootstrap(d, np.zeros(200), n_boot=4000)
    two = paired_bootstrap(np.tile(d, (4, 1)), np.zeros((4, 200)), n_boot=4000)
    assert two.mean == one.mean
    assert two.lo == pytest.approx(one.lo, abs=0.015)
    assert two.hi == pytest.approx(one.hi, abs=0.015)
    assert two.n == one.n == 200


def test_paired_bootstrap_2d_covers_seed_disagreement():
    rng = np.random.default_rng(6)
    item_effect = rng.normal(0.1, 0.05, size=300)
    seed_effect = np.array([-0.6, 0.0, 0.6])  # the seeds disagree strongly about the difference
    d = seed_effect[:, None] + item_effect[None, :]
    two = paired_bootstrap(d, np.zeros_like(d))
    one = paired_bootstrap(d.mean(axis=0), np.zeros(300))
    assert two.mean == pytest.approx(one.mean, rel=1e-12)
    assert two.hi - two.lo > 10 * (one.hi - one.lo)
    assert two.lo < 0 < two.hi
    assert one.lo > 0


def test_paired_bootstrap_chunked_draws_agree(monkeypatch):
    rng = np.random.default_rng(7)
    d2 = rng.normal(0.2, 1.0, size=(5, 80))
    full = paired_bootstrap(d2, np.zeros_like(d2), n_boot=3000)
    monkeypatch.setattr(stats, "_MAX_ELEMENTS", 2000)  # forces chunks of ~11 draws
    chunked = paired_bootstrap(d2, np.zeros_like(d2), n_boot=3000)
    assert chunked.mean == full.mean
    assert (chunked.lo, chunked.hi) == pytest.approx((full.lo, full.hi), abs=0.03)
    assert chunked == paired_bootstrap(d2, np.zeros_like(d2), n_boot=3000)
    one = paired_bootstrap(d2[0], np.zeros(80), n_boot=3000)
    assert one.lo < one.mean < one.hi


def test_paired_bootstrap_errors():
    with pytest.raises(ValueError, match=r"\(3, 4\) and \(4, 3\)"):
        paired_bootstrap(np.zeros((3, 4)), np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"\(5,\) and \(6,\)"):
        paired_bootstrap(np.zeros(5), np.zeros(6))
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    with pytest.raises(ValueError):
        paired_bootstrap(np.zeros(0), np.zeros(0))


# --- permutation test ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diffs", "expected"),
    [
        ([1, 1, 1], 2 / 8),  # only all-plus and all-minus reach |sum| = 3
        ([1, 1, 1, 1, 1], 2 / 32),
        ([1, -1], 1.0),  # observed mean 0: every assignment is as extreme
        ([3, -1, 2], 4 / 8),  # signed sums ±6, ±4 reach |4|; ±2, 0, 0 do not
        ([1, 1, 1, 0, 0, 0], 2 / 8),  # zero differences carry no sign
        ([0.1, 0.2, 0.3], 2 / 8),  # |0.1 + 0.2 - 0.3| is not 0.6, but ±0.6 must tie despite rounding
        ([0.1, 0.2, -0.3], 1.0),
    ],
)
def test_permutation_test_exact_small_cases(diffs, expected):
    d = np.array(diffs, dtype=float)
    assert permutation_test(d, np.zeros_like(d)) == expected
    assert permutation_test(np.zeros_like(d), d) == expected


def test_permutation_test_averages_seeds_first():
    a = np.array([[1.0, 2.0, 0.0], [1.0, 0.0, 2.0]])  # per-item means over seeds: 1, 1, 1
    assert permutation_test(a, np.zeros_like(a)) == 2 / 8


def test_permutation_test_all_zero_differences():
    a = np.random.default_rng(8).random((3, 10))
    assert permutation_test(a, a) == 1.0
    assert permutation_test(a[0], a[0]) == 1.0


def test_permutation_test_exact_enumeration_at_m20():
    diffs = [3, -1, 4, 1, -5, 9, -2, 6, 5, -3, -5, 8, 9, -7, -9, 3, 2, 3, 8, -4]
    d = np.array(diffs, dtype=float)
    expected = exact_sign_flip_p(diffs)
    assert expected == pytest.approx(0.33873, abs=1e-5)
    assert permutation_test(d, np.zeros(20), n_perm=2**20) == pytest.approx(expected, abs=1e-15)


def test_permutation_test_monte_carlo_close_to_exact():
    diffs = [3, -1, 4, 1, -5, 9, -2, 6, 5, -3, -5, 8, 9, -7, -9, 3, 2, 3, 8, -4]
    d = np.array(diffs, dtype=float)
    expected = exact_sign_flip_p(diffs)
    p = permutation_test(d, np.zeros(20), n_perm=20000, seed=1)  # 2^20 > 20000: Monte-Carlo
    assert p == pytest.approx(expected, abs=0.015)  # about 4.5 standard errors
    assert p == permutation_test(d, np.zeros(20), n_perm=20000, seed=1)


def test_permutation_test_monte_carlo_never_zero():
    d = np.ones(30)  # exact p = 2 / 2^30
    p = permutation_test(d, np.zeros(30), n_perm=1000)
    assert p == 1 / 1001


def test_permutation_test_errors():
    with pytest.raises(ValueError, match=r"\(2, 3\) and \(3,\)"):
        permutation_test(np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(ValueError):
        permutation_test(np.zeros(3), np.zeros(3), n_perm=0)


# --- existing intervals --------------------------------------------------------------------------


def test_wilson_known_value():
    est = wilson(8, 10)  # textbook: 8/10 at 95% gives [0.490, 0.943]
    assert est.mean == 0.8
    assert est.lo == pytest.approx(0.4901625, abs=1e-6)
    assert est.hi == pytest.approx(0.9433178, abs=1e-6)


def test_holm_known_values():
    from acqsynth.evaluation.stats import holm

    # ascending 0.005, 0.01, 0.03, 0.04 scaled by 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.2]) == pytest.approx([0.5, 0.4])
    assert holm([0.3]) == [0.3] and holm([]) == []
    assert holm([0.9, 0.8, 0.7]) == pytest.approx([1.0, 1.0, 1.0])  # capped at 1
    with pytest.raises(ValueError, match="p-values in"):
        holm([0.1, 1.5])


# --- paired t over seed means --------------------------------------------------------------------


def test_paired_t_matches_scipy_ttest_rel():
    # scipy.stats.ttest_rel([0.17, 0.165, 0.18], [0.135, 0.13, 0.15]) and its .confidence_interval(0.95)
    # (scipy 1.17.1): the study's random vs static at budget 96, per-seed accuracies
    r = paired_t([0.17, 0.165, 0.18], [0.135, 0.13, 0.15])
    assert r.diff == pytest.approx(1 / 30, rel=1e-12)
    assert r.t == pytest.approx(19.999999999999982, rel=1e-9)
    assert r.p == pytest.approx(0.0024906638923671014, rel=1e-9)
    assert (r.lo, r.hi) == pytest.approx((0.026162245450417558, 0.04050442121624911), rel=1e-9)
    assert (r.df, r.n, r.level) == (2, 3, 0.95)
    assert r.se == pytest.approx(0.0016666666666666668, rel=1e-9)
    assert r.estimate == Estimate(r.diff, r.lo, r.hi, 3, 0.95)


def test_paired_t_other_level_and_size():
    # scipy.stats.ttest_rel([0.61, 0.64, 0.58, 0.66, 0.60], [0.60, 0.59, 0.60, 0.61, 0.57]),
    # .confidence_interval(0.90)
    r = paired_t(
        np.array([0.61, 0.64, 0.58, 0.66, 0.60]), np.array([0.60, 0.59, 0.60, 0.61, 0.57]), level=0.9
    )
    assert r.t == pytest.approx(1.8090680674665818, rel=1e-9)
    assert r.p == pytest.approx(0.14470399860633035, rel=1e-9)
    assert (r.lo, r.hi) == pytest.approx((-0.0042821436030818505, 0.05228214360308187), rel=1e-8)
    assert r.df == 4
    # one variance model: the interval excludes zero exactly when p < 1 - level
    assert (r.lo > 0 or r.hi < 0) == (r.p < 0.1)


def test_paired_t_one_seed_is_nan_safe():
    r = paired_t([0.2], [0.15])
    assert r.diff == pytest.approx(0.05) and (r.n, r.df) == (1, 0)
    assert all(math.isnan(x) for x in (r.lo, r.hi, r.se, r.t, r.p))


def test_paired_t_constant_differences():
    r = paired_t([0.3, 0.4, 0.5], [0.25, 0.35, 0.45])  # d = 0.05 on every seed, up to rounding
    assert r.se == 0.0 and r.p == 0.0 and r.lo == r.hi == pytest.approx(0.05)
    r = paired_t([0.3, 0.4], [0.3, 0.4])
    assert r.p == 1.0 and r.diff == 0.0


@pytest.mark.parametrize(
    ("a", "b"), [([0.1, 0.2], [0.1]), ([[0.1, 0.2]], [[0.1, 0.2]]), ([], []), ([0.1, math.nan], [0.0, 0.0])]
)
def test_paired_t_rejects_bad_input(a, b):
    with pytest.raises(ValueError):
        paired_t(a, b)


# --- TOST ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("diff", "se", "df", "margin", "ref"),
    [
        # statsmodels.stats.weightstats.ttost_paired([0.105, 0.095, 0.105], [0.1, 0.07, 0.1], -0.02, 0.02)
        # (statsmodels 0.15.0): (pvalue, (t1, p1, df1), (t2, p2, df2))
        (0.011666666666666659, 0.006666666666666667, 2, 0.02,
         (0.16886691073373888, (4.749999999999999, 0.020788391309947623), (-1.250000000000001, 0.16886691073373888))),
        # the same with low, upp = -0.05, 0.05
        (0.011666666666666659, 0.006666666666666667, 2, 0.05,
         (0.014469619441138575, (9.249999999999998, 0.00574319124063002), (-5.750000000000001, 0.014469619441138575))),
        # ttost_paired(x1, x1 + [0.05, -0.03, 0.02, 0.01, -0.02, 0.04, 0.0, 0.01], -0.1, 0.1),
        # x1 = [1.2, 0.9, 1.1, 1.0, 0.95, 1.05, 1.02, 0.98]
        (-0.010000000000000009, 0.009636241116594323, 7, 0.1,
         (1.675040939818061e-05, (9.339741389929866, 1.675040939818061e-05), (-11.415239476580949, 4.442352670601846e-06))),
        # ttost_ind([5.1, 4.9, 5.3, 5.0, 5.2, 4.8], [5.0, 5.2, 4.9, 5.1, 5.05, 4.95, 5.15], -0.3, 0.3,
        # usevar="pooled"): pooled se 0.0830297500534561, df 11
        (0.0, 0.0830297500534561, 11, 0.3,
         (0.0020374640609062415, (3.6131627495789695, 0.0020374640609062415), (-3.6131627495789695, 0.0020374640609062415))),
    ],
)  # fmt: skip
def test_tost_matches_statsmodels(diff, se, df, margin, ref):
    p, (t1, p1), (t2, p2) = ref
    r = tost(diff, se, df, margin)
    assert r.p == pytest.approx(p, rel=1e-8)
    assert (r.t_lower, r.p_lower) == pytest.approx((t1, p1), rel=1e-8)
    assert (r.t_upper, r.p_upper) == pytest.approx((t2, p2), rel=1e-8)
    assert r.equivalent == (p < 0.05)


def test_tost_equivalent_iff_the_90_interval_lies_inside_the_margin():
    se, df = 0.005, 4
    half = 2.1318467863266495 * se  # scipy.stats.t.ppf(0.95, 4): the 90% interval's half-width in se
    assert tost(0.02 - half - 1e-6, se, df, 0.02).equivalent
    assert not tost(0.02 - half + 1e-6, se, df, 0.02).equivalent
    assert not tost(0.0, se, df, 0.02, alpha=0.001).equivalent  # a stricter alpha needs more data


def test_tost_without_variance_or_with_one_seed():
    assert math.isnan(tost(0.01, math.nan, 0, 0.02).p) and not tost(0.01, math.nan, 0, 0.02).equivalent
    assert tost(0.01, 0.0, 2, 0.02).p == 0.0 and tost(0.01, 0.0, 2, 0.02).equivalent
    assert tost(0.03, 0.0, 2, 0.02).p == 1.0
    with pytest.raises(ValueError):
        tost(0.0, 0.01, 2, 0.0)


# --- minimum detectable effect ------------------------------------------------------------------

# statsmodels.stats.power.TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8,
# alternative="two-sided") (statsmodels 0.15.0): the effect in sd units; in se units it is es * sqrt(n)
SOLVE_POWER = {
    2: 11.549889754978167, 3: 3.264043552819638, 5: 1.6819970833232674,
    10: 0.9960019107624178, 30: 0.5292357045238948, 200: 0.19906465946973934,
}  # fmt: skip


@pytest.mark.parametrize("n", sorted(SOLVE_POWER))
def test_mde_exact_matches_statsmodels_solve_power(n):
    se = 0.0123
    assert mde(se, n - 1, exact=True) == pytest.approx(SOLVE_POWER[n] * math.sqrt(n) * se, rel=1e-5)


def test_mde_default_is_the_central_t_approximation():
    # df 2: t(0.975) = 4.302652729749464 and t(0.8) = 0.6·sqrt(2 / (1 - 0.36)) in closed form
    assert mde(1.0, 2) == pytest.approx(4.302652729749464 + 0.6 * math.sqrt(2 / 0.64), rel=1e-12)
    # scipy.stats.t.ppf(0.975, 9) + t.ppf(0.8, 9) = 3.1455610224837396
    assert mde(0.5, 9) == pytest.approx(0.5 * 3.1455610224837396, rel=1e-12)
    # how far the shortcut falls below the exact MDE (statsmodels): 5.13% at 3 seeds, 0.129% at df 9
    assert mde(1.0, 2) / (SOLVE_POWER[3] * math.sqrt(3)) == pytest.approx(0.94867, abs=1e-4)
    assert mde(1.0, 9) / (SOLVE_POWER[10] * math.sqrt(10)) == pytest.approx(0.99871, abs=1e-4)
    assert mde(1.0, 199) / (SOLVE_POWER[200] * math.sqrt(200)) == pytest.approx(1.0, abs=1e-4)


def test_mde_has_the_stated_power_by_simulation():
    """Differences drawn with the exact MDE as their true mean are detected in 80% of 3-seed experiments."""
    rng = np.random.default_rng(0)
    n, sd, reps = 3, 0.01, 40_000
    effect = mde(sd / math.sqrt(n), n - 1, exact=True)
    d = rng.normal(effect, sd, size=(reps, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    power = float((np.abs(t) > 4.302652729749464).mean())
    assert power == pytest.approx(0.8, abs=0.01)  # binomial se 0.002


def test_mde_undefined_and_degenerate():
    assert math.isnan(mde(math.nan, 0)) and math.isnan(mde(0.01, 0))
    assert mde(0.0, 2) == 0.0 and mde(0.0, 2, exact=True) == 0.0
    with pytest.raises(ValueError):
        mde(0.01, 2, power=0.01)



@pytest.mark.parametrize("n", sorted(SOLVE_POWER))
def test_paired_mde_is_the_exact_mde_in_sd_units(n):
    assert stats.paired_mde(1.0, n) == pytest.approx(SOLVE_POWER[n], rel=1e-5)
    assert stats.paired_mde(0.02, n) == pytest.approx(0.02 * SOLVE_POWER[n], rel=1e-5)


def test_paired_mde_at_a_holm_level_has_its_power_by_simulation():
    """8 seeds at Holm's first-step level 0.0125: the projected MDE is detected in 80% of experiments."""
    rng = np.random.default_rng(1)
    n, sd, alpha, reps = 8, 0.015, 0.0125, 40_000
    effect = stats.paired_mde(sd, n, alpha)
    d = rng.normal(effect, sd, size=(reps, n))
    t = d.mean(axis=1) / (d.std(axis=1, ddof=1) / math.sqrt(n))
    crit = 3.3352949398170826  # scipy.stats.t.ppf(1 - 0.0125 / 2, 7)
    assert float((np.abs(t) > crit).mean()) == pytest.approx(0.8, abs=0.01)
    assert stats.paired_mde(sd, n, alpha) > stats.paired_mde(sd, n)  # a stricter level needs a larger effect


def test_pairs_needed_is_the_first_n_whose_mde_reaches_the_effect():
    sd = 0.0142
    n = stats.pairs_needed(sd, 0.02)
    assert stats.paired_mde(sd, n) <= 0.02 < stats.paired_mde(sd, n - 1)
    assert stats.pairs_needed(sd, 0.02, alpha=0.0125) > n
    assert stats.pairs_needed(0.0, 0.02) == 2 and stats.pairs_needed(1.0, 0.001, most=50) is None
    assert stats.pairs_needed(math.nan, 0.02) is None and math.isnan(stats.paired_mde(0.01, 1))
    with pytest.raises(ValueError):
        stats.pairs_needed(0.01, 0.0)


def test_sd_upper_bound_covers_the_true_sd_95_percent_of_the_time():
    rng = np.random.default_rng(2)
    samples = rng.normal(0.0, 1.0, size=(40_000, 3))
    upper = np.array([stats.sd_upper(s, 2) for s in samples.std(axis=1, ddof=1)])
    assert float((upper >= 1.0).mean()) == pytest.approx(0.95, abs=0.005)
    assert stats.sd_upper(1.0, 2) == pytest.approx(math.sqrt(2 / 0.10258658877510107), rel=1e-9)  # chi2.ppf(0.05, 2)
    assert math.isnan(stats.sd_upper(1.0, 0))

def test_item_mde_matches_scipy_and_statsmodels():
    a = np.array([1, 1, 0, 1, 0, 1, 1, 0, 1, 1], dtype=float)
    b = np.array([0, 1, 0, 0, 0, 1, 1, 0, 0, 1], dtype=float)
    # scipy.stats.ttest_rel(a, b): t 1.9639610121239315, p 0.08112618884584057; se = sd(a - b)/sqrt(10)
    m, test = item_mde(a, b, exact=True)
    assert (test.t, test.p) == pytest.approx((1.9639610121239315, 0.08112618884584057), rel=1e-9)
    assert test.se == pytest.approx(0.15275252316519464, rel=1e-12) and test.df == 9
    # TTestPower().solve_power(None, nobs=10, alpha=0.05, power=0.8) * sd(a - b)
    assert m == pytest.approx(0.4811146309594249, rel=1e-5)
    assert item_mde(a, b)[0] == pytest.approx(3.1455610224837396 * 0.15275252316519464, rel=1e-12)
    # seeds × items is averaged over seeds per item first
    two = item_mde(np.stack([a, a]), np.stack([b, b]), exact=True)
    assert two[0] == pytest.approx(m, rel=1e-12)
