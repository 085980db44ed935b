"""Intervals and tests for accuracies: percentile bootstrap over items (deterministic under a seed), Wilson,
Student-t over runs, paired bootstrap and sign-flip permutation tests between methods, Holm's adjustment
for picking the best of several methods, and unbiased pass@k."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
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
