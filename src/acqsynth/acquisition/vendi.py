"""Dataset-level diversity for reports: the Vendi score and G-Vendi (not per-sample acquisitions).

Vendi score (Friedman & Dieng, 2023): with unit rows x_i and the cosine kernel K = X Xᵀ / n, whose
eigenvalues λ sum to 1, VS_q = exp(H_q(λ)), the exponential of the Rényi entropy of order q
(Shannon at q = 1). It is the effective number of distinct items: 1 for n copies of one item, n for
n orthogonal items. K has the same nonzero spectrum as the d×d covariance XᵀX / n, so whichever
is smaller is decomposed: 100k rows of a 384-d embedding cost one 384×384 eigenproblem.
"""

from __future__ import annotations

import math

import numpy as np

from acqsynth.errors import AcqsynthError

_CHUNK = 8192
"""Rows normalised and accumulated at a time when building the covariance."""
_ZERO = 1e-12
"""Eigenvalues below this (the spectrum sums to 1) are rounding noise around 0."""


def _gram_spectrum(x: np.ndarray) -> np.ndarray:
    """Eigenvalues of X Xᵀ / n for unit rows X (via XᵀX / n when d < n), clipped at 0, summing to 1."""
    n, d = x.shape
    if n <= d:
        u = _unit(x)
        lam = np.linalg.eigvalsh(u @ u.T / n)
    else:
        cov = np.zeros((d, d), dtype=np.float64)
        for start in range(0, n, _CHUNK):
            u = _unit(x[start : start + _CHUNK])
            cov += u.T @ u
        lam = np.linalg.eigvalsh(cov / n)
    lam = np.clip(lam, 0.0, None)
    return lam / lam.sum()


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def vendi_score(embeddings: np.ndarray, q: float = 1.0) -> float:
    """Vendi score of order `q` of the rows of `embeddings` [n, d] under the cosine kernel.

    q = 1: exp(−Σ λ ln λ); q ≠ 1: exp(ln(Σ λ^q) / (1 − q)); q = inf: 1 / max λ. Rows are
    L2-normalised first; all-zero rows have no direction and are left out. 0.0 for no rows.
    """
    x = np.asarray(embeddings)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if x.ndim != 2:
        raise AcqsynthError(f"vendi_score expects a 2-d array [n, d], got shape {x.shape}")
    if q < 0 or math.isnan(q):
        raise AcqsynthError(f"vendi_score: the order q must be >= 0, got {q}")
    if not np.isfinite(x).all():
        raise AcqsynthError("vendi_score: the vectors contain NaN or infinite values")
    # Kept in its own dtype; `_gram_spectrum` works in float64 one chunk at a time.
    has_direction = np.linalg.norm(x, axis=1) > 0
    if not has_direction.all():
        x = x[has_direction]
    if len(x) == 0:
        return 0.0
    lam = _gram_spectrum(x)
    lam = lam[lam > _ZERO]
    if q == 1:
        return float(np.exp(-(lam * np.log(lam)).sum()))
    if math.isinf(q):
        return float(1.0 / lam.max())
    return float(np.exp(np.log((lam**q).sum()) / (1.0 - q)))


def g_vendi(gradients: np.ndarray, q: float = 1.0) -> float:
    """G-Vendi (Prismatic Synthesis): the Vendi score of per-sample gradient vectors [n, p], each
    normalised, so it counts the distinct directions in which the samples would move the model.

    The gradients (often random projections of per-sample loss gradients) come from elsewhere.
    """
    return vendi_score(gradients, q=q)
