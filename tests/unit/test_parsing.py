"""Parsing generated completions: every rejection has a reason, and no text makes the parser raise."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsynth.generation.parsing import FORMAT_TAGS, format_reward, parse_completion

GOOD = "<question>What is 2+3?</question><reasoning>2+3=5</reasoning><answer>5</answer>"


def test_accepts_a_well_formed_math_completion():
    p = parse_completion("Sure!\n" + GOOD)
    assert p.reason is None and p.sample is not None
    assert (p.sample.question, p.sample.reasoning, p.sample.answer) == ("What is 2+3?", "2+3=5", "5")
    assert p.sample.id == parse_completion(GOOD).sample.id  # id depends on content only


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("<question>q</question><answer>5</answer>", "missing tag <reasoning>"),
        (GOOD + "<answer>6</answer>", "duplicate tag <answer>"),
        ("<question>q</question><reasoning>r</reasoning><answer>5", "unclosed tag <answer>"),
        ("<question>  </question><reasoning>r</reasoning><answer>5</answer>", "empty field <question>"),
        ("</question>q<question><reasoning>r</reasoning><answer>5</answer>", "</question> before <question>"),
        (GOOD + "x" * 9000, "over-long"),
    ],
)
def test_rejections_name_the_problem(text, reason):
    p = parse_completion(text)
    assert p.sample is None and p.reason.startswith(reason)


def test_multiple_choice():
    base = "<question>Gas?</question><reasoning>plants</reasoning><choices>A. oxygen\nB. carbon dioxide\nC. helium</choices>"
    ok = parse_completion(base + "<answer>B</answer>", task="mcqa")
    assert ok.sample.choices == ["oxygen", "carbon dioxide", "helium"] and ok.sample.answer == "B"
    assert parse_completion(base + "<answer>carbon dioxide</answer>", task="mcqa").sample.answer == "B"
    assert parse_completion(base + "<answer>D</answer>", task="mcqa").reason.startswith("answer 'D' is not among")
    assert parse_completion(base + "<answer>B</answer>", task="mcqa", n_choices=4).reason.startswith(
        "wrong number of choices: 3 (want 4)"
    )
    twice = base.replace("C. helium", "C. Carbon  dioxide")
    assert parse_completion(twice + "<answer>B</answer>", task="mcqa").reason.startswith("duplicate choices")
    bad = base.replace("B. carbon", "C. carbon")
    assert "is not 'B. text'" in parse_completion(bad + "<answer>B</answer>", task="mcqa").reason


def test_code():
    sol = "def add(a, b):\n    return a + b\n"
    good = f"<question>Add.</question><reasoning>sum</reasoning><answer>{sol}</answer><tests>assert add(1, 2) == 3</tests>"
    p = parse_completion(good, task="code")
    assert p.sample.entry_point == "add" and p.sample.tests == "assert add(1, 2) == 3"
    broken = good.replace("return a + b", "return a +")
    assert parse_completion(broken, task="code").reason == "answer code does not compile: SyntaxError"
    assert parse_completion(good.replace("tests>", "test>"), task="code").reason == "missing tag <tests>"


def test_format_reward():
    assert format_reward(GOOD) == 0.75
    assert format_reward(GOOD + " trailing") == pytest.approx(0.75 - 0.008)
    assert format_reward("no tags at all") == 0.0
    assert format_reward(GOOD + GOOD) == 0.0  # every tag twice
    assert format_reward("<question>q</question>") == 0.25
    assert format_reward(GOOD + "x" * 5000) == 0.0  # never negative
    # ours, unlike the authors' code: any layout of the six tags scores in full, and a long reasoning
    # costs nothing (their newline-bracketed matching scores the inline layout 0 and goes negative)
    inline = "<question>q</question><reasoning>r</reasoning><answer>1</answer>"
    lines = "<question>\nq\n</question>\n<reasoning>\nr\n</reasoning>\n<answer>\n1\n</answer>\n"
    assert format_reward(inline) == format_reward(lines) == 0.75
    assert format_reward(inline.replace(">r<", ">" + "r" * 3000 + "<")) == 0.75


TAGS = st.sampled_from([t for t in FORMAT_TAGS] + ["<choices>", "</choices>", "<tests>", "</tests>", "<<", ">"])
PIECES = st.one_of(st.text(max_size=30), TAGS, st.sampled_from(["\u202e", "\x00", "é", "𝔘", "A. x\n", "def f(:"]))


DOCUMENTED = (
    "over-long", "missing tag", "duplicate tag", "unclosed tag", "empty field", "</", "choice line",
    "wrong number of choices", "duplicate choices", "answer ", "tests code does not compile", "answer is not a short final answer",
)
"""Every rejection reason parse_completion documents starts with one of these."""


def check_outcome(text: str, task: str, max_chars: int = 8000) -> None:
    p = parse_completion(text, task=task, max_chars=max_chars)
    assert (p.sample is None) != (p.reason is None)
    if p.reason is not None:
        assert p.reason.startswith(DOCUMENTED), p.reason
    else:
        assert p.sample.question and p.sample.answer and p.sample.reasoning
    assert 0.0 <= format_reward(text) <= 0.75


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=25), st.sampled_from(["math", "mcqa", "code", "exact"]))
def test_fuzz_never_raises(pieces, task):
    check_outcome("".join(pieces), task)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(PIECES, st.integers(1, 60_000)), min_size=1, max_size=6),
       st.sampled_from(["math", "mcqa", "code", "exact"]))
def test_fuzz_huge_repeated_pieces_never_raise(pieces, task):
    text = "".join(piece * count for piece, count in pieces)  # up to megabytes of tags, unicode, code
    check_outcome(text, task, max_chars=2_000_000)


def test_huge_and_nested_inputs():
    huge = "<question>" + "x" * 1_000_000 + "</question><reasoning>r</reasoning><answer>1</answer>"
    assert parse_completion(huge).reason.startswith("over-long")
    assert parse_completion(huge, max_chars=2_000_000).sample is not None
    nested = "<question><question>q</question></question><reasoning>r</reasoning><answer>1</answer>"
    assert parse_completion(nested).reason == "duplicate tag <question>"
    deep = "<question>q</question><reasoning>r</reasoning><answer>def f():\n    return " + "(" * 5000 + ")" * 5000 + "</answer><tests>assert 1</tests>"
    assert "does not compile" in parse_completion(deep, task="code", max_chars=100_000).reason


def test_math_answer_must_be_a_short_final_answer():
    prose = "<question>q</question><reasoning>r</reasoning><answer>Don't worry, I will make it fun and easy!</answer>"
    assert parse_completion(prose).reason == "answer is not a short final answer (41 characters)"
    latex = "<question>q</question><reasoning>r</reasoning><answer>\\frac{\\pi}{2} + 3\\sqrt{2}</answer>"
    assert parse_completion(latex).sample is not None
    assert parse_completion(prose, task="exact").sample is not None  # other tasks may have long answers
