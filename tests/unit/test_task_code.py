"""CodeTask: code extraction, HumanEval/MBPP program assembly, and every verdict the sandbox can give."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample
from acqsynth.tasks import CodeTask, Task
from acqsynth.tasks.code import extract_code

TASK = CodeTask(timeout_s=2, memory_mb=512)

HUMANEVAL = Sample(
    id="he/0",
    question='from typing import List\n\n\ndef add(xs: List[int]) -> int:\n    """Sum of the list."""\n',
    answer="    return sum(xs)\n",
    tests="def check(candidate):\n    assert candidate([1, 2]) == 3\n    assert candidate([]) == 0\n",
    entry_point="add",
)
MBPP = Sample(
    id="mbpp/1",
    question="Write a function to return the larger of two numbers.",
    answer="def bigger(a, b):\n    return a if a > b else b\n",
    tests="assert bigger(1, 2) == 2\nassert bigger(5, -1) == 5\n",
    entry_point="bigger",
)


def block(code: str) -> str:
    return f"Here is my solution:\n```python\n{code}\n```\nIt works."


def test_satisfies_protocol_and_prompts() -> None:
    assert isinstance(TASK, Task)
    he = TASK.prompt(HUMANEVAL)[0]["content"]
    assert he.startswith("```python\nfrom typing import List")
    assert he.endswith("Reply with a complete Python solution in one ```python code block.")
    mbpp = TASK.prompt(MBPP)[0]["content"]
    assert mbpp.startswith("Write a function to return the larger")
    assert mbpp.endswith("The function must be named `bigger`.")


def test_target_is_a_complete_program() -> None:
    target = TASK.target(HUMANEVAL)
    assert target.startswith("```python\nfrom typing import List")
    assert "def add(xs: List[int]) -> int:" in target and "    return sum(xs)\n```" in target
    assert TASK.grade(target, HUMANEVAL).correct
    assert TASK.grade(TASK.target(MBPP), MBPP).correct


def test_extract_code_forms() -> None:
    assert extract_code("```py\nx = 1\n```") == "x = 1"
    assert extract_code("```\na = 1\n```\n```python\nb = 2\n```\n```python\nc = 3\n```") == "c = 3"
    assert (
        extract_code("text\n```python\ndef f():\n    return 1") == "def f():\n    return 1"
    )  # unclosed fence
    assert extract_code("def f():\n    return 1\n") == "def f():\n    return 1"
    assert extract_code("    return 1\n") == "    return 1"  # a body keeps its indentation
    assert extract_code("   \n") is None


def test_humaneval_body_completion_is_joined_to_the_prompt() -> None:
    assert TASK.grade("    return sum(xs)\n", HUMANEVAL).correct
    assert TASK.grade("```python\nreturn sum(xs)\n```", HUMANEVAL).correct  # unindented body
    full = TASK.extract(block("def add(xs):\n    return sum(xs)"), HUMANEVAL)
    assert full is not None and full.startswith("from typing import List")  # imports kept


@pytest.mark.parametrize(
    ("prediction", "correct", "reason"),
    [
        (block("def add(xs):\n    return sum(xs)"), True, "passed"),
        (block("def add(xs):\n    return 0"), False, "failed: AssertionError"),
        (
            block("def add(xs):\n    raise ValueError('bad input\\nsecond line')"),
            False,
            "failed: ValueError: bad input",
        ),
        (block("def add(xs)\n    return 1"), False, "syntax error"),
        (block("def add(xs):\n    while True:\n        pass"), False, "timeout"),
        (block("def add(xs):\n    while True:\n        print('spam' * 1000)"), False, "output limit"),
        (block("def add(xs):\n    return len(bytearray(10 * 1024**3))"), False, "memory limit"),
        (block("import sys\nsys.exit(0)"), False, "failed: SystemExit: 0"),
        (block("import os\nos._exit(0)"), False, "failed: exited before the tests finished"),
        ("   ", False, "no code found"),
    ],
)
def test_grade_verdicts(prediction: str, correct: bool, reason: str) -> None:
    v = TASK.grade(prediction, HUMANEVAL)
    assert (v.correct, v.reason) == (correct, reason)
    assert (v.extracted is None) == (reason == "no code found")


def test_main_guard_reading_stdin_does_not_fail_a_correct_solution() -> None:
    code = "def add(xs):\n    return sum(xs)\n\nif __name__ == '__main__':\n    print(add(list(map(int, input().split()))))"
    assert TASK.grade(block(code), HUMANEVAL).correct


def test_mbpp_style_assert_tests() -> None:
    assert TASK.grade(block("def bigger(a, b):\n    return max(a, b)"), MBPP).correct
    v = TASK.grade(block("def bigger(a, b):\n    return a"), MBPP)
    assert v.reason == "failed: AssertionError"
    v = TASK.grade(block("def larger(a, b):\n    return max(a, b)"), MBPP)  # wrong name
    assert v.reason == "failed: NameError: name 'bigger' is not defined"


def test_grade_many_keeps_order() -> None:
    preds = [block("def add(xs):\n    return sum(xs)"), "", block("def add(xs):\n    return -1")]
    verdicts = TASK.grade_many(preds, [HUMANEVAL] * 3, max_workers=2)
    assert [v.reason for v in verdicts] == ["passed", "no code found", "failed: AssertionError"]
    with pytest.raises(AcqsynthError):
        TASK.grade_many(preds, [HUMANEVAL])


def test_sample_without_tests_is_an_error() -> None:
    s = Sample(id="c/1", question="Write f.", answer="def f(): pass", entry_point="f")
    with pytest.raises(AcqsynthError, match="c/1.*tests"):
        TASK.grade(block("def f():\n    return 1"), s)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200) | st.text(alphabet="`python\n def add(xs): return 1", max_size=120))
def test_extract_never_raises(text: str) -> None:
    out = TASK.extract(text, HUMANEVAL)
    assert out is None or isinstance(out, str)
