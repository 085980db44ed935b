"""Cloze scoring of multiple choice, the convention of lm-evaluation-harness and lighteval.

The student reads a plain prompt, "Question: {question}\\nAnswer:", and each option's *text* is scored
as its continuation (" " + option). Two picks per question:
- `acc`: the option with the highest sum of token log-probs;
- `acc_norm`: the highest sum divided by the option's length in characters (lm-eval's
  `len(choice)`, the same as bytes for ASCII text), which removes the bias towards short options.

Unlike letter scoring ("Answer: B"), this needs no skill at the answer format, so it measures what a
small student knows rather than which letter it prefers; it is the default multiple-choice metric
for students under 1B parameters. Tokenisation follows lm-eval exactly: trailing whitespace of the
context moves into the continuation, and the continuation's tokens are those of
`tokenize(context + continuation)` after the first `len(tokenize(context))` tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import Student
from acqsynth.samples import Sample
from acqsynth.tasks.mcqa import CLOZE_TEMPLATE, LETTERS, cloze_request, gold_letter


@runtime_checkable
class OptionScorer(Protocol):
    """What cloze scoring needs from a student: its tokenizer and batched option log-likelihoods."""

    tokenizer: Any

    def score_options(
        self, contexts: Sequence[list[int]], options: Sequence[Sequence[list[int]]]
    ) -> list[np.ndarray]: ...


@dataclass
class ClozeResult:
    """Per-question cloze scores and picks."""

    loglik: list[np.ndarray]
    """Sum of token log-probs of each option, one array per question."""
    pick: np.ndarray
    """Index of the option with the highest `loglik` (acc's prediction; ties go to the first)."""
    pick_norm: np.ndarray
    """Index of the option with the highest `loglik / len(option text)` (acc_norm's prediction)."""
    gold: np.ndarray
    """Index of the reference option."""

    @property
    def correct(self) -> np.ndarray:
        return (self.pick == self.gold).astype(np.float64)

    @property
    def correct_norm(self) -> np.ndarray:
        return (self.pick_norm == self.gold).astype(np.float64)


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Context and continuation token ids, split the way lm-eval's `_encode_pair` splits them."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    return list(ctx), list(whole[len(ctx) :])


def pick_options(loglik: Sequence[np.ndarray], choices: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
    """acc's and acc_norm's picks: argmax of the sums, and of the sums over each option's length."""
    picks, norm = [], []
    for ll, opts in zip(loglik, choices, strict=True):
        lengths = np.array([float(len(o)) for o in opts])
        picks.append(int(np.argmax(ll)))
        norm.append(int(np.argmax(ll / np.maximum(lengths, 1.0))))
    return np.array(picks, dtype=np.int64), np.array(norm, dtype=np.int64)


def cloze_scores(
    student: Student | OptionScorer,
    samples: Sequence[Sample],
    template: str = CLOZE_TEMPLATE,
    progress: bool = False,
    chunk: int = 256,
) -> ClozeResult:
    """Score every option of every sample as a cloze continuation; see the module docstring.
    Any student may be passed; one that cannot score options (not a transformers student) is refused."""
    if not isinstance(student, OptionScorer):
        raise AcqsynthError(
            f"cloze scoring needs a transformers student (one with score_options); got {type(student).__name__}"
        )
    contexts, options = [], []
    for s in samples:
        context, conts = cloze_request(s, template)
        pairs = [encode_pair(student.tokenizer, context, c) for c in conts]
        contexts.append(pairs[0][0])
        options.append([p[1] or [student.tokenizer.eos_token_id] for p in pairs])
    loglik: list[np.ndarray] = []
    bar = tqdm(total=len(samples), desc="cloze", unit="q", disable=not progress)
    for i in range(0, len(samples), chunk):
        loglik += student.score_options(contexts[i : i + chunk], options[i : i + chunk])
        bar.update(min(chunk, len(samples) - i))
    bar.close()
    pick, pick_norm = pick_options(loglik, [s.choices or [] for s in samples])
    gold = np.array([LETTERS.index(gold_letter(s)) for s in samples], dtype=np.int64)
    return ClozeResult(loglik, pick, pick_norm, gold)


def chance(samples: Sequence[Sample]) -> float:
    """Expected accuracy of a uniform random pick: the mean of 1 / number of options."""
    return float(np.mean([1.0 / len(s.choices or [None]) for s in samples]))
