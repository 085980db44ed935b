"""Generator prompts: slots filled by name from the seed, user templates checked for their slots."""

from __future__ import annotations

import pytest

from acqsynth.errors import AcqsynthError
from acqsynth.generation.prompts import PromptBuilder, seed_answer, seed_reasoning, split_roles, template_kind
from acqsynth.samples import Sample

SEED = Sample(id="s", question="Ann has 3 pens and buys 4. How many?", answer="7",
              reasoning="3 + 4 = <<3+4=7>>7 pens.")


def test_math_prompt_puts_each_seed_field_in_its_own_tag():
    text = PromptBuilder("math")(SEED)[1]["content"]
    assert f"<question>{SEED.question}</question>" in text
    assert "<reasoning>3 + 4 = 7 pens.</reasoning>" in text  # calculator marks removed
    assert "<answer>7</answer>" in text
    assert text.index("<reasoning>3 + 4") < text.index("<answer>7")  # reasoning and answer not swapped


def test_raw_gsm8k_answer_is_split_into_reasoning_and_answer():
    raw = Sample(id="g", question="q", answer="Half of 48 is <<48/2=24>>24.\n#### 24")
    assert seed_answer(raw) == "24" and seed_reasoning(raw) == "Half of 48 is 24."


def test_mcqa_prompt_shows_lettered_choices_and_letter_answer():
    s = Sample(id="m", question="Which gas?", answer="B", choices=["oxygen", "carbon dioxide", "neon", "argon"])
    messages = PromptBuilder("mcqa")(s)
    text = messages[1]["content"]
    assert "A. oxygen\nB. carbon dioxide\nC. neon\nD. argon" in text
    assert "<answer>B</answer>" in text and "with 4 options" in messages[2]["content"]
    assert "<reasoning>The answer is B.</reasoning>" in text  # a seed without an explanation


def test_code_prompt_shows_solution_and_tests():
    s = Sample(id="c", question="Write add.", answer="def add(a, b):\n    return a + b", tests="assert add(1, 2) == 3",
               entry_point="add")
    text = PromptBuilder("code")(s)[1]["content"]
    assert "def add(a, b):" in text and "<tests>\nassert add(1, 2) == 3\n</tests>" in text


def test_seed_text_with_slot_names_and_braces_is_not_refilled():
    s = Sample(id="b", question="Simplify \\frac{1}{2} + {answer}", answer="{question}")
    text = PromptBuilder("math")(s)[1]["content"]
    assert "<question>Simplify \\frac{1}{2} + {answer}</question>" in text
    assert "<answer>{question}</answer>" in text


def test_user_template_and_its_errors(tmp_path):
    good = tmp_path / "t.txt"
    good.write_text("Example: {question} => {answer}. Write another in <question></question> tags.")
    assert PromptBuilder("math", str(good), system="be brief")(SEED) == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": f"Example: {SEED.question} => 7. Write another in <question></question> tags."},
    ]
    bad = tmp_path / "bad.txt"
    bad.write_text("Example: {question}")
    with pytest.raises(AcqsynthError, match=r"must contain \{answer\}"):
        PromptBuilder("math", str(bad))
    with pytest.raises(AcqsynthError, match="no such file"):
        PromptBuilder("math", str(tmp_path / "missing.txt"))
    with pytest.raises(AcqsynthError, match="unknown template kind"):
        PromptBuilder("poetry")


def test_template_kind_falls_back_to_default():
    assert [template_kind(t) for t in ("math", "mcqa", "code", "exact", "my-task")] == [
        "math", "mcqa", "code", "default", "default"]


def test_builtin_templates_show_the_seed_as_an_assistant_turn_and_end_in_the_prefix():
    builder = PromptBuilder("math")
    messages = builder(SEED)
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[-1]["content"] == "<question>" == builder.response_prefix
    assert builder.stop == ["</answer>"] and PromptBuilder("code").stop == ["</tests>"]
    # the completion is stitched back to the whole tagged answer before parsing
    assert builder.complete("Q?</question><reasoning>r</reasoning><answer>4", "stop") == (
        "<question>Q?</question><reasoning>r</reasoning><answer>4</answer>")
    assert builder.complete("Q?</question><answer>4", "length").endswith("<answer>4")  # cut by length: no repair


def test_split_roles():
    assert split_roles("just a prompt\n") == [("user", "just a prompt")]
    assert split_roles("[system]\nbe brief\n[user]\nhi\n\n[assistant]\n<q>") == [
        ("system", "be brief"), ("user", "hi"), ("assistant", "<q>")]


def test_copied_placeholders_are_recognised():
    builder = PromptBuilder("mcqa")
    copied = Sample(id="c", question="Which gas?", answer="B", reasoning="Why the correct option is right.",
                    choices=["a", "b"])
    assert builder.copied_placeholder(copied) == "reasoning"
    assert builder.copied_placeholder(SEED) is None
    assert PromptBuilder("math").copied_placeholder(Sample(id="p", question="the problem", answer="3")) == "question"
