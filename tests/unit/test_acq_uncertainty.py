"""Forward-pass acquisition functions against naive one-sample-at-a-time references on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from acqsynth.acquisition import (
    EL2N,
    Confidence,
    LeastConfidence,
    Loss,
    RandomScore,
    ScoringContext,
    TokenEntropy,
)
from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import load_student
from acqsynth.samples import Sample

QUESTIONS = [
    ("q1", "What is 12 + 7?", "19"),
    ("q2", "Natalia sold clips to 48 of her friends in April. How many?", "72"),
    ("q3", "Which gas do plants absorb?", "carbon dioxide"),
    ("q4", "def add(a, b):", "return a + b"),
    ("q5", "The quick brown fox", "jumps over the lazy dog 0 1 2 3"),
]


@pytest.fixture(scope="module")
def student(tiny_model_dir):
    return load_student(str(tiny_model_dir), device="cpu", batch_size=2)


@pytest.fixture
def samples():
    return [Sample(id=i, question=q, answer=a) for i, q, a in QUESTIONS]


def make_ctx(student, **kw):
    return ScoringContext(student=student, answer_params=GenerationParams(max_new_tokens=10, temperature=0.7), **kw)


def naive_token_dists(student, question: str, answer: str) -> tuple[list[list[float]], list[int]]:
    """Next-token distributions (as Python lists) at each answer token, one sample, no padding."""
    tok = student.tokenizer
    prompt = tok.apply_chat_template([{"role": "user", "content": question}], tokenize=False, add_generation_prompt=True)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    a_ids = tok(answer, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = student.model(torch.tensor([p_ids + a_ids])).logits[0]
    dists = []
    for t in range(len(a_ids)):
        row = logits[len(p_ids) - 1 + t].double().tolist()
        m = max(row)
        z = sum(math.exp(v - m) for v in row)
        dists.append([math.exp(v - m) / z for v in row])
    return dists, a_ids


def naive(kind: str, dists: list[list[float]], ids: list[int]) -> float:
    vals = []
    for p, y in zip(dists, ids, strict=True):
        if kind == "loss":
            vals.append(-math.log(p[y]))
        elif kind == "lp":
            vals.append(math.log(p[y]))
        elif kind == "margin":
            top = sorted(p, reverse=True)
            vals.append(top[0] - top[1])
        elif kind == "entropy":
            vals.append(-sum(q * math.log(q) for q in p if q > 0))
        elif kind == "el2n":
            vals.append(math.sqrt(sum((q - (1.0 if v == y else 0.0)) ** 2 for v, q in enumerate(p))))
    return sum(vals) / len(vals)


@pytest.mark.parametrize("answer", ["reference", "own"])
def test_forward_functions_equal_naive_references(student, samples, answer):
    ctx = make_ctx(student)
    fns = {
        "loss": Loss(answer=answer),
        "lc": LeastConfidence(answer=answer),
        "entropy": TokenEntropy(answer=answer),
        "el2n": EL2N(answer=answer),
        "confidence": Confidence(answer=answer),
    }
    got = {k: f.score(samples, ctx) for k, f in fns.items()}
    texts = [a[0] for a in ctx.answers(samples, 1, by="t")] if answer == "own" else [s.answer for s in samples]
    for i, (s, text) in enumerate(zip(samples, texts, strict=True)):
        dists, ids = naive_token_dists(student, s.question, text)
        if not ids:
            assert all(np.isnan(got[k][i]) for k in got)
            continue
        assert got["loss"][i] == pytest.approx(naive("loss", dists, ids), abs=1e-5)
        assert got["lc"][i] == pytest.approx(1 - math.exp(naive("lp", dists, ids)), abs=1e-5)
        assert got["entropy"][i] == pytest.approx(naive("entropy", dists, ids), abs=1e-5)
        assert got["el2n"][i] == pytest.approx(naive("el2n", dists, ids), abs=1e-5)
        assert got["confidence"][i] == pytest.approx(1 / naive("margin", dists, ids), rel=1e-5)


def test_one_forward_pass_serves_every_function(student, samples):
    ctx = make_ctx(student)
    calls = []
    real = student.score_texts

    def counting(*a, **kw):
        calls.append(len(a[0]))
        return real(*a, **kw)

    student.score_texts = counting
    try:
        for f in (Loss(answer="reference"), EL2N(), LeastConfidence(answer="reference"), TokenEntropy(answer="reference")):
            f.score(samples, ctx)
    finally:
        del student.score_texts
    assert calls == [len(samples)]


def test_own_answers_are_sampled_once_and_shared(student, samples):
    ctx = make_ctx(student)
    ctx.max_answers = 4
    first = ctx.answers(samples, 1, by="confidence")
    four = ctx.answers(samples, 4, by="answer-variance")
    assert [a[0] for a in four] == [a[0] for a in first]
    assert all(len(a) == 4 for a in four)
    again = make_ctx(student)
    again.max_answers = 4
    assert again.answers(samples, 4, by="x") == four  # seeded: same answers in a fresh context


def test_properties(student, samples):
    ctx = make_ctx(student)
    loss = Loss(answer="reference").score(samples, ctx)
    lc = LeastConfidence(answer="reference").score(samples, ctx)
    # least confidence is a monotone transform of the mean log-prob, so it orders like the loss
    assert np.argsort(loss).tolist() == np.argsort(lc).tolist()
    ent = TokenEntropy(answer="reference").score(samples, ctx)
    assert np.all(ent >= 0) and np.all(ent <= math.log(student.model.config.vocab_size) + 1e-6)
    el2n = EL2N().score(samples, ctx)
    assert np.all(el2n >= 0) and np.all(el2n <= math.sqrt(2) + 1e-6)
    conf = Confidence(answer="reference").score(samples, ctx)
    assert np.all(conf >= 1.0)  # a mean margin is at most 1


def test_confidence_of_a_flat_distribution_is_capped():
    s = Sample(id="a", question="q", answer="x")

    class Flat:  # a student whose top-2 are tied everywhere: margin 0
        def format_prompt(self, p):
            return "q"

        def score_texts(self, prefixes, conts, **kw):
            from acqsynth.models.interfaces import TokenScores

            n = 3
            return [
                TokenScores(np.zeros(n, np.int64), np.full(n, -1.0), np.full((n, 2), -0.7), np.zeros((n, 2), np.int64),
                            np.ones(n), np.ones(n))
                for _ in prefixes
            ]

    ctx = ScoringContext(student=Flat())
    assert Confidence(answer="reference", epsilon=1e-4).score([s], ctx)[0] == pytest.approx(1e4)


def test_missing_reference_answer_is_named(student):
    ctx = make_ctx(student)
    bad = [Sample(id="ok", question="a", answer="1"), Sample(id="no-answer", question="b", answer="")]
    with pytest.raises(AcqsynthError, match="'no-answer'.*answer"):
        Loss(answer="reference").score(bad, ctx)
    with pytest.raises(AcqsynthError, match="needs a student"):
        Loss().score(bad, ScoringContext())
    with pytest.raises(AcqsynthError, match="answer='mine'"):
        Loss(answer="mine").score(bad, ctx)


def test_empty_input(student):
    ctx = make_ctx(student)
    for f in (Loss(), Confidence(), EL2N(), RandomScore()):
        assert f.score([], ctx).shape == (0,)


def test_random_is_seeded_and_order_free(samples):
    a = RandomScore().score(samples, ScoringContext(seed=3))
    b = RandomScore().score(samples[::-1], ScoringContext(seed=3))[::-1]
    c = RandomScore().score(samples, ScoringContext(seed=4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all((a >= 0) & (a < 1))
