"""get_task: built-in names, user YAML tasks and user Python tasks; bad inputs fail naming file and field."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample
from acqsynth.tasks import TASKS, CodeTask, ExactTask, MathTask, MCQATask, Task, get_task

CAPITAL = Sample(id="geo/1", question="What is the capital of France?", answer="Paris")


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_builtin_names() -> None:
    assert set(TASKS) >= {"math", "mcqa", "code"}
    assert isinstance(get_task("math"), MathTask)
    assert isinstance(get_task("mcqa"), MCQATask)
    assert isinstance(get_task("code"), CodeTask)
    assert isinstance(get_task("exact"), ExactTask)
    for name in TASKS:
        task = get_task(name)
        assert isinstance(task, Task) and task.name == name


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(
        AcqsynthError, match=r"unknown task 'maths'.*Did you mean 'math'.*code, exact, math, math-answer, mcqa"
    ):
        get_task("maths")


def test_yaml_exact_task(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "capitals.yaml",
        "name: capitals\n"
        "base: exact\n"
        "system: You answer geography questions.\n"
        'instruction: "Question: {question}\\nEnd with FINAL: <city>. (LaTeX-like braces stay: {x})"\n'
        'answer_pattern: "FINAL:\\\\s*(.+)"\n'
        "normalize:\n  lowercase: true\n  strip_punctuation: true\n",
    )
    task = get_task(str(path))
    assert isinstance(task, Task) and task.name == "capitals"
    msgs = task.prompt(CAPITAL)
    assert msgs[0] == {"role": "system", "content": "You answer geography questions."}
    assert msgs[1]["content"] == (
        "Question: What is the capital of France?\nEnd with FINAL: <city>. (LaTeX-like braces stay: {x})"
    )
    v = task.grade("Let me think. FINAL: paris!", CAPITAL)
    assert v.correct and v.reason == "match" and v.extracted == "paris"
    assert not task.grade("FINAL: Lyon", CAPITAL).correct
    assert task.grade("", CAPITAL).reason == "no answer found"


def test_yaml_math_and_mcqa_tasks(tmp_path: Path) -> None:
    math_path = write(
        tmp_path,
        "m.yml",
        "name: boxed-math\nbase: math\ninstruction: 'Solve: {question} Put the result in \\boxed{{}}.'\n",
    )
    task = get_task(math_path)
    s = Sample(id="m", question="1/2 + 1/4 = ?", answer="3/4")
    assert task.prompt(s)[0]["content"] == "Solve: 1/2 + 1/4 = ? Put the result in \\boxed{{}}."
    assert task.grade("so \\boxed{\\frac{3}{4}}", s).correct

    mcqa_path = write(
        tmp_path,
        "q.yaml",
        "name: quiz\nbase: mcqa\ninstruction: |\n  {question}\n  {choices}\n  Letter only.\n",
    )
    quiz = get_task(mcqa_path)
    q = Sample(id="q", question="2+2?", answer="C", choices=["3", "5", "4"])
    assert quiz.prompt(q)[0]["content"] == "2+2?\nA. 3\nB. 5\nC. 4\nLetter only.\n"
    assert quiz.grade("(c)", q).correct


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "name: t\nbase: chemistry\n",
            r"bad\.yaml: field 'base' is 'chemistry'; valid bases: code, exact, math, mcqa",
        ),
        ("base: math\n", r"bad\.yaml: field 'name' is required"),
        ("name: t\nbase: math\ninstructions: '{question}'\n", r"bad\.yaml: unknown field 'instructions'"),
        (
            "name: t\nbase: math\ninstruction: 'no slot here'\n",
            r"bad\.yaml: field 'instruction' must contain \{question\}",
        ),
        (
            "name: t\nbase: mcqa\ninstruction: '{question}'\n",
            r"bad\.yaml: field 'instruction' must contain \{choices\}",
        ),
        (
            "name: t\nbase: math\nanswer_pattern: '(unclosed'\n",
            r"bad\.yaml: field 'answer_pattern'.*not a valid regex",
        ),
        (
            "name: t\nbase: math\nanswer_pattern: 'no group'\n",
            r"bad\.yaml: field 'answer_pattern'.*exactly one group",
        ),
        (
            "name: t\nbase: math\nnormalize: {lowercase: true}\n",
            r"bad\.yaml: field 'normalize' applies to base 'exact'",
        ),
        (
            "name: t\nbase: exact\nnormalize: {upper: true}\n",
            r"bad\.yaml: field 'normalize\.upper' is unknown",
        ),
        (
            "name: t\nbase: exact\nnormalize: {lowercase: 'yes'}\n",
            r"bad\.yaml: field 'normalize\.lowercase' must be",
        ),
        ("name: [1, 2]\nbase: math\n", r"bad\.yaml: field 'name' must be a non-empty string"),
        ("- just\n- a list\n", r"bad\.yaml: expected a mapping"),
        ("name: t\n  base: : math\n", r"bad\.yaml: not valid YAML"),
    ],
)
def test_bad_yaml_names_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(AcqsynthError, match=message):
        get_task(str(path))


def test_missing_task_file(tmp_path: Path) -> None:
    with pytest.raises(AcqsynthError, match="no such task file"):
        get_task(str(tmp_path / "nope.yaml"))
    with pytest.raises(AcqsynthError, match="no such task file"):
        get_task(str(tmp_path / "nope.py"))


PY_TASK = '''
from acqsynth.tasks.base import Verdict


class ReverseTask:
    """Answer is the question reversed."""

    name = "reverse"

    def prompt(self, sample):
        return [{"role": "user", "content": f"Reverse: {sample.question}"}]

    def target(self, sample):
        return sample.answer

    def extract(self, text, sample):
        return text.strip() or None

    def grade(self, prediction, sample):
        got = self.extract(prediction, sample)
        if got is None:
            return Verdict(False, None, "no answer found")
        ok = got == sample.answer
        return Verdict(ok, got, "match" if ok else "mismatch")


TASK = ReverseTask()
'''


def test_python_task_file(tmp_path: Path) -> None:
    path = write(tmp_path, "reverse_task.py", PY_TASK)
    task = get_task(str(path))
    assert isinstance(task, Task) and task.name == "reverse"
    s = Sample(id="r", question="abc", answer="cba")
    assert task.prompt(s) == [{"role": "user", "content": "Reverse: abc"}]
    assert task.grade(" cba\n", s).correct
    assert task.grade("abc", s).reason == "mismatch"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("x = 1\n", "defines no module-level TASK"),
        (
            "TASK = object()\n",
            "does not satisfy the Task protocol; missing: name, prompt, target, extract, grade",
        ),
        ("raise RuntimeError('boom')\n", "importing the task file failed: RuntimeError: boom"),
        ("def broken(:\n", "importing the task file failed: SyntaxError"),
    ],
)
def test_bad_python_task_file(tmp_path: Path, source: str, message: str) -> None:
    path = write(tmp_path, "bad_task.py", source)
    with pytest.raises(AcqsynthError, match=message):
        get_task(str(path))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_exact_extract_never_raises(text: str) -> None:
    out = get_task("exact").extract(text, CAPITAL)
    assert out is None or isinstance(out, str)


ADVERSARIAL = {
    "spaces after answer": "The answer is" + " " * 20000 + "x",
    "spaces around colon": "answer" + " " * 20000 + ":" + " " * 20000,
    "spaces in brackets": "(" + " " * 20000 + "b" + " " * 20000,
    "repeated phrase": "the answer is " * 5000,
    "comma digits": "1," * 20000,
    "long number": "7" * 50000,
    "unclosed boxes": "\\boxed{" * 5000,
    "hashes": "####" * 5000,
    "fences": "```python\n" * 3000,
    "letters": "A " * 20000,
    "fractions": "\\frac{" * 5000 + "1}{2}",
}


@pytest.mark.parametrize("name", ["math", "mcqa", "code", "exact"])
def test_extract_is_fast_on_adversarial_text(name: str) -> None:
    """No quadratic regex backtracking or rescanning: each extraction stays well under a second."""
    task = get_task(name)
    s = Sample(
        id="x",
        question="def f(x):\n",
        answer="B",
        choices=["oxygen", "carbon dioxide", "nitrogen", "water"],
        tests="assert f(1) == 1",
        entry_point="f",
    )
    for label, text in ADVERSARIAL.items():
        start = time.monotonic()
        task.extract(text, s)
        assert time.monotonic() - start < 1.0, label
