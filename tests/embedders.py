"""Small deterministic embedders for tests: stand-ins for a sentence embedder (a dependency, not the
thing under test). They implement the `Embedder` protocol, `encode(texts) -> float32 [N, dim]` with
L2-normalised rows, and need no model weights."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np


class HashingEmbedder:
    """Hashed bag of character n-grams with signed buckets, L2-normalised.

    Texts sharing many n-grams get high cosine similarity; unrelated texts are nearly orthogonal
    for a large enough `dim`. The hash is stable across processes (blake2b, not Python's `hash`).
    """

    def __init__(self, dim: int = 256, n: int = 3) -> None:
        self.dim = dim
        self.n = n
        self.calls = 0
        """How many times `encode` was called (tests use it to check caching)."""

    def _bucket(self, gram: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(gram.encode(), digest_size=8).digest(), "little")
        return h % self.dim, 1.0 if (h >> 40) & 1 else -1.0

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text; an empty text still gets a (fixed) unit vector."""
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float64)
        for row, text in enumerate(texts):
            padded = "\x02" * (self.n - 1) + text + "\x03" * (self.n - 1)
            for i in range(len(padded) - self.n + 1):
                col, sign = self._bucket(padded[i : i + self.n])
                out[row, col] += sign
            norm = np.linalg.norm(out[row])
            if norm == 0.0:  # the signed buckets cancelled out exactly
                out[row, 0], norm = 1.0, 1.0
            out[row] /= norm
        return out.astype(np.float32)


class TableEmbedder:
    """Embeds texts found in a table to given vectors (normalised); any other text falls back to
    a `HashingEmbedder`. Lets a test place a question exactly on a chosen direction."""

    def __init__(self, table: Mapping[str, np.ndarray], dim: int | None = None) -> None:
        self.table = {k: np.asarray(v, dtype=np.float64) for k, v in table.items()}
        width = dim or len(next(iter(self.table.values())))
        self.fallback = HashingEmbedder(dim=width)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        rows = []
        for t in texts:
            v = self.table.get(t)
            rows.append(v / np.linalg.norm(v) if v is not None else self.fallback.encode([t])[0])
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)
