"""The edge of learnability: how close the student is to getting a sample right half the time.

p is the student's probability of the sample's gold answer (the task target, scored as `loss(answer=
reference)` scores it: one forward pass over prompt and target, shared with the other forward-pass
functions), and the score is −|p − target|. Samples the student already knows (p ≈ 1) or is far
from (p ≈ 0) score low; those it is about to learn score high. acqsynth's addition, after the
curriculum idea of training where the learner succeeds about half the time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from acqsynth.acquisition.base import ScoringContext
from acqsynth.acquisition.uncertainty import answer_stats
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample


def gold_probability(logprobs: Sequence[np.ndarray], per_token: bool = False) -> np.ndarray:
    """exp(Σ_t log p_t), the probability of the whole answer, or with `per_token` exp(mean_t log p_t),
    the geometric mean of its token probabilities; NaN for an empty answer."""
    out = np.full(len(logprobs), np.nan)
    for i, lp in enumerate(logprobs):
        if len(lp):
            total = float(np.sum(lp, dtype=np.float64))
            out[i] = np.exp(total / len(lp) if per_token else total)
    return out


@dataclass
class Learnability:
    """−|p − target|, p = exp(−Σ_t NLL_t) the student's probability of the gold answer given the prompt
    (with `per_token`, exp(−mean_t NLL_t)). Highest where the student gets the answer right about
    `target` of the time: items it is about to learn."""

    name: ClassVar[str] = "learnability"
    target: float = 0.5
    """The probability of the gold answer that scores highest (0 to 1)."""
    per_token: bool = False
    """Use the mean-token probability exp(−mean NLL) instead of the sequence probability, for long
    targets whose sequence probability is tiny for every sample."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.target <= 1.0:
            raise AcqsynthError(f"acquisition 'learnability': target={self.target!r} must be between 0 and 1")

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        stats = answer_stats(samples, ctx, "reference", self.name)
        p = gold_probability([s.logprobs for s in stats], self.per_token)
        return -np.abs(p - self.target)
