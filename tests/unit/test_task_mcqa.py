"""MCQATask: letter extraction across the forms students write, option scoring inputs, gold letters."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample
from acqsynth.tasks import MCQATask, Task
from acqsynth.tasks.mcqa import extract_choice

TASK = MCQATask()
CHOICES = ["oxygen", "carbon dioxide", "nitrogen", "water"]


def sample(answer: str = "B", reasoning: str | None = None, choices: list[str] | None = None) -> Sample:
    return Sample(
        id="q/1",
        question="Which gas do plants absorb from the air?",
        answer=answer,
        reasoning=reasoning,
        choices=CHOICES if choices is None else choices,
    )


def test_satisfies_protocol_and_prompt_format() -> None:
    assert isinstance(TASK, Task)
    assert TASK.prompt(sample()) == [
        {
            "role": "user",
            "content": "Which gas do plants absorb from the air?\n\n"
            "A. oxygen\nB. carbon dioxide\nC. nitrogen\nD. water\n\n"
            "Answer with the letter of the correct option.",
        }
    ]


def test_target_with_and_without_reasoning() -> None:
    assert TASK.target(sample()) == "Answer: B"
    assert TASK.target(sample(reasoning="Plants use CO2 in photosynthesis.")) == (
        "Plants use CO2 in photosynthesis.\nAnswer: B"
    )
    assert MCQATask(with_reasoning=False).target(sample(reasoning="Because.")) == "Answer: B"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the whole reply is a letter
        ("B", "B"),
        ("b", "B"),
        ("b)", "B"),
        ("(D)", "D"),
        ("**C**", "C"),
        ("[C]", "C"),
        # explicit statements, upper and lower case
        ("The answer is (B)", "B"),
        ("Answer: c", "C"),
        ("I think the answer is b.", "B"),
        ("The correct answer is: **(d)**", "D"),
        ("Final answer: (a)", "A"),
        ("My answer: D.", "D"),
        ("The best choice is B since plants breathe", "B"),
        ("I would choose C", "C"),
        ("The answer is A", "A"),
        ("The answer is A because oxygen is needed", "A"),
        ("Answer:\nB", "B"),
        ("Option A is wrong. Option B is wrong. C is correct.", "C"),
        ("The answer is not A, it's B", "B"),
        ("answer is carbon dioxide.", "B"),
        # label at the start
        ("(D) because plants need it", "D"),
        ("C) nitrogen", "C"),
        ("c. nitrogen", "C"),
        # bracketed letter anywhere
        ("Carbon dioxide (B) is needed", "B"),
        # option text repeated
        ("carbon dioxide", "B"),
        ("The plant uses carbon, specifically carbon dioxide", "B"),
        # the article "A" is not option A when a better signal exists, and alone it is no signal
        ("A plant takes in carbon dioxide from the air.", "B"),
        ("A plant needs light.", None),
        ("The answer is a plant", None),
        ("I'm not sure.", None),
        # an echoed option list is not an answer
        ("A. oxygen\nB. carbon dioxide\nC. nitrogen\nD. water", None),
        # letters beyond the options and empty replies
        ("E", None),
        ("The answer is E", None),
        ("", None),
        ("   ", None),
    ],
)
def test_extract(text: str, expected: str | None) -> None:
    assert extract_choice(text, CHOICES, "ABCD") == expected
    assert TASK.extract(text, sample()) == expected


# Choices where the stated letter and the option text can disagree: C is "water", "oxygen" is D.
LETTER_VS_TEXT = ["wood", "carbon dioxide", "water", "oxygen"]


@pytest.mark.parametrize(
    "text",
    [
        "The answer is C. oxygen",
        "Answer is C. oxygen",
        "Answer: C. oxygen",
        "answer: (C) oxygen",
        "The correct answer is C: oxygen",
        "The final answer is C) oxygen",
        "C. oxygen",
        "The answer is C, oxygen.",
        "**Answer:** C oxygen",
        "The answer is oxygen (C)",
        "The answer is oxygen [C]",
        "The answer is (C) oxygen",
        "I think the answer is c. oxygen",
        "The best answer would be C - oxygen",
        "Answer: oxygen (option C)",
        "C is correct: oxygen",
        "Wood is a solid and water is a liquid.\nCarbon dioxide is taken in, oxygen is given off.\n"
        "The answer is C. oxygen",
        "Option A (wood) is not a gas. Option B, carbon dioxide, is absorbed.\nOxygen is released.\n"
        "Answer: C",
        "The answer is C. Option B is wrong.",  # "Option B is wrong" rejects B, it does not choose it
    ],
)
def test_stated_letter_beats_option_text(text: str) -> None:
    """A reply naming letter C and option D's text is graded by the letter, whatever the phrasing."""
    s = sample(answer="C", choices=LETTER_VS_TEXT)
    assert extract_choice(text, LETTER_VS_TEXT, "ABCD") == "C"
    assert TASK.extract(text, s) == "C"
    assert TASK.grade(text, s).correct


@pytest.mark.parametrize(
    "text",
    [
        "The answer is oxygen",
        "Answer: oxygen",
        "The correct answer is oxygen.",
        "**Answer:** oxygen",
        "Wood burns and water is a liquid.\nThe answer is oxygen",
        "The answer is carbon dioxide or oxygen.\nThe answer is oxygen.",
    ],
)
def test_answer_stated_only_as_option_text(text: str) -> None:
    """A statement giving only an option's text (no letter anywhere) maps to that option's letter."""
    assert extract_choice(text, LETTER_VS_TEXT, "ABCD") == "D"
    assert TASK.extract(text, sample(answer="D", choices=LETTER_VS_TEXT)) == "D"


@pytest.mark.parametrize(
    "text",
    [
        "Option B is wrong because plants absorb it. The answer is oxygen.",
        "Option A: wood is solid. Option B: carbon dioxide is absorbed.\nThe answer is oxygen.",
        "The answer is oxygen. Option B is wrong.",
        # C is stated, but in an earlier statement than the one naming oxygen, which is the reply's
        # final word (C would win only inside that statement, as in "the answer is C. oxygen").
        "The answer is C.\nPlants release oxygen, so the answer is oxygen.",
    ],
)
def test_letter_outside_the_text_statement_does_not_override_it(text: str) -> None:
    """A letter mentioned outside an option-text statement does not override it: the final one wins."""
    assert extract_choice(text, LETTER_VS_TEXT, "ABCD") == "D"
    assert TASK.extract(text, sample(answer="D", choices=LETTER_VS_TEXT)) == "D"


def test_longer_option_text_wins_over_its_prefix() -> None:
    choices = ["carbon", "carbon dioxide", "carbon monoxide", "helium"]
    assert extract_choice("It is carbon dioxide.", choices, "ABCD") == "B"
    assert extract_choice("It is carbon.", choices, "ABCD") == "A"
    assert extract_choice("carbon dioxide or carbon monoxide", choices, "ABCD") is None


def test_without_choices_letters_a_to_e_are_accepted() -> None:
    s = Sample(id="q/2", question="?", answer="E")
    assert TASK.grade("The answer is (E)", s).correct


@pytest.mark.parametrize(
    ("prediction", "correct", "reason", "extracted"),
    [
        ("The answer is (B)", True, "match", "B"),
        ("b", True, "match", "B"),
        ("carbon dioxide", True, "match", "B"),
        ("Answer: c", False, "mismatch", "C"),
        ("I don't know", False, "no answer found", None),
    ],
)
def test_grade(prediction: str, correct: bool, reason: str, extracted: str | None) -> None:
    v = TASK.grade(prediction, sample())
    assert (v.correct, v.reason, v.extracted) == (correct, reason, extracted)


@pytest.mark.parametrize("gold", ["B", "b", "(B)", "B.", "carbon dioxide", "Carbon Dioxide"])
def test_gold_letter_forms(gold: str) -> None:
    assert TASK.grade("B", sample(answer=gold)).correct
    assert TASK.target(sample(answer=gold)) == "Answer: B"


def test_bad_gold_answer_is_a_clear_error() -> None:
    with pytest.raises(AcqsynthError, match="q/1.*neither a letter"):
        TASK.grade("B", sample(answer="helium"))


def test_answer_pattern() -> None:
    task = MCQATask(answer_pattern=r"<ans>(.*?)</ans>")
    assert task.extract("A plant... <ans>c</ans>", sample()) == "C"
    assert task.extract("no tags: (D)", sample()) == "D"


def test_option_continuations_letter_mode() -> None:
    context, conts = TASK.option_continuations(sample())
    assert context.endswith("Answer with the letter of the correct option.\nAnswer:")
    assert "B. carbon dioxide" in context
    assert conts == [" A", " B", " C", " D"]


def test_option_continuations_text_mode() -> None:
    context, conts = TASK.option_continuations(sample(), mode="text")
    assert context == "Question: Which gas do plants absorb from the air?\nAnswer:"  # lm-eval's cloze prompt
    assert conts == [" oxygen", " carbon dioxide", " nitrogen", " water"]
    with pytest.raises(AcqsynthError, match="mode"):
        TASK.option_continuations(sample(), mode="bogus")  # type: ignore[arg-type]
    with pytest.raises(AcqsynthError, match="choices"):
        TASK.option_continuations(Sample(id="x", question="?", answer="A"))


def test_custom_template_is_filled_by_name() -> None:
    task = MCQATask(instruction="Q: {question}\nOptions:\n{choices}\nReply with one letter. {not_a_slot}")
    text = task.prompt(sample())[0]["content"]
    assert text.startswith("Q: Which gas") and "A. oxygen" in text and "{not_a_slot}" in text
    with pytest.raises(AcqsynthError, match="choices"):
        MCQATask(instruction="{question} only")


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=200) | st.text(alphabet="ABCDEabcde()[]*.:- \nanswer is carbon dioxide", max_size=120)
)
def test_extract_never_raises(text: str) -> None:
    out = TASK.extract(text, sample())
    assert out is None or out in "ABCD"
