"""LLM-as-judge: a judge model rates each sample on a stated rubric, 1 to 10, and the rating is the score.

The judge is any `Generator` (transformers, llama.cpp, an OpenAI-compatible server). Every sample's
prompt states the rubric, shows the question (with its choices, and the reference answer unless
`include_answer=False`) and demands a final line `Rating: N`. All prompts go out in one batched,
greedy `generate` call; replies that cannot be parsed are asked again, with a reminder of the
format, up to `retries` times; each retry continues the conversation (the judge sees its own
unparsable reply, then the reminder), so a greedy judge does not just repeat itself.

Parsing (`parse_rating`) is strict: the LAST occurrence of `Rating:` followed by optional whitespace
and ASCII digits decides, case-insensitively; its number must be an integer from 1 to 10 (not a
decimal such as `7.5`, not written in non-ASCII digits). `Rating: 7/10` reads as 7. Anything else,
including `rating : 7` (space before the colon) or `**Rating:** 7` (markup between colon and number),
is unparsable. A rating N scores (N − 1) / 9 ∈ [0, 1]; a sample still unparsable after the retries
scores NaN, and a warning says how many there were.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from acqsynth.acquisition.base import ScoringContext
from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import GenerationParams
from acqsynth.samples import Sample
from acqsynth.tasks.base import Messages

RUBRICS: dict[str, str] = {
    "difficulty": (
        "Difficulty: how hard is this problem for a small student language model to solve correctly? "
        "1 = trivial (answered at a glance), 5 = needs several careful steps, "
        "10 = very hard (long multi-step reasoning that a small model almost always gets wrong)."
    ),
    "quality": (
        "Quality: is the problem well-posed and self-contained, and is the reference answer correct? "
        "1 = broken (ambiguous, missing information, or a wrong answer), 5 = usable but flawed, "
        "10 = excellent (clear, complete, with a correct answer)."
    ),
}
"""Built-in rubrics by name; any other rubric string is used verbatim."""

RATING_PATTERN = re.compile(r"Rating:\s*([0-9]+)(?![.,]?[0-9])", re.IGNORECASE | re.ASCII)
"""`Rating:` then an integer; a number followed by a decimal part (`7.5`, `7,5`) does not match."""

FORMAT_RULE = (
    "End your reply with a final line of exactly this form:\nRating: N\n"
    "where N is a single integer from 1 to 10."
)
REMINDER = (
    "Your reply did not end with a valid rating line. Reply again, and this time end with a final "
    "line of exactly the form `Rating: N`, where N is an integer from 1 to 10 (for example `Rating: 4`)."
)
RAW_PREVIEW_CHARS = 200


def rubric_text(rubric: str) -> str:
    """The text of a built-in rubric ('difficulty', 'quality'), or `rubric` itself for a custom one."""
    text = RUBRICS.get(rubric, rubric)
    if not text.strip():
        raise AcqsynthError(
            f"llm-judge: the rubric is empty; use one of {', '.join(RUBRICS)} or a custom text"
        )
    return text


def parse_rating(text: str) -> int | None:
    """The rating 1–10 in a judge's reply (the last `Rating: N` decides), or None if there is none valid."""
    matches = RATING_PATTERN.findall(text)
    if not matches:
        return None
    n = int(matches[-1])
    return n if 1 <= n <= 10 else None


def judge_prompt(sample: Sample, rubric: str, include_answer: bool = True) -> Messages:
    """The chat prompt asking the judge to rate `sample` on `rubric` (a built-in name or custom text)."""
    parts = [
        "You are rating a problem from a training set for a small student language model.",
        f"Rubric:\n{rubric_text(rubric)}",
        f"Problem:\n{sample.question}",
    ]
    if sample.choices:
        parts.append("Choices:\n" + "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(sample.choices)))
    if include_answer and (sample.answer or sample.reasoning):
        answer = f"{sample.reasoning}\n{sample.answer}".strip() if sample.reasoning else sample.answer
        parts.append(f"Reference answer:\n{answer}")
    parts.append(f"Rate the problem on the rubric. Be brief. {FORMAT_RULE}")
    return [{"role": "user", "content": "\n\n".join(parts)}]


@dataclass
class LLMJudge:
    """A judge model's 1–10 rating of each sample on a rubric (default: difficulty for a small
    student), mapped to [0, 1]. One of the selection criteria compared in active synthetic data
    generation (arXiv 2512.00884); NaN where the judge gave no parsable rating."""

    name: ClassVar[str] = "llm-judge"
    rubric: str = "difficulty"
    """'difficulty', 'quality', or any other text, used verbatim as the rubric."""
    max_new_tokens: int = 64
    """Most tokens the judge may write per rating."""
    retries: int = 1
    """How many times an unparsable reply is asked again, with a reminder of the format."""
    include_answer: bool = True
    """Show the judge the sample's reference answer (when it has one)."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        if self.retries < 0:
            raise AcqsynthError(f"acquisition {self.name!r}: retries must be >= 0, got {self.retries}")
        if not samples:
            return np.empty(0, dtype=np.float64)
        judge = ctx.need("judge", by=self.name)
        params = GenerationParams(max_new_tokens=self.max_new_tokens, temperature=0.0, n=1, seed=ctx.seed)
        prompts = [judge_prompt(s, self.rubric, self.include_answer) for s in samples]
        raw = [c[0].text for c in judge.generate(prompts, params)]
        ratings = [parse_rating(t) for t in raw]
        for _ in range(self.retries):
            todo = [i for i, r in enumerate(ratings) if r is None]
            if not todo:
                break
            # the conversation goes on: the judge sees its unparsable reply, then the reminder
            for i in todo:
                prompts[i] = [
                    *prompts[i],
                    {"role": "assistant", "content": raw[i]},
                    {"role": "user", "content": REMINDER},
                ]
            for i, comps in zip(todo, judge.generate([prompts[i] for i in todo], params), strict=True):
                raw[i] = comps[0].text
                ratings[i] = parse_rating(raw[i])
        failed = [i for i, r in enumerate(ratings) if r is None]
        if failed:
            warnings.warn(
                f"{self.name}: {len(failed)} of {len(samples)} ratings were unparsable after "
                f"{self.retries} retr{'y' if self.retries == 1 else 'ies'} and score NaN; e.g. sample "
                f"{samples[failed[0]].id!r} got {raw[failed[0]][:RAW_PREVIEW_CHARS]!r}",
                stacklevel=2,
            )
        return np.array([(r - 1) / 9 if r is not None else np.nan for r in ratings], dtype=np.float64)
