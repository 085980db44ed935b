"""Intervals for accuracies: percentile bootstrap over items (deterministic under a seed) and Wilson."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


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


def _z(level: float) -> float:
    """Two-sided standard-normal quantile, via the inverse error function from the standard library."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)
