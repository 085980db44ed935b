"""Labelling: self-consistency majority and agreement, embedding grouping, execution of code tests,
exact arithmetic."""

from __future__ import annotations

from fractions import Fraction

import pytest
from embedders import HashingEmbedder
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsynth.errors import AcqsynthError
from acqsynth.generation.labelling import (
    LabelConfig,
    decimal_text,
    evaluate_expression,
    find_expression,
    group_key,
    label_compute,
    label_execution,
    label_one,
    majority_group,
)
from acqsynth.models.interfaces import Completion
from acqsynth.samples import Sample
from acqsynth.tasks import get_task

Q = Sample(id="q", question="Ann has 3 pens and buys 4 more. How many?", answer="7", reasoning="3 + 4 = 7")


def answers(*texts: str) -> list[Completion]:
    return [Completion(t, 10, 5, "stop") for t in texts]


def test_majority_group_ignores_missing_and_breaks_ties_by_first_seen():
    assert majority_group(["7", None, "8", "7", None]) == [0, 3]
    assert majority_group(["8", "7", "7", "8"]) == [0, 3]
    assert majority_group([None, None]) == []
    assert [group_key(x) for x in ("7", "7.0", "07", "0.50", "x+1", None)] == ["7", "7", "7", "0.5", "x+1", None]


def test_agreeing_majority_keeps_the_generator_answer_and_records_agreement():
    lab = label_one(Q, answers("so #### 7", "#### 8", "#### 7.0", "no idea"), get_task("math"), LabelConfig(k=4))
    assert lab.reason is None and lab.sample.answer == "7" and lab.sample.reasoning == "3 + 4 = 7"
    meta = lab.sample.metadata
    assert meta["label_agreement"] == 0.5 and meta["generator_agrees"] is True and meta["label_k"] == 4


def test_disagreeing_majority_relabels_with_the_medoid_answer_and_reasoning():
    wrong = Sample(id="w", question=Q.question, answer="12", reasoning="3 * 4 = 12")
    lab = label_one(wrong, answers("3 + 4 = 7\n#### 7", "#### 12", "Add: 7\n#### 7"), get_task("math"), LabelConfig(k=3))
    assert lab.sample.answer == "7" and lab.sample.reasoning == "3 + 4 = 7"
    assert lab.sample.metadata["generator_answer"] == "12" and lab.sample.metadata["generator_agrees"] is False
    assert lab.sample.metadata["label_agreement"] == pytest.approx(2 / 3, abs=1e-4)


def test_low_agreement_and_no_answer_are_dropped_with_reasons():
    low = label_one(Q, answers("#### 7", "#### 8", "#### 9", "#### 10"), get_task("math"), LabelConfig(k=4))
    assert low.sample is None and low.reason == "self-consistency: agreement 0.25 < 0.50"
    none = label_one(Q, answers("hmm", "no"), get_task("math"), LabelConfig(k=2))
    assert none.sample is None and "no answer could be extracted from 2 samples" in none.reason


def test_multiple_choice_groups_letters():
    s = Sample(id="m", question="Gas?", answer="C", choices=["oxygen", "carbon dioxide", "neon"])
    lab = label_one(s, answers("The answer is B", "B", "(B) carbon dioxide", "C"), get_task("mcqa"), LabelConfig(k=4))
    assert lab.sample.answer == "B" and lab.sample.metadata["label_agreement"] == 0.75


def test_free_text_answers_are_clustered_by_embedding():
    s = Sample(id="f", question="Capital of France?", answer="Paris")
    texts = answers("Paris, France", "paris france", "Lyon", "Paris France")
    cfg = LabelConfig(k=4, grouping="embedding", cluster_threshold=0.5)
    lab = label_one(s, texts, get_task("exact"), cfg, embedder=HashingEmbedder())
    assert lab.sample is not None and lab.sample.metadata["label_agreement"] == 0.75
    with pytest.raises(AcqsynthError, match="needs an embedder"):
        label_one(s, texts, get_task("exact"), cfg)


def test_execution_keeps_only_solutions_that_pass_their_own_tests():
    def code(i: str, body: str, tests: str) -> Sample:
        return Sample(id=i, question="Write add.", answer=f"def add(a, b):\n    return {body}\n", tests=tests,
                      entry_point="add")

    got = label_execution(
        [code("ok", "a + b", "assert add(1, 2) == 3"), code("bad", "a - b", "assert add(1, 2) == 3"),
         code("empty", "a + b", "x = add(1, 2)"), code("loop", "a + b", "while True:\n    pass\nassert True")],
        get_task("code"),
    )
    assert got[0].sample is not None and got[0].sample.metadata["label_method"] == "execution"
    assert got[1].sample is None and got[1].reason.startswith("execution: generated solution fails its own tests")
    assert got[2].reason == "execution: the tests assert nothing"
    assert got[3].sample is None and "timeout" in got[3].reason


def test_config_errors():
    with pytest.raises(AcqsynthError, match="unknown; choose one of keep, self-consistency, execution"):
        LabelConfig(method="vote")
    with pytest.raises(AcqsynthError, match=r"min_agreement must be in \[0, 1\]"):
        LabelConfig(min_agreement=2)


def test_truncated_answers_do_not_vote():
    cut = [Completion("3 + 4 = 7 and then 12", 10, 256, "length"), Completion("so 12", 10, 256, "length")]
    lab = label_one(Q, [*cut, *answers("#### 7")], get_task("math"), LabelConfig(k=3, min_agreement=0.3))
    assert lab.sample.answer == "7" and lab.sample.metadata["label_agreement"] == pytest.approx(1 / 3, abs=1e-4)


# ---- compute (arithmetic): exact values, strict about what counts as the expression ----------

@pytest.mark.parametrize(
    ("question", "expression"),
    [
        ("Calculate 2 * 448 =", "2 * 448"),
        ("Calculate -5 - -7 =", "-5 - -7"),
        ("What is 7*(2+3)?", "7*(2+3)"),
        ("Calculate 12.5 * 4 =", "12.5 * 4"),
        ("Calculate (36)^2 - 34;", None),  # ^ is not ours to guess: no label rather than a wrong one
        ("Calculate 14^2 * 10^5 =", None),
        ("Exercise 10: Calculate 600 * 2 =", None),  # digits outside the expression
        ("What is 3 + 4 squared?", None),
        ("Calculate 2 + 3 = 5", None),
        ("Calculate 1e400 + 1 =", None),
        ("Tom has 3 apples and 4 pears.", None),
        ("x-1 + 2", None),
    ],
)
def test_find_expression_is_strict(question: str, expression: str | None) -> None:
    assert find_expression(question) == expression


def test_decimal_text_is_exact() -> None:
    assert [decimal_text(Fraction(n, d)) for n, d in [(896, 1), (-501, 1), (7, 4), (-1, 8), (3, 10), (1, 3)]] == [
        "896", "-501", "1.75", "-0.125", "0.3", None
    ]
    with pytest.raises(ZeroDivisionError):
        evaluate_expression("5 / (2 - 2)")
    with pytest.raises(ValueError, match="not allowed"):
        evaluate_expression("2 ** 99999")
    with pytest.raises(ValueError, match="too many digits"):
        evaluate_expression("1" * 40 + " + 1")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-999, 999), min_size=2, max_size=4), st.lists(st.sampled_from("+-*/"), min_size=3, max_size=3))
def test_compute_matches_exact_rational_arithmetic(numbers: list[int], ops: list[str]) -> None:
    expression = str(numbers[0])
    value = Fraction(numbers[0])
    for n, op in zip(numbers[1:], ops, strict=False):
        expression += f" {op} {n}"
    try:
        value = Fraction(eval(expression.replace("/", "*Fraction(1,1)/").replace("- -", "+ ")))  # reference
    except ZeroDivisionError:
        with pytest.raises(ZeroDivisionError):
            evaluate_expression(expression)
        return
    assert find_expression(f"Calculate {expression} =") == expression
    assert evaluate_expression(expression) == value


def test_label_compute_relabels_and_drops_a_wrong_derivation() -> None:
    task = get_task("math")
    right = Sample(id="a", question="Calculate 21 + 7 =", answer="28", reasoning="21 + 7 = 28")
    wrong = Sample(id="b", question="Calculate 23 - 5 =", answer="11", reasoning="23 - 5 = 11")
    bad = Sample(id="c", question="Calculate 1 / 3 =", answer="0.33")
    none = Sample(id="d", question="How old is Ann?", answer="7")
    out = label_compute([right, wrong, bad, none], task)
    assert out[0].sample.answer == "28" and out[0].sample.reasoning == "21 + 7 = 28"
    assert out[0].sample.metadata["generator_agrees"] is True
    assert out[1].sample.answer == "18" and out[1].sample.reasoning is None  # the wrong working is not taught
    assert out[1].sample.metadata["generator_answer"] == "11" and out[1].sample.metadata["label_method"] == "compute"
    assert out[2].sample is None and "no finite decimal form" in out[2].reason
    assert out[3].sample is None and "not one arithmetic expression" in out[3].reason
