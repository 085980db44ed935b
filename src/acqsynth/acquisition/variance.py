"""Disagreement among the student's own sampled answers: answer variance and semantic entropy.

Both read the k answers `ScoringContext.answers` samples once per question (shared with
`confidence`, `loss` on the own answer and each other). A student that answers a question many
different ways is unsure of it: high value.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from acqsynth.acquisition.base import ScoringContext
from acqsynth.acquisition.embedding import unit_rows
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample

DEFAULT_THRESHOLD = 0.35
"""Cosine distance below which average-linkage clusters of answers merge (self-consistency default)."""


def cluster_labels(embeddings: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> np.ndarray:
    """Group answers by meaning: agglomerative clustering of their embeddings, average linkage on
    cosine distance, merging while the linkage distance is below `threshold`.

    Labels are 0, 1, ... in order of first appearance, so equal groupings give equal arrays. The
    cosine distances are computed here (as sklearn's metric="cosine" would) so that an all-zero
    embedding is at distance 1 from everything instead of an error.
    """
    from sklearn.cluster import AgglomerativeClustering

    x = unit_rows(embeddings)
    n = len(x)
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    labels = (
        AgglomerativeClustering(
            n_clusters=None, metric="precomputed", linkage="average", distance_threshold=threshold
        )
        .fit(dist)
        .labels_
    )
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].astype(np.int64)


def _group_sizes(labels: Sequence[object]) -> np.ndarray:
    return np.array(list(Counter(labels).values()), dtype=np.float64)


def _entropy(sizes: np.ndarray) -> float:
    """Discrete entropy (nats) of a partition given its group sizes."""
    p = sizes / sizes.sum()
    return float(-(p * np.log(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0


def _split(flat: np.ndarray, answers: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Cut the stacked embeddings of all answers back into one block per question."""
    bounds = np.cumsum([0] + [len(a) for a in answers])
    return [flat[bounds[i] : bounds[i + 1]] for i in range(len(answers))]


@dataclass
class AnswerVariance:
    """AcquisitionSynthesis' answer variance: cluster the embeddings of the student's k sampled
    answers with HDBSCAN; A = number of distinct labels (all noise together counts as one) / k.
    1/k when every answer means the same, up to 1 when they all differ."""

    name: ClassVar[str] = "answer-variance"
    k: int = 16
    """Answers the student samples per question."""
    min_cluster_size: int = 2
    """HDBSCAN: smallest group of answers that counts as a cluster."""
    min_samples: int = 1
    """HDBSCAN: neighbours (the point included) that make an answer a core point."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        if not samples:
            return np.zeros(0, dtype=np.float64)
        if self.k < 1 or self.min_cluster_size < 2 or self.min_samples < 1:
            raise AcqsynthError(
                f"acquisition {self.name!r} needs k >= 1, min_cluster_size >= 2 and min_samples >= 1; got "
                f"k={self.k}, min_cluster_size={self.min_cluster_size}, min_samples={self.min_samples}"
            )
        answers = ctx.answers(samples, self.k, by=self.name)
        flat = ctx.embed([a for ans in answers for a in ans], by=self.name)
        return np.array([self._variance(emb) for emb in _split(flat, answers)], dtype=np.float64)

    def _variance(self, emb: np.ndarray) -> float:
        n = len(emb)
        if n == 0:
            return math.nan
        return self.n_labels(emb) / n

    def n_labels(self, embeddings: np.ndarray) -> int:
        """Distinct HDBSCAN labels of one question's answer embeddings, noise (-1) counting as one."""
        from sklearn.cluster import HDBSCAN

        x = unit_rows(embeddings)
        if len(x) < max(2, self.min_samples):
            return 1  # too few answers for any core point: all noise
        # A canonical row order, so the labelling cannot depend on the order answers came in.
        x = x[np.lexsort(x.T[::-1])]
        labels = (
            HDBSCAN(
                min_cluster_size=self.min_cluster_size,
                min_samples=self.min_samples,
                metric="euclidean",
                copy=True,
            )
            .fit(x)
            .labels_
        )
        return len(set(labels.tolist()))


@dataclass
class SemanticEntropy:
    """Semantic entropy (Kuhn et al., 2023; discrete form): group the student's k sampled answers by
    meaning and take A = −Σ_c (n_c/k) ln(n_c/k) in nats. 0 when all answers agree, ln k when all differ.

    With a task, answers mean the same when the task extracts the same final answer from them (an
    answer with nothing to extract is a group of its own); without one, when their embeddings fall
    in one agglomerative cluster (`cluster_labels`).
    """

    name: ClassVar[str] = "semantic-entropy"
    k: int = 16
    """Answers the student samples per question."""
    threshold: float = DEFAULT_THRESHOLD
    """Cosine distance threshold of the embedding clustering (unused when a task extracts answers)."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        if not samples:
            return np.zeros(0, dtype=np.float64)
        if self.k < 1:
            raise AcqsynthError(f"acquisition {self.name!r} needs k >= 1, got k={self.k}")
        answers = ctx.answers(samples, self.k, by=self.name)
        if ctx.task is not None:
            groups = [self._by_extraction(ans, s, ctx) for ans, s in zip(answers, samples, strict=True)]
        else:
            flat = ctx.embed([a for ans in answers for a in ans], by=self.name)
            groups = [cluster_labels(emb, self.threshold).tolist() for emb in _split(flat, answers)]
        return np.array([_entropy(_group_sizes(g)) if g else math.nan for g in groups], dtype=np.float64)

    @staticmethod
    def _by_extraction(answers: Sequence[str], sample: Sample, ctx: ScoringContext) -> list[object]:
        """Group key per answer: its extracted final answer, or a unique key when there is none."""
        task = ctx.task
        assert task is not None
        keys: list[object] = []
        for i, text in enumerate(answers):
            got = task.extract(text, sample)
            keys.append(("answer", got) if got is not None else ("none", i))
        return keys
