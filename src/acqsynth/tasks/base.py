"""The interface every verifiable task implements: prompt the student, extract an answer, grade it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from acqsynth.samples import Sample

Messages = list[dict[str, str]]
"""A chat conversation: [{"role": "system"|"user"|"assistant", "content": ...}, ...]."""


@dataclass(frozen=True)
class Verdict:
    """The result of grading one prediction against one Sample."""

    correct: bool
    """Whether the prediction is right."""
    extracted: str | None
    """The answer pulled out of the prediction text (None if none could be found)."""
    reason: str
    """Why: 'match', 'mismatch', 'no answer found', 'timeout', 'failed: AssertionError ...', ..."""


@runtime_checkable
class Task(Protocol):
    """A verifiable task. Implementations are plain classes; no inheritance is required."""

    name: str
    """Short name used in configs and the CLI (`math`, `mcqa`, `code`, or a user's own)."""

    def prompt(self, sample: Sample) -> Messages:
        """Chat messages that ask the student to solve `sample` (no assistant turn)."""
        ...

    def target(self, sample: Sample) -> str:
        """The assistant text a perfect student would write: what SFT trains on and reference loss scores."""
        ...

    def extract(self, text: str, sample: Sample) -> str | None:
        """The final answer in a free-text completion, normalised for comparison; None if there is none."""
        ...

    def grade(self, prediction: str, sample: Sample) -> Verdict:
        """Grade a free-text prediction (the student's whole completion) against the sample's reference."""
        ...


def task_kind(task: Task) -> str:
    """The built-in family a task belongs to (`math`, `mcqa`, `code`, `exact`): its `kind` attribute
    (the built-ins and YAML tasks built on them have one), else its name. Parsing generated samples,
    grouping self-consistency answers and picking a generator template go by it, so `math-answer` or a
    YAML task with `base: math` is treated as math."""
    return str(getattr(task, "kind", task.name))


def grade_all(task: Task, predictions: list[str], samples: list[Sample]) -> list[Verdict]:
    """Grade predictions in order, concurrently where the task can (code candidates run in parallel sandboxes)."""
    if hasattr(task, "grade_many"):
        return task.grade_many(predictions, samples)
    return [task.grade(p, s) for p, s in zip(predictions, samples, strict=True)]
