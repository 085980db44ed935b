"""Vendi score and G-Vendi against an explicit n×n kernel eigen-decomposition, plus their properties."""

from __future__ import annotations

import math

import numpy as np
import pytest

from acqsynth.acquisition.vendi import g_vendi, vendi_score
from acqsynth.errors import AcqsynthError


def naive_vendi(rows, q: float) -> float:
    """Build K[i][j] = cos(x_i, x_j) / n entry by entry, decompose it, sum the entropy term by term."""
    n = len(rows)
    units = []
    for r in rows:
        norm = math.sqrt(sum(v * v for v in r))
        units.append([v / norm for v in r])
    kernel = [
        [sum(a * b for a, b in zip(units[i], units[j], strict=True)) / n for j in range(n)] for i in range(n)
    ]
    eigenvalues = np.linalg.eigh(np.array(kernel))[0]
    lam = [max(float(v), 0.0) for v in eigenvalues]
    lam = [v for v in lam if v > 1e-12]
    if q == 1:
        return math.exp(-sum(v * math.log(v) for v in lam))
    if math.isinf(q):
        return 1.0 / max(lam)
    return math.exp(math.log(sum(v**q for v in lam)) / (1 - q))


@pytest.mark.parametrize("shape", [(12, 40), (60, 6), (25, 25)])
@pytest.mark.parametrize("q", [1.0, 0.5, 2.0, math.inf])
def test_vendi_matches_naive_kernel(shape, q):
    rng = np.random.default_rng(7)
    n, d = shape
    # Clustered rows, so the spectrum is far from flat and from a single spike.
    x = rng.normal(size=(4, d))[rng.integers(0, 4, n)] + 0.5 * rng.normal(size=(n, d))
    x *= rng.uniform(0.1, 10, size=(n, 1))  # scale does not matter: rows are normalised
    got = vendi_score(x, q=q)
    assert got == pytest.approx(naive_vendi(x.tolist(), q), rel=1e-5, abs=1e-5)
    assert 1.0 < got < min(n, d)


def test_vendi_counts_identical_and_orthogonal_items():
    rng = np.random.default_rng(0)
    v = rng.normal(size=16)
    assert vendi_score(np.tile(v, (30, 1))) == pytest.approx(1.0, abs=1e-9)
    basis = np.linalg.qr(rng.normal(size=(16, 16)))[0]  # a random orthonormal basis
    for n in (1, 5, 16):
        assert vendi_score(basis[:n]) == pytest.approx(n, rel=1e-9)
        assert vendi_score(basis[:n], q=2.0) == pytest.approx(n, rel=1e-9)
    # 40 orthogonal items in 8 dimensions cannot exist; 40 rows from 4 directions count as 4.
    four = np.repeat(np.eye(8)[:4], 10, axis=0)
    assert vendi_score(four) == pytest.approx(4.0, rel=1e-9)
    # Two directions, one far more frequent: fewer than 2 effective items.
    skew = np.vstack([np.tile(np.eye(8)[0], (9, 1)), np.eye(8)[1:2]])
    assert 1.0 < vendi_score(skew) < 2.0


def test_vendi_invariances_and_edges():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 10))
    base = vendi_score(x)
    assert vendi_score(x[rng.permutation(50)]) == pytest.approx(base, rel=1e-9)
    assert vendi_score(x * rng.uniform(0.01, 100, size=(50, 1))) == pytest.approx(base, rel=1e-9)
    assert vendi_score(np.vstack([x, np.zeros((3, 10))])) == pytest.approx(base, rel=1e-9)  # no direction
    assert vendi_score(np.zeros((0, 10))) == 0.0
    # Orders: larger q weighs the dominant directions more, so VS never grows with q.
    orders = [vendi_score(x, q=q) for q in (0.0, 0.5, 1.0, 2.0, math.inf)]
    assert all(a >= b - 1e-9 for a, b in zip(orders, orders[1:], strict=False))
    assert orders[0] == pytest.approx(10.0)  # q=0 counts the nonzero eigenvalues: the rank
    with pytest.raises(AcqsynthError):
        vendi_score(np.zeros(5))
    with pytest.raises(AcqsynthError):
        vendi_score(x, q=-1.0)


def test_g_vendi_is_vendi_of_normalised_gradients():
    rng = np.random.default_rng(5)
    grads = rng.normal(size=(30, 200)) * rng.uniform(1e-4, 1e3, size=(30, 1))
    assert g_vendi(grads) == pytest.approx(naive_vendi(grads.tolist(), 1.0), rel=1e-6)
    assert g_vendi(np.tile(grads[0], (7, 1))) == pytest.approx(1.0)


def test_vendi_scales_to_many_rows():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(30_000, 384)).astype(np.float32)  # d×d path: a 384×384 eigenproblem
    got = vendi_score(x)
    assert 300 < got <= 384  # near-isotropic Gaussian rows: close to the full dimension
