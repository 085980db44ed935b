"""Statistics for evaluation: unbiased pass@k, Student-t intervals over runs, paired bootstrap over
(seeds ×) items, and the sign-flip permutation test, each against values worked out independently."""

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
    paired_bootstrap,
    pass_at_k,
    permutation_test,
    t_interval,
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
