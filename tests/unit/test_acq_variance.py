"""Answer variance and semantic entropy against naive recomputations from the same sampled answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from embedders import HashingEmbedder, TableEmbedder
from sklearn.cluster import HDBSCAN

from acqsynth.acquisition.base import ScoringContext
from acqsynth.acquisition.variance import AnswerVariance, SemanticEntropy, cluster_labels
from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import Completion, GenerationParams
from acqsynth.models.loader import load_student
from acqsynth.samples import Sample
from acqsynth.tasks import get_task

K = 8


class ScriptedStudent:
    """A student double that 'samples' fixed answers: answers[question][:n] for each prompt."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers

    def sample(self, prompts, params, seed_index=None):
        out = []
        for messages in prompts:
            content = messages[-1]["content"]
            question = next(q for q in self.answers if q in content)
            texts = self.answers[question]
            out.append([Completion(texts[i % len(texts)], 0, 0, "stop") for i in range(params.n)])
        return out


# Answers with structure: groups of paraphrases, exact repeats and outliers.
SCRIPT = {
    "q-agree": ["The answer is 42."] * K,
    "q-two": ["It is 7 because 3 + 4 = 7. #### 7"] * 4 + ["Clearly the result is nine. #### 9"] * 4,
    "q-mixed": [
        "The sum is 12, so #### 12",
        "The sum is 12, hence #### 12",
        "The sum is 12 so #### 12",
        "We get thirteen: #### 13",
        "We get thirteen, #### 13",
        "no idea",
        "banana split recipe with chocolate",
        "#### 12",
    ],
    "q-spread": [f"answer number {i}: {'xyzw'[i % 4] * (i + 3)} {i * 37}" for i in range(K)],
}


def samples_of(questions) -> list[Sample]:
    return [Sample(id=f"s{i}", question=q, answer="") for i, q in enumerate(questions)]


def scripted_ctx(script=SCRIPT, embedder=None, task=None) -> ScoringContext:
    return ScoringContext(student=ScriptedStudent(script), embedder=embedder or HashingEmbedder(), task=task)


def unit(v) -> list[float]:
    n = math.sqrt(sum(float(x) ** 2 for x in v))
    return [float(x) / n for x in v]


def cos_dist(a, b) -> float:
    return 1.0 - sum(x * y for x, y in zip(a, b, strict=True))


def naive_clusters(vectors, threshold: float) -> list[int]:
    """Average-linkage agglomerative clustering by brute force: merge the closest pair of clusters
    (mean pairwise cosine distance) while that distance is below the threshold."""
    vs = [unit(v) for v in vectors]
    clusters = [[i] for i in range(len(vs))]
    while len(clusters) > 1:
        best, pair = math.inf, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                total = sum(cos_dist(vs[i], vs[j]) for i in clusters[a] for j in clusters[b])
                d = total / (len(clusters[a]) * len(clusters[b]))
                if d < best:
                    best, pair = d, (a, b)
        if best >= threshold:
            break
        a, b = pair
        clusters[a] = clusters[a] + clusters[b]
        del clusters[b]
    labels = [0] * len(vs)
    for c, members in enumerate(clusters):
        for i in members:
            labels[i] = c
    return labels


def naive_entropy(keys) -> float:
    counts: dict = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    n = len(keys)
    return -sum(c / n * math.log(c / n) for c in counts.values())


def same_partition(a, b) -> bool:
    return all((a[i] == a[j]) == (b[i] == b[j]) for i in range(len(a)) for j in range(len(a)))


# ---- cluster_labels -----------------------------------------------------------------------------


@pytest.mark.parametrize("threshold", [0.2, 0.35, 0.6])
def test_cluster_labels_matches_naive_agglomerative(threshold):
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(4, 12))
    x = centres[rng.integers(0, 4, 20)] + 0.35 * rng.normal(size=(20, 12))
    got = cluster_labels(x, threshold)
    want = naive_clusters(x.tolist(), threshold)
    assert same_partition(got.tolist(), want)
    assert 1 < len(set(want)) < 20  # the data has real structure at these thresholds
    # Labels are numbered in order of first appearance.
    firsts = [got.tolist().index(c) for c in range(got.max() + 1)]
    assert firsts == sorted(firsts)


def test_cluster_labels_edge_cases():
    assert cluster_labels(np.zeros((0, 4))).shape == (0,)
    assert cluster_labels(np.ones((1, 4))).tolist() == [0]
    assert cluster_labels(np.ones((5, 4))).tolist() == [0] * 5
    assert cluster_labels(np.eye(3)).tolist() == [0, 1, 2]
    assert cluster_labels(np.array([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])).tolist() == [0, 1, 2]


# ---- answer variance ----------------------------------------------------------------------------


def naive_answer_variance(answers: list[str], embedder, min_cluster_size: int, min_samples: int) -> float:
    vectors = np.array([unit(embedder.encode([a])[0]) for a in answers])
    labels = (
        HDBSCAN(min_cluster_size=min_cluster_size, min_samples=min_samples, copy=True).fit(vectors).labels_
    )
    distinct = set()
    for label in labels:
        distinct.add(int(label))
    return len(distinct) / len(answers)


@pytest.mark.parametrize(("min_cluster_size", "min_samples"), [(2, 1), (3, 2)])
def test_answer_variance_matches_naive(min_cluster_size, min_samples):
    embedder = HashingEmbedder()
    ctx = scripted_ctx(embedder=embedder)
    samples = samples_of(SCRIPT)
    acq = AnswerVariance(k=K, min_cluster_size=min_cluster_size, min_samples=min_samples)
    got = acq.score(samples, ctx)
    answers = ctx.answers(samples, K, by="test")
    want = [naive_answer_variance(a, embedder, min_cluster_size, min_samples) for a in answers]
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert got.dtype == np.float64 and len(set(got.tolist())) > 1


def test_answer_variance_properties():
    ctx = scripted_ctx()
    got = AnswerVariance(k=K).score(samples_of(["q-agree", "q-two"]), ctx)
    assert got.tolist() == [1 / K, 2 / K]  # identical answers: one label; two groups: two labels
    assert AnswerVariance(k=1).score(samples_of(["q-mixed"]), ctx).tolist() == [1.0]
    assert AnswerVariance(k=3, min_samples=5).score(samples_of(["q-mixed"]), ctx).tolist() == [1 / 3]
    assert AnswerVariance().score([], ctx).shape == (0,)
    # The order the answers come in does not change the labelling.
    mixed = SCRIPT["q-mixed"]
    want = AnswerVariance(k=K).score(samples_of(["q-mixed"]), ctx)
    for seed in range(5):
        shuffled = scripted_ctx({"q-mixed": [mixed[i] for i in np.random.default_rng(seed).permutation(K)]})
        assert AnswerVariance(k=K).score(samples_of(["q-mixed"]), shuffled).tolist() == want.tolist()


def test_answer_variance_errors():
    with pytest.raises(AcqsynthError, match="embedder"):
        AnswerVariance(k=2).score(samples_of(["q-agree"]), ScoringContext(student=ScriptedStudent(SCRIPT)))
    with pytest.raises(AcqsynthError, match="student"):
        AnswerVariance(k=2).score(samples_of(["q-agree"]), ScoringContext(embedder=HashingEmbedder()))
    with pytest.raises(AcqsynthError, match="min_cluster_size"):
        AnswerVariance(min_cluster_size=1).score(samples_of(["q-agree"]), scripted_ctx())


# ---- semantic entropy ---------------------------------------------------------------------------


def test_semantic_entropy_embedding_matches_naive():
    embedder = HashingEmbedder()
    ctx = scripted_ctx(embedder=embedder)
    samples = samples_of(SCRIPT)
    for threshold in (0.35, 0.7):
        got = SemanticEntropy(k=K, threshold=threshold).score(samples, ctx)
        answers = ctx.answers(samples, K, by="test")
        want = [naive_entropy(naive_clusters(embedder.encode(a).tolist(), threshold)) for a in answers]
        np.testing.assert_allclose(got, want, atol=1e-5)
        assert got.dtype == np.float64 and len(set(np.round(got, 6).tolist())) > 2


def test_semantic_entropy_task_matches_naive():
    task = get_task("math")
    ctx = scripted_ctx(task=task)
    samples = samples_of(SCRIPT)
    got = SemanticEntropy(k=K).score(samples, ctx)
    want = []
    for s, answers in zip(samples, ctx.answers(samples, K, by="test"), strict=True):
        keys = []
        for i, a in enumerate(answers):
            e = task.extract(a, s)
            keys.append(("none", i) if e is None else e)
        want.append(naive_entropy(keys))
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_semantic_entropy_properties():
    same = scripted_ctx({"q": ["#### 5"] * K})
    assert SemanticEntropy(k=K).score(samples_of(["q"]), same).tolist() == [0.0]
    # All different: by extracted answer, and by embedding (orthogonal answer vectors).
    differ = {"q": [f"#### {i}" for i in range(K)]}
    by_task = SemanticEntropy(k=K).score(samples_of(["q"]), scripted_ctx(differ, task=get_task("math")))
    assert by_task[0] == pytest.approx(math.log(K))
    table = TableEmbedder({f"#### {i}": np.eye(K)[i] for i in range(K)})
    by_embedding = SemanticEntropy(k=K).score(samples_of(["q"]), scripted_ctx(differ, embedder=table))
    assert by_embedding[0] == pytest.approx(math.log(K))
    # Answers with nothing to extract are each their own group.
    nothing = scripted_ctx({"q": ["no idea"] * K}, task=get_task("math"))
    assert SemanticEntropy(k=K).score(samples_of(["q"]), nothing)[0] == pytest.approx(math.log(K))
    assert SemanticEntropy().score([], same).shape == (0,)


# ---- with the tiny random student ---------------------------------------------------------------


def test_variance_functions_on_tiny_student(tiny_model_dir):
    student = load_student(str(tiny_model_dir), device="cpu", batch_size=4)
    embedder = HashingEmbedder()
    ctx = ScoringContext(
        student=student, embedder=embedder, answer_params=GenerationParams(max_new_tokens=8, temperature=0.7)
    )
    samples = samples_of(["What is 12 + 7?", "Which gas do plants absorb?", "def add(a, b):"])
    k = 4
    variance = AnswerVariance(k=k).score(samples, ctx)
    entropy = SemanticEntropy(k=k).score(samples, ctx)
    answers = ctx.answers(samples, k, by="test")  # cached: the answers both functions used
    assert all(len(a) == k for a in answers)
    want_v = [naive_answer_variance(a, embedder, 2, 1) for a in answers]
    want_e = [naive_entropy(naive_clusters(embedder.encode(a).tolist(), 0.35)) for a in answers]
    np.testing.assert_allclose(variance, want_v, atol=1e-5)
    np.testing.assert_allclose(entropy, want_e, atol=1e-5)
    assert np.all((variance >= 1 / k) & (variance <= 1)) and np.all(
        (entropy >= 0) & (entropy <= math.log(k) + 1e-9)
    )
