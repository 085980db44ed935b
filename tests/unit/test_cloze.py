"""Cloze scoring of multiple choice (lm-evaluation-harness's convention) on a tiny random model:
the cached, batched option scores equal a plain forward pass computed by hand, acc_norm divides by
the option's length in characters, and `evaluate` reports letter, acc and acc_norm side by side."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny import make_tiny_model

from acqsynth.errors import AcqsynthError
from acqsynth.evaluation.accuracy import EvalConfig, evaluate
from acqsynth.evaluation.cloze import (
    CLOZE_TEMPLATE,
    chance,
    cloze_request,
    cloze_scores,
    encode_pair,
    pick_options,
)
from acqsynth.models.causal_lm import load_causal_lm
from acqsynth.models.hf_generator import HFGenerator
from acqsynth.models.hf_student import TransformersStudent
from acqsynth.samples import Sample, to_dataset
from acqsynth.tasks import get_task

QUESTIONS = [
    ("Which gas do plants absorb?", ["oxygen", "carbon dioxide", "helium", "neon"], "B"),
    ("What is 12 + 7?", ["19", "21", "the answer is eighteen"], "A"),
    ("Which one is a fox?", ["the quick brown fox", "lazy dog", "a", "def add(a, b)", "clips"], "A"),
    ("Natalia sold clips to 48 of her friends in April. How many?", ["48", "half as many", "96", "24"], "C"),
    ("Pick one", ["0 1 2", "3 4 5 6 7 8 9"], "B"),
]


@pytest.fixture(scope="module")
def student(tmp_path_factory: pytest.TempPathFactory) -> TransformersStudent:
    model, tok = load_causal_lm(str(make_tiny_model(tmp_path_factory.mktemp("m") / "m", vocab_size=600)))
    return TransformersStudent(model, tok, batch_size=2)  # several batches, padded prompts of unequal length


def samples() -> list[Sample]:
    return [Sample(id=f"q{i}", question=q, answer=a, choices=c) for i, (q, c, a) in enumerate(QUESTIONS)]


def by_hand(student: TransformersStudent, context: str, continuation: str) -> float:
    """Sum of log p(continuation tokens) from one uncached forward pass over context + continuation."""
    ctx, cont = encode_pair(student.tokenizer, context, continuation)
    ids = torch.tensor([ctx + cont])
    with torch.no_grad():
        logp = torch.log_softmax(student.model(input_ids=ids).logits[0].float(), -1)
    return float(sum(logp[len(ctx) - 1 + t, tok] for t, tok in enumerate(cont)))


def test_cloze_scores_equal_a_hand_computation(student: TransformersStudent) -> None:
    res = cloze_scores(student, samples())
    for s, ll in zip(samples(), res.loglik, strict=True):
        context, conts = cloze_request(s)
        assert context == f"Question: {s.question}\nAnswer:"
        want = [by_hand(student, context, c) for c in conts]
        np.testing.assert_allclose(ll, want, rtol=1e-4, atol=1e-4)
    assert res.gold.tolist() == [1, 0, 0, 2, 1]


def test_option_scores_do_not_depend_on_the_batch(student: TransformersStudent) -> None:
    alone = TransformersStudent(student.model, student.tokenizer, batch_size=1)
    for a, b in zip(cloze_scores(alone, samples()).loglik, cloze_scores(student, samples()).loglik, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_acc_norm_divides_by_the_options_length_in_characters() -> None:
    options = ["a long option text", "longer option text here!", "no"]  # 18, 24 and 2 characters
    loglik = np.array([-10.0, -12.0, -3.0])
    # acc: the largest sum is -3 (option 2); acc_norm: -10/18 = -0.556, -12/24 = -0.5, -3/2 = -1.5 -> option 1
    pick, norm = pick_options([loglik], [options])
    assert pick.tolist() == [2] and norm.tolist() == [1]
    # lm-eval's definition: argmax(lls / [len(choice) for choice in choices]), the choice without its space
    assert norm[0] == int(np.argmax(loglik / np.array([len(o) for o in options], dtype=float)))


def test_encode_pair_splits_like_lm_eval(student: TransformersStudent) -> None:
    tok = student.tokenizer
    ctx, cont = encode_pair(tok, "Question: Which gas?\nAnswer: ", "oxygen")  # trailing space moves over
    assert ctx == tok("Question: Which gas?\nAnswer:", add_special_tokens=False)["input_ids"]
    whole = tok("Question: Which gas?\nAnswer: oxygen", add_special_tokens=False)["input_ids"]
    assert ctx + cont == whole or cont == whole[len(ctx):]
    assert tok.decode(cont) == " oxygen"


def test_evaluate_reports_letter_acc_and_acc_norm(student: TransformersStudent) -> None:
    gen = HFGenerator((student.model, student.tokenizer), batch_size=2)
    config = EvalConfig(max_new_tokens=4, batch_size=2)
    rows, summary = evaluate(student, gen, get_task("mcqa"), to_dataset(samples()), config, progress=False)
    res = cloze_scores(student, samples())
    assert summary.metric == "acc_norm"  # a tiny student: under 1B parameters
    assert summary.cloze_acc.mean == pytest.approx(res.correct.mean())
    assert summary.cloze_acc_norm.mean == pytest.approx(res.correct_norm.mean())
    assert summary.accuracy == summary.cloze_acc_norm
    assert rows["correct"] == res.correct_norm.astype(bool).tolist()
    assert len(rows["generated_correct"]) == 5 and summary.loglik_accuracy is not None
    assert summary.chance == pytest.approx(chance(samples())) == pytest.approx((1 / 4 + 1 / 3 + 1 / 5 + 1 / 4 + 1 / 2) / 5)
    _, gen_summary = evaluate(student, gen, get_task("mcqa"), to_dataset(samples()),
                              EvalConfig(max_new_tokens=4, batch_size=2, mcq_metric="generate"), progress=False)
    assert gen_summary.metric == "generate" and gen_summary.accuracy == summary.generated_accuracy


def test_metric_settings_are_checked() -> None:
    with pytest.raises(AcqsynthError, match="eval.mcq_metric must be one of"):
        EvalConfig(mcq_metric="accuracy")
    with pytest.raises(AcqsynthError, match="needs eval.cloze=true"):
        EvalConfig(mcq_metric="acc_norm", cloze=False)


def test_the_prompt_is_lm_evals() -> None:
    assert CLOZE_TEMPLATE.format(question="Why?") == "Question: Why?\nAnswer:"
