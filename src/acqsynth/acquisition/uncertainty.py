"""Uncertainty of the student from one forward pass over an answer: confidence margin, loss,
least confidence, token entropy and EL2N.

Each reads the per-token statistics that `ScoringContext.token_stats` computes once per
(prompt, answer), so any mix of these functions costs one forward pass. `answer="own"` scores the
student's own sampled answer (shared with `answer-variance` and every other `own` function);
`answer="reference"` scores the sample's reference answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from acqsynth.acquisition.base import ScoringContext
from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import TokenScores
from acqsynth.samples import Sample

ANSWER_SOURCES = ("own", "reference", "final")
"""`own`: the student's first sampled answer; `reference`: the task's full target (reasoning, then the
answer); `final`: the sample's final answer alone (what AcquisitionSynthesis' code scores)."""


def answer_texts(samples: Sequence[Sample], ctx: ScoringContext, answer: str, by: str) -> list[str]:
    """Each sample's answer text from one of `ANSWER_SOURCES`."""
    if answer == "own":
        return [a[0] for a in ctx.answers(samples, 1, by=by)]
    if answer == "reference":
        return [ctx.reference_answer(s, by=by) for s in samples]
    if answer == "final":
        return [ctx.final_answer(s, by=by) for s in samples]
    raise AcqsynthError(f"acquisition {by!r}: answer={answer!r} is not one of {', '.join(ANSWER_SOURCES)}")


def answer_stats(samples: Sequence[Sample], ctx: ScoringContext, answer: str, by: str) -> list[TokenScores]:
    """Token statistics of each sample's own (first sampled) or reference answer."""
    return ctx.token_stats(samples, answer_texts(samples, ctx, answer, by), by=by)


def _asked(value: np.ndarray | None, what: str, by: str) -> np.ndarray:
    """A statistic `token_stats` always asks the student for (top-2 log-probs, entropy, sum of squares);
    a student that leaves it out breaks the Student protocol."""
    if value is None:
        raise AcqsynthError(f"acquisition {by!r}: the student's score_texts returned no {what} although asked")
    return value


def _per_token_mean(values: Sequence[np.ndarray]) -> np.ndarray:
    """Mean of each array (NaN for an empty answer: nothing to measure)."""
    return np.array([float(np.mean(v, dtype=np.float64)) if len(v) else np.nan for v in values])


@dataclass
class Confidence:
    """AcquisitionSynthesis' confidence reward: A = 1 / mean_t (p_top1 − p_top2) over the student's
    own sampled answer. The margin uses the true top-2 of each next-token distribution (the reference
    code used the sampled token as "top-1"). Small margins mean an unsure student: high value."""

    name: ClassVar[str] = "confidence"
    epsilon: float = 1e-6
    """Lower bound on the mean margin, so a flat distribution scores 1/epsilon rather than inf."""
    answer: str = "own"
    """Answer the margins are measured over: 'own' (sampled by the student) or 'reference'."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        stats = answer_stats(samples, ctx, self.answer, self.name)
        top = [_asked(s.topk_logprobs, "top-k log-probs", self.name) for s in stats]
        margins = [np.exp(t[:, 0]) - np.exp(t[:, 1]) for t in top]
        return 1.0 / np.maximum(_per_token_mean(margins), self.epsilon)


@dataclass
class Loss:
    """Mean token negative log-likelihood of an answer under the student. On the student's own answer
    it is the uncertainty proxy that worked best in active synthetic data generation; on the reference
    answer it measures how far the student is from the target."""

    name: ClassVar[str] = "loss"
    answer: str = "own"
    """'own' (the student's sampled answer) or 'reference' (the sample's answer)."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        return _per_token_mean([-s.logprobs for s in answer_stats(samples, ctx, self.answer, self.name)])


@dataclass
class LeastConfidence:
    """Sequence least confidence 1 − exp(mean token log-prob) of an answer."""

    name: ClassVar[str] = "least-confidence"
    answer: str = "own"
    """'own' or 'reference'."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        mean_lp = _per_token_mean([s.logprobs for s in answer_stats(samples, ctx, self.answer, self.name)])
        return 1.0 - np.exp(mean_lp)


@dataclass
class TokenEntropy:
    """Mean entropy (nats) of the student's next-token distributions along an answer."""

    name: ClassVar[str] = "entropy"
    answer: str = "own"
    """'own' or 'reference'."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        stats = answer_stats(samples, ctx, self.answer, self.name)
        return _per_token_mean([_asked(s.entropy, "entropy", self.name) for s in stats])


@dataclass
class EL2N:
    """EL2N: mean over answer tokens of ‖p_t − onehot(y_t)‖₂, the error-vector norm of Paul et al.
    (2021), with y the reference answer's tokens."""

    name: ClassVar[str] = "el2n"
    answer: str = "reference"
    """'reference' (the standard definition) or 'own'."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        stats = answer_stats(samples, ctx, self.answer, self.name)
        # ‖p − e_y‖² = Σ p² − 2 p_y + 1
        sum_sq = [_asked(s.sum_sq, "sum of squares", self.name) for s in stats]
        norms = [np.sqrt(np.clip(q - 2 * np.exp(s.logprobs) + 1, 0, None)) for q, s in zip(sum_sq, stats, strict=True)]
        return _per_token_mean(norms)
