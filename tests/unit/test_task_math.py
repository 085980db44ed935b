"""MathTask: answer extraction and equivalence on hand-written tricky cases; extraction never raises."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsynth.samples import Sample
from acqsynth.tasks import MathTask, Task
from acqsynth.tasks.math_answers import (
    _WORKER,
    extract_math_answer,
    gold_math_answer,
    last_boxed,
    math_equal,
    normalize_math_answer,
)

TASK = MathTask()


def sample(answer: str, reasoning: str | None = None) -> Sample:
    return Sample(
        id="m/1", question="Tom has 3 apples and buys 15 more. How many?", answer=answer, reasoning=reasoning
    )


def test_satisfies_protocol_and_prompt_format() -> None:
    assert isinstance(TASK, Task)
    msgs = TASK.prompt(sample("18"))
    assert msgs == [
        {
            "role": "user",
            "content": "Tom has 3 apples and buys 15 more. How many?\n\n"
            'Reason step by step, then end with the final answer as "#### <answer>".',
        }
    ]
    with_system = MathTask(system="You are a careful tutor.").prompt(sample("18"))
    assert with_system[0] == {"role": "system", "content": "You are a careful tutor."}


def test_prompt_keeps_latex_braces_in_the_question() -> None:
    s = Sample(id="m/2", question="Compute \\frac{1}{2} + {x}.", answer="1")
    assert "\\frac{1}{2} + {x}." in TASK.prompt(s)[0]["content"]


def test_target() -> None:
    assert TASK.target(sample("18", "3 + 15 = 18.")) == "3 + 15 = 18.\n#### 18"
    assert TASK.target(sample("18")) == "#### 18"
    assert TASK.target(sample("3 + 15 = 18.\n#### 18")) == "3 + 15 = 18.\n#### 18"  # raw GSM8K answer field


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3 + 15 = 18\n#### 18", "18"),
        ("#### 18 dollars.", "18"),
        ("#### $1,234.00", "1234.00"),
        ("So the total is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{\\frac{\\sqrt{3}}{2}} or rather \\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("The answer is 42.", "42"),
        ("The answer is $1,234.00.", "1234.00"),
        ("The answer is -7/4. Next question", "-7/4"),
        ("The answer is that she has 18 apples. She ate 2.", "18"),
        ("She had 5 apples, ate 2, so 3 remain", "3"),
        ("The temperature fell to -5 degrees", "-5"),
        ("x-3 means 5-3", "3"),
        ("#### Step 1\nAdd them: 3 + 15 = 18. The answer is 18", "18"),
        ("#### Final Answer: 18", "18"),
        ("3 + 15 = 18\n#### 18\n\nQuestion: Ann has 2 pens. How many?\nAnswer: ####", "18"),
        ("answer: 50%", "50"),
        ("nothing numeric here", None),
        ("", None),
        ("\\boxed{", None),
    ],
)
def test_extract(text: str, expected: str | None) -> None:
    assert extract_math_answer(text) == expected
    assert TASK.extract(text, sample("1")) == expected


def test_last_boxed_handles_nesting_and_bare_form() -> None:
    assert last_boxed("\\boxed{a{b{c}}d}") == "a{b{c}}d"
    assert last_boxed("\\boxed 5$") == "5"
    assert last_boxed("\\fbox{7}") == "7"
    assert last_boxed("no box") is None


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("$1,234.00", "1234.00"),
        ("18 dollars.", "18"),
        ("\\$18", "18"),
        ("50\\%", "50"),
        ("\\dfrac{3}{4}", "\\frac{3}{4}"),
        ("x = 5", "5"),
        ("90^\\circ", "90"),
        ("\\text{(B)}", "(B)"),
        ("2x", "2x"),
        ("(1,2)", "(1,2)"),
        ("\u22125", "-5"),
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize_math_answer(raw) == norm


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("18 dollars", "18"),
        ("$18", "18"),
        ("18.0", "18"),
        ("18.", "18"),
        ("1,234", "1234"),
        ("$1,234.00", "1234"),
        ("3/4", "0.75"),
        ("\\frac{3}{4}", "0.75"),
        ("\\frac34", "3/4"),
        ("\\boxed{\\frac{1}{2}}", "0.5"),
        ("-5", "-5.0"),
        ("-\\frac{1}{2}", "-0.5"),
        ("0.33", "1/3"),
        ("50%", "50"),
        ("Monday", "monday"),
        ("\\frac{\\sqrt{2}}{2}", "\\sqrt{2}/2"),
        ("(x+1)^2", "x^2+2x+1"),
    ],
)
def test_equivalent(pred: str, gold: str) -> None:
    assert math_equal(pred, gold)


@pytest.mark.parametrize(
    ("pred", "gold"),
    [
        ("5", "-5"),
        ("0.3", "1/3"),
        ("0.74", "3/4"),
        ("1234", "123"),
        ("2x", "2"),
        ("1000000.5", "1000000"),
        ("", "1"),
    ],
)
def test_not_equivalent(pred: str, gold: str) -> None:
    assert not math_equal(pred, gold)


def test_gold_answers_in_raw_forms() -> None:
    assert gold_math_answer("Tom... 3 + 15 = 18\n#### 18") == "18"
    assert gold_math_answer("The result is \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert gold_math_answer(" 1,234 ") == "1234"


@pytest.mark.parametrize(
    ("prediction", "correct", "reason"),
    [
        ("3 + 15 = 18\n#### 18", True, "match"),
        ("He has $18 now.", True, "match"),
        ("The answer is 18.0 apples.", True, "match"),
        ("#### 17", False, "mismatch"),
        ("I do not know.", False, "no answer found"),
    ],
)
def test_grade(prediction: str, correct: bool, reason: str) -> None:
    v = TASK.grade(prediction, sample("18"))
    assert (v.correct, v.reason) == (correct, reason)


def test_grade_fractions_and_negatives() -> None:
    assert TASK.grade("\\boxed{\\frac{1}{2}}", sample("0.5")).correct
    assert TASK.grade("#### -3", sample("-3")).correct
    assert not TASK.grade("#### 3", sample("-3")).correct


def test_answer_pattern_overrides_default_extraction() -> None:
    task = MathTask(answer_pattern=r"RESULT=(\S+)")
    assert task.extract("12 then RESULT=18 and 99", sample("18")) == "18"
    assert task.extract("no marker, 7", sample("18")) == "7"  # falls back to the default order


def test_pathological_expression_cannot_hang() -> None:
    start = time.monotonic()
    assert not math_equal("10^{10^{10}}", "5")
    assert not math_equal("9^{9^{9^{9}}}", "9")
    assert time.monotonic() - start < 2


def test_symbolic_worker_hard_timeout_then_recovers() -> None:
    assert _WORKER.compare("\\sqrt{4}", "2", timeout_s=30)  # warm
    start = time.monotonic()
    # sympy would grind on this for long (the guard in math_equal is bypassed on purpose here)
    assert _WORKER.compare("10^{10^{10}}", "5", timeout_s=0.5) is False
    assert time.monotonic() - start < 2
    assert _WORKER.compare("\\sqrt{9}", "3", timeout_s=30)  # a fresh worker answers


def test_symbolic_comparison_works_from_threads() -> None:
    pairs = [
        ("\\sqrt{16}", "4"),
        ("2\\pi", "\\pi+\\pi"),
        ("\\frac{\\sqrt{8}}{2}", "\\sqrt{2}"),
        ("x^2", "x^3"),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda p: math_equal(*p), pairs))
    assert got == [True, True, True, False]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200) | st.text(alphabet="#\\{}()$0123456789.,/-* %boxedfrac answer is", max_size=120))
def test_extract_never_raises(text: str) -> None:
    out = TASK.extract(text, sample("1"))
    assert out is None or isinstance(out, str)


def test_math_answer_asks_for_the_answer_its_targets_give_and_is_math_elsewhere(tmp_path) -> None:
    from acqsynth.data import load_data
    from acqsynth.errors import AcqsynthError
    from acqsynth.generation.labelling import LabelConfig, _grouping
    from acqsynth.tasks import get_task, task_kind

    task = get_task("math-answer")
    s = Sample(id="a", question="Calculate 43 * 84 =", answer="3612")
    assert task.prompt(s) == [{"role": "user", "content": 'Calculate 43 * 84 =\n\nGive only the final answer, as "#### <answer>".'}]
    assert task.target(s) == "#### 3612" and task.grade("#### 3612", s).correct
    # a generated sample's reasoning is not trained on: the prompt asks for the answer alone
    assert task.target(Sample(id="b", question="q", answer="71", reasoning="The answer is 71.")) == "#### 71"
    assert task.target(Sample(id="c", question="q", answer="work #### 18")) == "#### 18"
    # the same prompt as the study's task file, so the main job and the studies ask the same thing
    study = get_task("experiments/tasks/arithmetic-answer.yaml")
    assert study.prompt(s) == task.prompt(s) and study.target(s) == task.target(s)
    # parsing, labelling and templates treat it (and a YAML task on base math) as math
    assert task_kind(task) == task_kind(study) == task_kind(MathTask()) == "math"
    assert _grouping(LabelConfig(), task) == "exact"
    # arithmetic-2d defaults to it and still takes `math` (the step-by-step prompt), not mcqa
    assert load_data("arithmetic-2d", split="seed", task="math")["id"] == load_data("arithmetic-2d", split="seed")["id"]
    with pytest.raises(AcqsynthError, match="is a math-answer dataset; it cannot be used as task 'mcqa'"):
        load_data("arithmetic-2d", split="seed", task="mcqa")
    with pytest.raises(AcqsynthError, match="is a mcqa dataset; it cannot be used as task 'math-answer'"):
        load_data("medmcqa", split="seed", task="math-answer")
