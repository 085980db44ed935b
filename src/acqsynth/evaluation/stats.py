"""Intervals and tests for accuracies: percentile bootstrap over items (deterministic under a seed), Wilson,
Student-t over runs, the paired t test over per-seed means with its minimum detectable effect and a TOST
equivalence test, paired bootstrap and sign-flip permutation tests between methods, Holm's adjustment
for picking the best of several methods, and unbiased pass@k."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import chi2, ttest_1samp
from scipy.stats import t as t_dist


@dataclass(frozen=True)
class Estimate:
    """A mean with a confidence interval."""

    mean: float
    lo: float
    hi: float
    n: int
    level: float = 0.95

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.lo:.4f}, {self.hi:.4f}] (n={self.n}, {self.level:.0%} CI)"


def bootstrap_mean(values: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Estimate:
    """Mean of `values` with a percentile-bootstrap interval over items."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("cannot estimate the mean of zero items")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(float(x.mean()), float(lo), float(hi), int(x.size), level)


def wilson(successes: int, n: int, level: float = 0.95) -> Estimate:
    """Wilson score interval for a binomial proportion (well-behaved at 0 and 1, unlike the bootstrap)."""
    if n <= 0:
        raise ValueError("cannot estimate a proportion of zero items")
    z = _z(level)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Estimate(p, max(0.0, centre - half), min(1.0, centre + half), n, level)


def pass_at_k(n: int | np.ndarray, c: int | np.ndarray, k: int) -> float | np.ndarray:
    """Unbiased pass@k (Chen et al., 2021): chance that k of n samples (c correct), drawn without replacement,
    include a correct one.

    1 - C(n-c, k) / C(n, k), computed as 1 - prod_{i=n-c+1}^{n} (1 - k/i) so that large n neither overflows
    nor loses precision; 1.0 when n - c < k. Vectorised over broadcastable arrays of n and c.
    """
    if k < 1:
        raise ValueError(f"pass@k needs k >= 1, got k={k}")
    n_arr, c_arr = np.broadcast_arrays(_as_counts(n, "n"), _as_counts(c, "c"))
    if (n_arr < k).any():
        raise ValueError(f"pass@k needs k <= n, got k={k} with n={int(n_arr[n_arr < k].flat[0])}")
    if (c_arr < 0).any():
        raise ValueError(f"pass@k needs c >= 0, got c={int(c_arr[c_arr < 0].flat[0])}")
    if (c_arr > n_arr).any():
        bad = c_arr > n_arr
        raise ValueError(
            f"pass@k needs c <= n, got c={int(c_arr[bad].flat[0])} with n={int(n_arr[bad].flat[0])}"
        )
    out = np.empty(n_arr.shape, dtype=np.float64)
    for idx in np.ndindex(n_arr.shape):
        ni, ci = int(n_arr[idx]), int(c_arr[idx])
        out[idx] = 1.0 if ni - ci < k else 1.0 - float(np.prod(1.0 - k / np.arange(ni - ci + 1, ni + 1)))
    return float(out) if out.ndim == 0 else out


def t_interval(values: np.ndarray | Sequence[float], level: float = 0.95) -> Estimate:
    """Mean over a few independent runs (e.g. seeds) with a Student-t interval, mean ± t·s/√n.

    The bootstrap is unreliable with three or five runs; the t interval is the standard small-sample choice.
    With one run the interval is (nan, nan): a single run says nothing about the spread between runs.
    """
    _check_level(level)
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"t_interval needs a 1-D sequence of run results, got shape {x.shape}")
    if x.size == 0:
        raise ValueError("cannot estimate the mean of zero runs")
    if not np.isfinite(x).all():
        raise ValueError(f"t_interval got non-finite run results: {x.tolist()}")
    mean = float(x.mean())
    if x.size == 1:
        return Estimate(mean, math.nan, math.nan, 1, level)
    half = float(t_dist.ppf((1 + level) / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return Estimate(mean, mean - half, mean + half, int(x.size), level)


@dataclass(frozen=True)
class PairedT:
    """A paired t test of mean(a - b) == 0: the mean difference, its t interval and the two-sided p.

    Interval and p come from the same standard error `se` and `df`, so they always agree: the interval
    excludes zero exactly when p < 1 - level. With one pair, se, t, p and the interval are NaN (df 0).
    """

    diff: float
    lo: float
    hi: float
    se: float
    t: float
    p: float
    df: int
    n: int
    level: float = 0.95

    @property
    def estimate(self) -> Estimate:
        """The mean difference and its interval as an Estimate (n = pairs)."""
        return Estimate(self.diff, self.lo, self.hi, self.n, self.level)


def paired_t(
    a_seed_means: np.ndarray | Sequence[float],
    b_seed_means: np.ndarray | Sequence[float],
    level: float = 0.95,
) -> PairedT:
    """Paired t test over per-seed means: d_s = a_s - b_s, mean ± t_{(1+level)/2, n-1}·sd(d)/√n, and the
    two-sided p of scipy.stats.ttest_1samp(d, 0) (= ttest_rel(a, b)), df = n - 1.

    One variance model, seed to seed, for both interval and p. Works on any paired vectors (e.g. the item
    differences of one seed). Differences that are all equal (sd below 1e-12 of their size) give a point
    interval and p = 0, or p = 1 when they are all zero; one pair gives NaN interval, se and p.
    """
    _check_level(level)
    x, y = np.asarray(a_seed_means, dtype=np.float64), np.asarray(b_seed_means, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"paired_t needs two 1-D sequences of the same length, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise ValueError("paired_t got no pairs")
    d = x - y
    if not np.isfinite(d).all():
        raise ValueError(f"paired_t got non-finite differences: {d.tolist()}")
    n, mean = int(d.size), float(d.mean())
    if n == 1:
        return PairedT(mean, math.nan, math.nan, math.nan, math.nan, math.nan, 0, 1, level)
    sd = float(d.std(ddof=1))
    if sd <= 1e-12 * max(1.0, float(np.abs(d).max())):
        t, p = (math.nan, 1.0) if mean == 0 else (math.copysign(math.inf, mean), 0.0)
        return PairedT(mean, mean, mean, 0.0, t, p, n - 1, n, level)
    se = sd / math.sqrt(n)
    res = ttest_1samp(d, 0.0)
    half = float(t_dist.ppf((1 + level) / 2, n - 1)) * se
    return PairedT(
        mean, mean - half, mean + half, se, float(res.statistic), float(res.pvalue), n - 1, n, level
    )


@dataclass(frozen=True)
class Tost:
    """Two one-sided t tests of equivalence within ±margin (Schuirmann's TOST).

    p_lower tests H0: diff <= -margin (t_lower = (diff + margin) / se, upper tail), p_upper tests
    H0: diff >= +margin (t_upper = (diff - margin) / se, lower tail); p = max of the two, as statsmodels'
    ttost_paired / ttost_ind report it. Equivalent when p < alpha: the (1 - 2·alpha) interval lies inside
    ±margin.
    """

    p: float
    p_lower: float
    p_upper: float
    t_lower: float
    t_upper: float
    df: float
    margin: float
    alpha: float = 0.05

    @property
    def equivalent(self) -> bool:
        """True when both one-sided nulls are rejected at alpha (False when p is NaN)."""
        return bool(self.p < self.alpha)


def tost(diff_mean: float, se: float, df: float, margin: float, alpha: float = 0.05) -> Tost:
    """TOST equivalence test of a difference with standard error `se` and `df` degrees of freedom within
    ±margin; why: a non-significant difference is not evidence of no difference, equivalence is.

    NaN se or df < 1 (one seed) gives p NaN, never equivalent. se = 0 (a difference known exactly)
    gives p 0 when |diff| < margin, else 1.
    """
    if not margin > 0:
        raise ValueError(f"tost needs a positive margin, got {margin}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"tost needs alpha in (0, 0.5), got {alpha}")
    if not (_isfinite(diff_mean) and _isfinite(se) and _isfinite(df)) or se < 0 or df < 1:
        return Tost(math.nan, math.nan, math.nan, math.nan, math.nan, df, margin, alpha)
    if se == 0:
        p_lo = 0.0 if diff_mean > -margin else 1.0
        p_hi = 0.0 if diff_mean < margin else 1.0
        t_lo = math.inf if diff_mean > -margin else -math.inf if diff_mean < -margin else math.nan
        t_hi = -math.inf if diff_mean < margin else math.inf if diff_mean > margin else math.nan
        return Tost(max(p_lo, p_hi), p_lo, p_hi, t_lo, t_hi, df, margin, alpha)
    t_lo, t_hi = (diff_mean + margin) / se, (diff_mean - margin) / se
    p_lo, p_hi = float(t_dist.sf(t_lo, df)), float(t_dist.cdf(t_hi, df))
    return Tost(max(p_lo, p_hi), p_lo, p_hi, t_lo, t_hi, df, margin, alpha)


def mde(se: float, df: float, alpha: float = 0.05, power: float = 0.8, exact: bool = False) -> float:
    """Minimum detectable effect of a two-sided t test at level alpha with the given power; why: a test
    that cannot see the effect one cares about says nothing by failing to see it.

    Default: the central-t approximation (t_{1-alpha/2, df} + t_{power, df}) · se (Bloom 1995). It
    ignores the noncentral t's shape, so at few degrees of freedom it *understates* the MDE of the exact
    power calculation (statsmodels' TTestPower): by 5.13% at df 2 (3 seeds), 1.16% at df 4, 0.129% at df 9.
    exact=True solves the exact noncentral-t power equation
    P(|T'| > t_{1-alpha/2, df}) = power, T' ~ nct(df, mde / se), which is what TTestPower.solve_power
    gives for the one-sample / paired case (effect size mde / sd with sd = se·√n). NaN when se is
    undefined or df < 1 (one seed); 0 when se is 0.
    """
    if not 0 < alpha < 1 or not alpha < power < 1:
        raise ValueError(f"mde needs 0 < alpha < power < 1, got alpha {alpha} and power {power}")
    if not (_isfinite(se) and _isfinite(df)) or se < 0 or df < 1:
        return math.nan
    approx = float(t_dist.ppf(1 - alpha / 2, df)) + float(t_dist.ppf(power, df))
    if not exact:
        return approx * se
    from scipy.optimize import brentq
    from scipy.stats import nct

    crit = float(t_dist.ppf(1 - alpha / 2, df))

    def shortfall(nc: float) -> float:
        far = float(nct.cdf(-crit, df, nc))  # the far tail: below 1e-8 wherever scipy returns NaN for it
        return float(nct.sf(crit, df, nc)) + (0.0 if math.isnan(far) else far) - power

    upper = approx
    while not shortfall(upper) > 0:  # power rises with nc: widen the bracket until it passes the target
        upper *= 1.25
    return float(brentq(shortfall, 0.0, upper, xtol=1e-12, rtol=1e-12)) * se


def paired_mde(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The exact MDE of a paired t over n pairs whose differences have standard deviation sd; why: it
    projects what a design with more seeds could detect, from the spread of the seeds run so far.
    NaN for fewer than 2 pairs or an undefined sd."""
    if n < 2 or not _isfinite(sd) or sd < 0:
        return math.nan
    return mde(sd / math.sqrt(n), n - 1, alpha, power, exact=True)


def pairs_needed(sd: float, effect: float, alpha: float = 0.05, power: float = 0.8, most: int = 100) -> int | None:
    """The fewest pairs (at least 2) whose paired t detects a true difference of `effect` with `power` at
    two-sided `alpha`, when the differences have standard deviation sd; None when more than `most`
    would be needed or sd is undefined."""
    if effect <= 0:
        raise ValueError(f"pairs_needed needs a positive effect, got {effect}")
    if not _isfinite(sd) or sd < 0:
        return None
    for n in range(2, most + 1):  # the MDE falls as n grows: the first n that reaches the effect is the fewest
        if paired_mde(sd, n, alpha, power) <= effect:
            return n
    return None


def sd_upper(sd: float, df: int, level: float = 0.95) -> float:
    """The one-sided upper `level` confidence bound of a normal standard deviation estimated as sd with df
    degrees of freedom (chi-square): how large the spread could be, which a projection from few seeds
    must admit. NaN for df < 1."""
    if df < 1 or not _isfinite(sd):
        return math.nan
    return float(sd * math.sqrt(df / chi2.ppf(1 - level, df)))


def item_mde(
    a_items: np.ndarray, b_items: np.ndarray, alpha: float = 0.05, power: float = 0.8, exact: bool = False
) -> tuple[float, PairedT]:
    """The item-level MDE of a paired comparison on the same items, and the paired t over items it rests on.

    se = sd(item differences)/√items, df = items - 1: the standard error of the mean item difference that
    the within-seed item bootstrap estimates. 2-D input (seeds × items) is averaged over seeds per item
    first (seeds held fixed). Used where there is one seed, so no seed-to-seed variance.
    """
    d = _paired_differences(a_items, b_items, "item_mde")
    if d.ndim == 2:
        d = d.mean(axis=0)
    test = paired_t(d, np.zeros_like(d))
    return mde(test.se, test.df, alpha, power, exact), test


def _isfinite(x: float) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def paired_bootstrap(
    a: np.ndarray, b: np.ndarray, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> Estimate:
    """Mean paired difference a - b with a percentile-bootstrap interval (deterministic under `seed`).

    1-D input (items) resamples items. 2-D input (seeds × items, the same seeds and items for both methods)
    resamples seed rows and item columns independently, so the interval covers both run-to-run and
    item-to-item variation; the same resampled indices apply to a and b, which keeps the pairing.
    `n` of the estimate is the number of items.
    """
    _check_level(level)
    if n_boot < 1:
        raise ValueError(f"paired_bootstrap needs n_boot >= 1, got {n_boot}")
    d = _paired_differences(a, b, "paired_bootstrap")
    rng = np.random.default_rng(seed)
    if d.ndim == 1:
        chunk = max(1, min(n_boot, _MAX_ELEMENTS // d.size))
        means = np.concatenate(
            [d[rng.integers(0, d.size, size=(m, d.size))].mean(axis=1) for m in _chunks(n_boot, chunk)]
        )
    else:
        n_seeds, n_items = d.shape
        chunk = max(1, min(n_boot, _MAX_ELEMENTS // (n_seeds + 2 * n_items)))
        means = np.concatenate([_two_level_means(d, m, rng) for m in _chunks(n_boot, chunk)])
    alpha = (1 - level) / 2
    lo, hi = np.quantile(means, [alpha, 1 - alpha])
    return Estimate(float(d.mean()), float(lo), float(hi), int(d.shape[-1]), level)


def permutation_test(a: np.ndarray, b: np.ndarray, n_perm: int = 10000, seed: int = 0) -> float:
    """Two-sided p-value of a paired sign-flip permutation test of mean(a - b) == 0.

    Per-item differences (2-D seeds × items input is first averaged over seeds per item) get random signs;
    the p-value is the share of sign assignments (the observed one included) whose |mean| reaches the
    observed |mean| within 1e-12, so that ties lost to rounding still count.
    Exact over all 2^m flips of the m nonzero differences when 2^m <= n_perm, else Monte-Carlo with
    p = (1 + hits) / (1 + n_perm), which never reports an impossible 0.
    """
    if n_perm < 1:
        raise ValueError(f"permutation_test needs n_perm >= 1, got {n_perm}")
    d = _paired_differences(a, b, "permutation_test")
    if d.ndim == 2:
        d = d.mean(axis=0)
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return 1.0
    m = nonzero.size
    observed = abs(float(nonzero.sum())) / d.size
    threshold = observed - 1e-12 * max(1.0, observed)
    chunk = max(1, _MAX_ELEMENTS // m)
    hits = 0
    if 2**m <= n_perm:
        bits = np.arange(m, dtype=np.int64)
        for start in range(0, 2**m, chunk):
            codes = np.arange(start, min(start + chunk, 2**m), dtype=np.int64)
            signs = 1.0 - 2.0 * ((codes[:, None] >> bits) & 1)
            hits += int((np.abs(signs @ nonzero) / d.size >= threshold).sum())
        return hits / 2**m
    rng = np.random.default_rng(seed)
    for size in _chunks(n_perm, chunk):
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(size, m))
        hits += int((np.abs(signs @ nonzero) / d.size >= threshold).sum())
    return (1 + hits) / (1 + n_perm)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order: p_(i) scaled by (m - i + 1) over the
    ascending order, made monotone, capped at 1. Controls the family-wise error rate when the best of
    m methods is tested against one baseline (picking the best inflates a lone test's false positives)."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.isnan(p).any() or ((p < 0) | (p > 1)).any():
        raise ValueError(f"holm needs a 1-D list of p-values in [0, 1], got {list(p_values)}")
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, np.maximum.accumulate(p[order] * (p.size - np.arange(p.size))))
    out = np.empty_like(p)
    out[order] = scaled
    return [float(x) for x in out]


_MAX_ELEMENTS = 50_000_000
"""Cap on the elements one resampling chunk materialises (about 400 MB of float64)."""


def _as_counts(x: int | np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind == "f" and np.isfinite(arr).all() and (arr == np.round(arr)).all():
        return arr.astype(np.int64)
    raise ValueError(f"pass@k needs integer {name}, got {name}={x!r}")


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"confidence level must lie in (0, 1), got {level}")


def _paired_differences(a: np.ndarray, b: np.ndarray, name: str) -> np.ndarray:
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"{name} needs a and b of the same shape, got {x.shape} and {y.shape}")
    if x.ndim not in (1, 2):
        raise ValueError(f"{name} needs items (1-D) or seeds × items (2-D), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{name} got no items (shape {x.shape})")
    d = x - y
    if not np.isfinite(d).all():
        raise ValueError(f"{name} got non-finite differences")
    return d


def _chunks(total: int, chunk: int) -> list[int]:
    return [min(chunk, total - start) for start in range(0, total, chunk)]


def _two_level_means(d: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `draws` seed-and-item resamples of `d`, from resampling counts rather than the resampled
    matrices: mean(d[rows][:, cols]) = w_rows · d · w_cols / (seeds · items)."""
    n_seeds, n_items = d.shape
    rows = _counts(rng.integers(0, n_seeds, size=(draws, n_seeds)), n_seeds)
    cols = _counts(rng.integers(0, n_items, size=(draws, n_items)), n_items)
    return ((rows @ d) * cols).sum(axis=1) / (n_seeds * n_items)


def _counts(indices: np.ndarray, size: int) -> np.ndarray:
    """Per-row counts of `indices` (draws × picks, values in [0, size)) as a draws × size float array."""
    draws = indices.shape[0]
    offsets = indices + size * np.arange(draws)[:, None]
    return np.bincount(offsets.ravel(), minlength=draws * size).reshape(draws, size).astype(np.float64)


def _z(level: float) -> float:
    """Two-sided standard-normal quantile, via the inverse error function from the standard library."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)
