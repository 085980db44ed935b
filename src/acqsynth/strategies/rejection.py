"""Rejection sampling (AcquisitionSynthesis' no-RL variant): generate `oversample` × N candidates
from the untrained generator, score them with an acquisition function on the frozen student, and keep
the best N (top-k, or diverse top-k). Every candidate counts against the generation budget."""

from __future__ import annotations

from collections.abc import Sequence

import datasets

from acqsynth.acquisition import ScoringContext
from acqsynth.samples import Sample
from acqsynth.strategies.active import score_and_select


def select_candidates(candidates: Sequence[Sample], n: int, acquisition: str, method: str, ctx: ScoringContext,
                      seed: int) -> tuple[list[Sample], datasets.Dataset]:
    """The `n` candidates the student values most (all when there are no more than `n`), and the
    scored candidate table."""
    chosen, table = score_and_select(candidates, acquisition, method, min(n, len(candidates)), ctx, seed)
    return [candidates[i] for i in chosen], table
