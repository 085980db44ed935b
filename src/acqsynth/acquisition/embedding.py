"""Acquisition functions in question-embedding space: proximity to the seed set, diversity from it,
and facility-location diversity against a running archive of accepted questions.

Proximity and diversity follow AcquisitionSynthesis: the reference (seed / target) questions are
embedded and clustered with k-means, each centroid is the normalised mean of its members, and a
question scores by its best cosine to a centroid. Unlike the reference code, which embedded only
the first character of each seed, the whole question is embedded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from acqsynth.acquisition.base import ScoringContext
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample

KMEANS_FULL_MAX = 10_000
"""Up to this many reference points k-means runs in full (KMeans); above it, MiniBatchKMeans."""
KMEANS_N_INIT = 3
"""k-means restarts (fixed, so results do not depend on sklearn's 'auto')."""
_NOISE = 1e-9
"""Distance gains below this are floating-point rounding, not new coverage."""


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm in float64; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def reference_centroids(embeddings: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Unit centroids [K, dim] of k-means on the unit-normalised `embeddings`, K = min(k, distinct points).

    Each centroid is the normalised mean of its member vectors (not sklearn's raw centre). When k
    covers every distinct point, the centroids are exactly those points. Deterministic under `seed`.
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans

    x = unit_rows(embeddings)
    if x.ndim != 2 or len(x) == 0:
        raise AcqsynthError("cannot compute reference centroids: the reference set is empty")
    if k < 1:
        raise AcqsynthError(f"the number of reference clusters k must be at least 1, got {k}")
    distinct = np.unique(x, axis=0)
    if k >= len(distinct):
        return distinct
    if len(x) <= KMEANS_FULL_MAX:
        km: Any = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=seed)
    else:
        km = MiniBatchKMeans(n_clusters=k, n_init=KMEANS_N_INIT, batch_size=4096, random_state=seed)
    labels = km.fit(x).labels_
    sums = np.zeros((k, x.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, x)
    centroids = unit_rows(sums[np.bincount(labels, minlength=k) > 0])
    # A cluster of antipodal members has a zero mean and no direction.
    return centroids[np.linalg.norm(centroids, axis=1) > 0]


def _centroids(ctx: ScoringContext, k: int, by: str) -> np.ndarray:
    """The reference set's centroids, computed once per context (shared by proximity and diversity)."""
    reference = ctx.need("reference", by)
    if len(reference) == 0:
        raise AcqsynthError(f"acquisition {by!r} needs reference questions, but the reference set is empty")
    return ctx.memo(
        f"reference-centroids(k={k},seed={ctx.seed})",
        lambda: reference_centroids(ctx.embed(list(reference), by=by), k, ctx.seed),
    )


def _question_embeddings(samples: Sequence[Sample], ctx: ScoringContext, by: str) -> np.ndarray:
    return unit_rows(ctx.embed([s.question for s in samples], by=by))


def _nearest_centroid_cosine(samples: Sequence[Sample], ctx: ScoringContext, k: int, by: str) -> np.ndarray:
    """max_k cos(E(q), c_k) per sample: the cosine of each question to its nearest reference centroid."""
    if not samples:
        return np.zeros(0, dtype=np.float64)
    centroids = _centroids(ctx, k, by)
    return (_question_embeddings(samples, ctx, by) @ centroids.T).max(axis=1)


@dataclass
class Proximity:
    """AcquisitionSynthesis' proximity: A = max_k cos(E(q), c_k), the cosine of the question to its
    nearest centroid of the reference (seed / target) questions. High = close to what the student
    will be tested on."""

    name: ClassVar[str] = "proximity"
    k: int = 100
    """Number of k-means clusters of the reference questions (capped by their distinct count)."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        return _nearest_centroid_cosine(samples, ctx, self.k, self.name)


@dataclass
class Diversity:
    """AcquisitionSynthesis' first diversity form: 1 − proximity. High = far from every cluster of the
    reference questions."""

    name: ClassVar[str] = "diversity"
    k: int = 100
    """Number of k-means clusters of the reference questions (capped by their distinct count)."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        return 1.0 - _nearest_centroid_cosine(samples, ctx, self.k, self.name)


def _empty_archive() -> np.ndarray:
    return np.zeros((0, 0), dtype=np.float64)


@dataclass
class ArchiveDiversity:
    """Diversity against a running archive of accepted questions: A(q) = min_i (1 − cos(x_i, E(q))), the
    distance from q to its nearest archive member (1 for the first question); q joins the archive when
    A(q) exceeds `threshold`.

    This is the facility-location gain of adding q to the archive, over the archive and q: every member
    is already its own facility, so only q's own coverage changes, from max_i cos(x_i, q) to 1. A
    duplicate of any member gains 0 and a question unlike every member gains up to 2. (The authors'
    later form, gain = mean_i max(0, d_i − b_i) with b_i the largest distance member i has seen, rewards
    a question only for being farther from a member than anything accepted before, so its gains decay
    as the archive grows, and a variant of it scored most new questions exactly 0; docs/acquisition.md.)

    Stateful: the archive persists across `score` calls, and within a call samples are scored in
    order, each against the archive as the earlier ones left it. Use one instance per run and
    `state_dict` / `load_state_dict` to resume.
    """

    name: ClassVar[str] = "diversity-archive"
    threshold: float = 0.01
    """A question joins the archive when its distance to the nearest member exceeds this."""
    _archive: np.ndarray = field(default_factory=_empty_archive, init=False, repr=False, compare=False)

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        if not samples:
            return np.zeros(0, dtype=np.float64)
        emb = _question_embeddings(samples, ctx, self.name)
        m, dim = len(self._archive), emb.shape[1]
        if m and self._archive.shape[1] != dim:
            raise AcqsynthError(
                f"acquisition {self.name!r}: the archive holds {self._archive.shape[1]}-d embeddings but "
                f"the embedder gives {dim}-d ones; use the same embedder as the run being resumed"
            )
        archive = np.empty((m + len(emb), dim), dtype=np.float64)
        if m:
            archive[:m] = self._archive
        gains = np.empty(len(emb), dtype=np.float64)
        for j, e in enumerate(emb):
            if m == 0:
                gains[j] = 1.0
            else:
                nearest = float(np.clip(1.0 - (archive[:m] @ e).max(), 0.0, 2.0))
                gains[j] = nearest if nearest > _NOISE else 0.0
            if gains[j] > self.threshold:
                archive[m] = e
                m += 1
        self._archive = archive[:m].copy()
        return gains

    def state_dict(self) -> dict[str, np.ndarray]:
        """The archive (vectors [M, dim]), for checkpoints."""
        return {"archive": self._archive.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the archive saved by `state_dict` (any other saved key, such as an older `best`, is ignored)."""
        archive = np.asarray(state["archive"], dtype=np.float64)
        if archive.size == 0:
            archive = archive.reshape(0, archive.shape[1] if archive.ndim == 2 else 0)
        if archive.ndim != 2:
            raise AcqsynthError(f"acquisition {self.name!r}: bad saved state (archive shape {archive.shape})")
        self._archive = archive.copy()
