"""`learnability`: −|p − target| with p the student's probability of the gold answer, checked against a
hand computation from the student's own token scores on a tiny random model, and on a stub student
whose token probabilities are chosen."""

from __future__ import annotations

import math

import numpy as np
import pytest

from acqsynth.acquisition import (
    ACQUISITIONS,
    Learnability,
    Loss,
    ScoringContext,
    column_name,
    parse_acquisition,
)
from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import TokenScores
from acqsynth.models.loader import load_student
from acqsynth.samples import Sample
from acqsynth.tasks import get_task

SAMPLES = [
    Sample(id="q1", question="What is 12 + 7?", answer="19"),
    Sample(id="q2", question="Natalia sold 48 clips in April. How many?", answer="72"),
    Sample(id="q3", question="The quick brown fox", answer="jumps over the lazy dog 0 1 2 3"),
]


@pytest.fixture(scope="module")
def student(tiny_model_dir):
    return load_student(str(tiny_model_dir), device="cpu", batch_size=2)


def hand_probability(student, task, sample: Sample, per_token: bool) -> float:
    """p of the task's target given the task's prompt, from one un-batched score_texts call."""
    prompt = student.format_prompt(task.prompt(sample))
    lp = student.score_texts([prompt], [task.target(sample)])[0].logprobs.tolist()  # log p of each target token
    return math.exp(sum(lp) / len(lp) if per_token else sum(lp))


@pytest.mark.parametrize("per_token", [False, True])
def test_learnability_is_minus_the_distance_of_the_gold_probability_to_the_target(student, per_token):
    task = get_task("math")
    for target in (0.0, 0.5, 1.0):
        ctx = ScoringContext(student=student, task=task)
        got = Learnability(target=target, per_token=per_token).score(SAMPLES, ctx)
        want = [-abs(hand_probability(student, task, s, per_token) - target) for s in SAMPLES]
        # target 0 gives −p itself: a relative check that sees a sequence probability of 1e-20 too
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=0 if target == 0 else 1e-9)


def test_learnability_shares_the_reference_loss_forward_pass(student):
    ctx = ScoringContext(student=student, task=get_task("math"))
    calls = []
    real = student.score_texts

    def counting(*a, **kw):
        calls.append(len(a[0]))
        return real(*a, **kw)

    student.score_texts = counting
    try:
        loss = Loss(answer="reference").score(SAMPLES, ctx)
        p = -Learnability(target=0.0, per_token=True).score(SAMPLES, ctx)
    finally:
        del student.score_texts
    assert calls == [len(SAMPLES)]
    np.testing.assert_allclose(p, np.exp(-loss), rtol=1e-6)  # mean-token probability = exp(−mean NLL)


class Chosen:
    """A stub student: every answer gets the token probabilities of its sample (by prompt)."""

    def __init__(self, probs: dict[str, list[float]]) -> None:
        self.probs = probs

    def format_prompt(self, messages):
        return messages[-1]["content"]

    def score_texts(self, prefixes, continuations, **kw):
        return [TokenScores(np.zeros(len(self.probs[p]), np.int64), np.log(np.array(self.probs[p], dtype=float)))
                for p in prefixes]


def test_learnability_by_hand_on_chosen_probabilities():
    samples = [Sample(id=i, question=i, answer="a") for i in ("half", "sure", "lost", "two", "empty")]
    student = Chosen({"half": [0.5], "sure": [1.0], "lost": [1e-6], "two": [0.9, 0.9], "empty": []})
    ctx = ScoringContext(student=student)
    seq = Learnability().score(samples, ctx)
    np.testing.assert_allclose(seq[:4], [0.0, -0.5, -(0.5 - 1e-6), -abs(0.81 - 0.5)])
    assert np.isnan(seq[4])  # nothing to measure
    tok = Learnability(per_token=True).score(samples, ctx)
    assert tok[3] == pytest.approx(-0.4)  # mean-token probability 0.9
    assert np.argmax(seq[:4]) == 0  # the sample the student gets right half the time ranks first
    np.testing.assert_allclose(Learnability(target=0.81).score(samples, ctx)[3], 0.0, atol=1e-12)


def test_learnability_is_registered_and_parsed():
    assert ACQUISITIONS["learnability"] is Learnability
    acq = parse_acquisition("learnability(target=0.3, per_token=true)")
    assert acq == Learnability(target=0.3, per_token=True)
    assert column_name(acq) == "learnability(target=0.3,per_token=True)"
    assert parse_acquisition("learnability(target=1)").target == 1.0
    with pytest.raises(AcqsynthError, match="between 0 and 1"):
        parse_acquisition("learnability(target=1.5)")
    with pytest.raises(AcqsynthError, match="has no parameter 'answer'"):
        parse_acquisition("learnability(answer=own)")
