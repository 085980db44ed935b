"""Proximity, diversity and archive diversity against naive loops, plus the properties they must have."""

from __future__ import annotations

import math

import numpy as np
import pytest
from embedders import HashingEmbedder, TableEmbedder
from sklearn.cluster import KMeans, MiniBatchKMeans

from acqsynth.acquisition import embedding
from acqsynth.acquisition.base import ScoringContext, spec_of
from acqsynth.acquisition.embedding import (
    KMEANS_N_INIT,
    ArchiveDiversity,
    Diversity,
    Proximity,
    reference_centroids,
)
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample

REFERENCE = [
    "What is 12 + 7?",
    "What is 15 + 9?",
    "What is 3 times 8?",
    "Natalia sold clips to 48 of her friends in April. How many clips did she sell?",
    "Weng earns $12 an hour for babysitting. How much did she earn for 50 minutes?",
    "Which gas do plants absorb from the air?",
    "Which planet is closest to the sun?",
    "Write a function that adds two numbers.",
    "Write a function that reverses a string.",
    "A train travels 60 miles in 1.5 hours. What is its speed?",
    "What is 12 + 7?",  # a duplicate: k-means sees one distinct point for both
    "Who wrote the novel Pride and Prejudice?",
]
CANDIDATES = [
    "What is 13 + 8?",
    "Which gas do animals exhale?",
    "Write a function that multiplies two numbers.",
    "A car travels 90 miles in 2 hours. What is its speed?",
    "Describe the water cycle.",
    "",
    "What is 12 + 7?",
]


def samples_of(questions: list[str]) -> list[Sample]:
    return [Sample(id=f"s{i}", question=q, answer="") for i, q in enumerate(questions)]


def make_ctx(embedder=None, reference=REFERENCE, seed: int = 0) -> ScoringContext:
    return ScoringContext(embedder=embedder or HashingEmbedder(), reference=reference, seed=seed)


def dot(a, b) -> float:
    return sum(float(x) * float(y) for x, y in zip(a, b, strict=True))


def normalised(v) -> list[float]:
    n = math.sqrt(sum(float(x) ** 2 for x in v))
    return [float(x) / n for x in v]


# ---- reference_centroids ------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 4, 7])
def test_centroids_are_normalised_member_means_naive(k):
    emb = HashingEmbedder().encode(REFERENCE)
    got = reference_centroids(emb, k=k, seed=3)
    unit = np.array([normalised(v) for v in emb])
    labels = KMeans(n_clusters=k, n_init=KMEANS_N_INIT, random_state=3).fit(unit).labels_
    want = []
    for c in range(k):
        members = [unit[i] for i in range(len(unit)) if labels[i] == c]
        mean = [sum(m[j] for m in members) / len(members) for j in range(unit.shape[1])]
        want.append(normalised(mean))
    assert got.shape == (k, emb.shape[1])
    np.testing.assert_allclose(got, np.array(want), atol=1e-5)


def test_centroids_capped_by_distinct_points_and_deterministic():
    emb = HashingEmbedder().encode(REFERENCE)
    distinct = len(set(REFERENCE))
    assert len(reference_centroids(emb, k=100, seed=0)) == distinct
    np.testing.assert_array_equal(reference_centroids(emb, 5, seed=1), reference_centroids(emb, 5, seed=1))
    assert np.allclose(np.linalg.norm(reference_centroids(emb, 5, seed=1), axis=1), 1.0)
    with pytest.raises(AcqsynthError, match="empty"):
        reference_centroids(np.zeros((0, 8)), k=3, seed=0)


# ---- proximity / diversity ----------------------------------------------------------------------


@pytest.mark.parametrize("k", [3, 100])
def test_proximity_and_diversity_match_naive(k):
    embedder = HashingEmbedder()
    centroids = reference_centroids(embedder.encode(REFERENCE), k=k, seed=0)
    ctx = make_ctx(embedder)
    prox = Proximity(k=k).score(samples_of(CANDIDATES), ctx)
    div = Diversity(k=k).score(samples_of(CANDIDATES), ctx)
    for i, q in enumerate(CANDIDATES):
        e = normalised(embedder.encode([q])[0])
        want = max(dot(e, c) for c in centroids)
        assert prox[i] == pytest.approx(want, abs=1e-5)
        assert div[i] == pytest.approx(1.0 - want, abs=1e-5)
    assert prox.dtype == np.float64 and div.dtype == np.float64


def test_each_reference_question_has_proximity_one_when_k_covers_them():
    prox = Proximity(k=100).score(samples_of(REFERENCE), make_ctx())
    np.testing.assert_allclose(prox, 1.0, atol=1e-6)
    # The whole question is embedded: questions sharing a first character are not all alike.
    other = Proximity(k=100).score(
        samples_of(["What is the capital of Peru?", "Which is the best pie?"]), make_ctx()
    )
    assert np.all(other < 0.99)


def test_a_centroid_direction_has_proximity_one():
    embedder = HashingEmbedder()
    centroids = reference_centroids(embedder.encode(REFERENCE), k=3, seed=5)
    probes = [f"centroid {i}" for i in range(len(centroids))]
    table = TableEmbedder({p: c for p, c in zip(probes, centroids, strict=True)}, dim=embedder.dim)
    ctx = make_ctx(table, seed=5)
    prox = Proximity(k=3).score(samples_of([*probes, "something else entirely"]), ctx)
    np.testing.assert_allclose(prox[:-1], 1.0, atol=1e-6)
    assert prox[-1] < 1 - 1e-3


def test_centroids_memoised_per_k_and_seed():
    embedder = HashingEmbedder()
    ctx = make_ctx(embedder)
    few = Proximity(k=2).score(samples_of(REFERENCE), ctx)
    many = Proximity(k=100).score(samples_of(REFERENCE), ctx)
    assert np.all(many >= few - 1e-9) and np.any(few < 0.99)  # k is part of the key
    calls = embedder.calls
    Diversity(k=100).score(samples_of(REFERENCE), ctx)
    assert embedder.calls == calls  # centroids and embeddings reused
    assert "reference-centroids(k=2,seed=0)" in ctx._memo


def test_minibatch_path_for_large_reference(monkeypatch):
    monkeypatch.setattr(embedding, "KMEANS_FULL_MAX", 5)
    emb = HashingEmbedder().encode(REFERENCE)
    got = reference_centroids(emb, k=4, seed=2)
    np.testing.assert_array_equal(got, reference_centroids(emb, k=4, seed=2))
    unit = np.array([normalised(v) for v in emb])
    labels = (
        MiniBatchKMeans(n_clusters=4, n_init=KMEANS_N_INIT, batch_size=4096, random_state=2).fit(unit).labels_
    )
    want = []
    for c in range(4):
        members = [unit[i] for i in range(len(unit)) if labels[i] == c]
        if members:
            want.append(normalised([sum(m[j] for m in members) for j in range(unit.shape[1])]))
    np.testing.assert_allclose(got, np.array(want), atol=1e-5)


def test_proximity_errors_and_empty():
    assert Proximity().score([], make_ctx()).shape == (0,)
    with pytest.raises(AcqsynthError, match="reference"):
        Proximity().score(samples_of(["q"]), make_ctx(reference=None))
    with pytest.raises(AcqsynthError, match="empty"):
        Diversity().score(samples_of(["q"]), make_ctx(reference=[]))
    with pytest.raises(AcqsynthError, match="embedder"):
        Proximity().score(samples_of(["q"]), ScoringContext(reference=REFERENCE))


# ---- archive diversity --------------------------------------------------------------------------


def naive_archive(vectors: list[list[float]], threshold: float) -> list[float]:
    """Plain loops: the distance to the nearest archive member (1 for the first); members join above
    the threshold."""
    archive: list[list[float]] = []
    gains = []
    for v in vectors:
        e = normalised(v)
        gain = 1.0 if not archive else min(1.0 - dot(x, e) for x in archive)
        gain = gain if gain > 1e-9 else 0.0
        gains.append(gain)
        if gain > threshold:
            archive.append(e)
    return gains


QUESTIONS = CANDIDATES + REFERENCE + ["Describe the water cycle.", "What is 13 + 8?", "What is 13 + 9?"]


@pytest.mark.parametrize("threshold", [0.01, 0.2])
def test_archive_diversity_matches_naive(threshold):
    embedder = HashingEmbedder()
    got = ArchiveDiversity(threshold=threshold).score(samples_of(QUESTIONS), make_ctx(embedder))
    want = naive_archive([list(embedder.encode([q])[0]) for q in QUESTIONS], threshold)
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got.dtype == np.float64


def test_archive_first_gains_one_and_order_matters():
    ctx = make_ctx()
    a, b = "What is 12 + 7?", "Which planet is closest to the sun?"
    assert ArchiveDiversity().score(samples_of([a, a]), ctx).tolist() == [1.0, 0.0]
    gains = ArchiveDiversity().score(samples_of([a, b, a]), ctx)
    assert gains[0] == 1.0 and gains[1] > 0.01
    assert gains[2] == 0.0  # a duplicate of a member, however far it was from the others


def test_archive_gives_every_new_question_a_gain_however_spread_the_archive() -> None:
    """The authors' max-distance form scored most questions 0 once two far-apart members were in; the
    nearest-member distance is 0 only for a duplicate."""
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(40, 16))
    table = {f"v{i}": v for i, v in enumerate(vectors)}
    gains = ArchiveDiversity().score(samples_of(list(table)), make_ctx(TableEmbedder(table)))
    assert (gains > 0.01).all()


def test_archive_duplicate_of_any_member_gains_zero():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 16))
    table = {f"v{i}": v for i, v in enumerate(vectors)}
    acq = ArchiveDiversity(threshold=0.0)
    ctx = make_ctx(TableEmbedder(table))
    acq.score(samples_of(list(table)), ctx)
    assert len(acq.state_dict()["archive"]) > 5
    for i, member in enumerate(acq.state_dict()["archive"]):
        probe = ArchiveDiversity(threshold=acq.threshold)
        probe.load_state_dict(acq.state_dict())
        name = f"member {i}"
        gain = probe.score(samples_of([name]), make_ctx(TableEmbedder({name: member})))
        assert gain[0] == 0.0


def test_archive_state_round_trips_and_batches_do_not_matter():
    whole = ArchiveDiversity().score(samples_of(QUESTIONS), make_ctx())
    first = ArchiveDiversity()
    head = first.score(samples_of(QUESTIONS[:9]), make_ctx())
    resumed = ArchiveDiversity()
    resumed.load_state_dict(first.state_dict())
    tail = resumed.score(samples_of(QUESTIONS[9:]), make_ctx())
    np.testing.assert_array_equal(np.concatenate([head, tail]), whole)
    state = resumed.state_dict()
    assert state["archive"].shape[0] > 0 and set(state) == {"archive"}
    old = ArchiveDiversity()
    old.load_state_dict({**first.state_dict(), "best": np.zeros(len(first.state_dict()["archive"]))})  # older save
    np.testing.assert_array_equal(old.score(samples_of(QUESTIONS[9:]), make_ctx()), tail)
    # State is private: not a parameter, not compared, not in the spec.
    assert resumed == ArchiveDiversity() and spec_of(resumed) == "diversity-archive"
    assert ArchiveDiversity().score([], make_ctx()).shape == (0,)


def test_archive_rejects_mismatched_state():
    acq = ArchiveDiversity()
    acq.score(samples_of(["a question"]), make_ctx(HashingEmbedder(dim=32)))
    with pytest.raises(AcqsynthError, match="embedder"):
        acq.score(samples_of(["another"]), make_ctx(HashingEmbedder(dim=64)))
    with pytest.raises(AcqsynthError, match="state"):
        acq.load_state_dict({"archive": np.zeros(4)})
