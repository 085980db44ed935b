"""Short free-text answers compared as normalised strings (capitals, names, one-word answers)."""

from __future__ import annotations

import re
import unicodedata

from acqsynth.samples import Sample
from acqsynth.tasks.base import Messages, Verdict
from acqsynth.tasks.common import chat, check_template, compile_answer_pattern, fill_template, last_group

DEFAULT_INSTRUCTION = '{question}\n\nGive the final answer on the last line as "Answer: <answer>".'

_ANSWER_LINE = re.compile(r"(?i:\b(?:final\s+answer|answer)\s*(?:is|:)\s*)([^\n]+)")


def normalize_text(s: str, *, lowercase: bool = False, strip_punctuation: bool = False) -> str:
    """NFKC, whitespace collapsed, trailing period dropped; optionally lower-cased / without punctuation."""
    s = unicodedata.normalize("NFKC", s)
    if lowercase:
        s = s.casefold()
    if strip_punctuation:
        s = "".join(" " if unicodedata.category(c).startswith("P") else c for c in s)
    return re.sub(r"\s+", " ", s).strip().rstrip(".").rstrip()


class ExactTask:
    """Correct when the extracted answer equals the reference after normalisation.

    Extraction: a user `answer_pattern` if given and found, else the text after the last
    "Answer:" / "answer is", else the last non-empty line.
    """

    kind = "exact"
    """The built-in family: what parsing, labelling and templates treat it as."""

    def __init__(
        self,
        name: str = "exact",
        *,
        system: str | None = None,
        instruction: str = DEFAULT_INSTRUCTION,
        answer_pattern: str | None = None,
        lowercase: bool = False,
        strip_punctuation: bool = False,
    ) -> None:
        check_template(instruction, ("question",), f"task {name!r} instruction")
        self.name = name
        self.system = system
        self.instruction = instruction
        self.answer_pattern = compile_answer_pattern(answer_pattern, f"task {name!r}")
        self.lowercase = lowercase
        self.strip_punctuation = strip_punctuation

    def _norm(self, s: str) -> str:
        return normalize_text(s, lowercase=self.lowercase, strip_punctuation=self.strip_punctuation)

    def prompt(self, sample: Sample) -> Messages:
        """One user turn filled from the instruction template."""
        return chat(self.system, fill_template(self.instruction, question=sample.question))

    def target(self, sample: Sample) -> str:
        """Reasoning (if any), then "Answer: <answer>"."""
        reasoning = (sample.reasoning or "").strip()
        answer = f"Answer: {sample.answer.strip()}"
        return f"{reasoning}\n{answer}" if reasoning else answer

    def extract(self, text: str, sample: Sample) -> str | None:
        """The normalised answer, or None when the text is empty."""
        found = last_group(self.answer_pattern, text)
        if found is None:
            found = last_group(_ANSWER_LINE, text)
        if found is None:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            found = lines[-1] if lines else None
        if found is None:
            return None
        norm = self._norm(found)
        return norm or None

    def grade(self, prediction: str, sample: Sample) -> Verdict:
        """`match` when the normalised strings are equal."""
        got = self.extract(prediction, sample)
        if got is None:
            return Verdict(False, None, "no answer found")
        ok = got == self._norm(sample.answer)
        return Verdict(ok, got, "match" if ok else "mismatch")
