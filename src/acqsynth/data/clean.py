"""Drop source items that would corrupt splits or grading: exact repeats and ambiguous MCQ keys.

Why: a question that occurs twice can land in both `eval` and `pool`, leaking the evaluation set
into training data; an MCQ whose correct option text also appears under another letter cannot be
graded by letter. Both are rare (MMLU has 141 repeats, MedMCQA and MMLU 9 ambiguous keys together).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from acqsynth.samples import Sample


def _key(s: Sample) -> tuple[str, tuple[str, ...], str]:
    """What makes two samples the same problem: question, options and answer (whitespace-trimmed)."""
    return s.question.strip(), tuple(c.strip() for c in s.choices or ()), s.answer.strip()


def ambiguous_key(s: Sample) -> bool:
    """Whether an MCQ's correct option text appears under more than one letter."""
    if not s.choices or len(s.answer) != 1 or not s.answer.isupper():
        return False
    index = ord(s.answer) - ord("A")
    if index >= len(s.choices):
        return False
    options = [c.strip() for c in s.choices]
    return options.count(options[index]) > 1


def clean(samples: Iterable[Sample]) -> tuple[list[Sample], Counter[str]]:
    """Samples without exact repeats (the first in source order is kept) and without ambiguous keys,
    plus how many of each were dropped."""
    kept: list[Sample] = []
    seen: set[tuple[str, tuple[str, ...], str]] = set()
    dropped: Counter[str] = Counter()
    for s in samples:
        key = _key(s)
        if key in seen:
            dropped["duplicate"] += 1
        elif ambiguous_key(s):
            dropped["ambiguous answer"] += 1
        else:
            seen.add(key)
            kept.append(s)
    return kept, dropped
