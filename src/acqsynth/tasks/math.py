"""Math word problems with a checkable final answer (GSM8K, MATH): the student ends with `#### <answer>`."""

from __future__ import annotations

from acqsynth.samples import Sample
from acqsynth.tasks.base import Messages, Verdict
from acqsynth.tasks.common import chat, check_template, compile_answer_pattern, fill_template, last_group
from acqsynth.tasks.math_answers import (
    extract_math_answer,
    gold_math_answer,
    math_equal,
    normalize_math_answer,
)

DEFAULT_INSTRUCTION = '{question}\n\nReason step by step, then end with the final answer as "#### <answer>".'
ANSWER_ONLY_INSTRUCTION = '{question}\n\nGive only the final answer, as "#### <answer>".'
"""The `math-answer` prompt: for answer-only targets, which show no reasoning for a prompt to ask for."""


class MathTask:
    """Free-form math: reasoning, then `#### answer`; graded by numeric / symbolic equivalence.

    Extraction order: a user `answer_pattern` (if given), `#### x`, the last `\\boxed{x}`,
    "The answer is x", the last number. Equivalence: see `math_answers.math_equal`.
    """

    kind = "math"
    """The built-in family: what parsing, labelling and templates treat it as."""

    def __init__(
        self,
        name: str = "math",
        *,
        system: str | None = None,
        instruction: str = DEFAULT_INSTRUCTION,
        answer_pattern: str | None = None,
        compare_timeout_s: float = 5.0,
    ) -> None:
        check_template(instruction, ("question",), f"task {name!r} instruction")
        self.name = name
        self.system = system
        self.instruction = instruction
        self.answer_pattern = compile_answer_pattern(answer_pattern, f"task {name!r}")
        self.compare_timeout_s = compare_timeout_s

    def prompt(self, sample: Sample) -> Messages:
        """One user turn (plus the optional system message) holding the question and the instruction."""
        return chat(self.system, fill_template(self.instruction, question=sample.question))

    def target(self, sample: Sample) -> str:
        """Reasoning (if any), then `#### answer`: exactly the format the prompt asks for."""
        answer = sample.answer.strip()
        reasoning = (sample.reasoning or "").strip()
        if "####" in answer:  # a raw GSM8K answer: "work... #### 18"
            head, answer = answer.rsplit("####", 1)
            answer = answer.strip()
            reasoning = reasoning or head.strip()
        return f"{reasoning}\n#### {answer}" if reasoning else f"#### {answer}"

    def extract(self, text: str, sample: Sample) -> str | None:
        """The normalised final answer in `text`, or None."""
        found = last_group(self.answer_pattern, text)
        if found is not None:
            norm = normalize_math_answer(found)
            if norm:
                return norm
        return extract_math_answer(text)

    def grade(self, prediction: str, sample: Sample) -> Verdict:
        """`match` when the extracted answer equals the reference (numerically or symbolically)."""
        got = self.extract(prediction, sample)
        if got is None:
            return Verdict(False, None, "no answer found")
        ok = math_equal(got, gold_math_answer(sample.answer), timeout_s=self.compare_timeout_s)
        return Verdict(ok, got, "match" if ok else "mismatch")


class MathAnswerTask(MathTask):
    """`math-answer`: math whose targets are the final answer only (arithmetic), so the prompt asks for
    exactly that. Under `math`'s step-by-step prompt a student trained on answer-only targets learns
    to drop the reasoning it was asked for, and early gains measure that format, not arithmetic."""

    def __init__(self, name: str = "math-answer", **kwargs: object) -> None:
        kwargs.setdefault("instruction", ANSWER_ONLY_INSTRUCTION)
        super().__init__(name, **kwargs)  # type: ignore[arg-type]

    def target(self, sample: Sample) -> str:
        """`#### answer` alone, as the prompt asks: a sample's reasoning (a generator may write some)
        is not trained on."""
        answer = sample.answer.strip()
        if "####" in answer:
            answer = answer.rsplit("####", 1)[1].strip()
        return f"#### {answer}"
