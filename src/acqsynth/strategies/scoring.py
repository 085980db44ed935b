"""Scoring and selecting by acquisition, the step `active` (seeds), `rejection` (candidates) and
`filtered` (pool samples) share: the current student scores the samples with an acquisition
function and a selection rule (`acqsynth.selection`) keeps some of them (arXiv 2512.00884; the
default criterion, the student's loss on its own answer, was the best in that paper)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np

from acqsynth.acquisition import ScoringContext, column_name, parse_acquisition
from acqsynth.acquisition.scoring import score_samples
from acqsynth.samples import SAMPLE_COLUMNS, Sample, to_dataset
from acqsynth.selection import METHODS, SelectionConfig, select
from acqsynth.strategies.base import RoundContext

EMBEDDING_METHODS = ("diverse", "kmeans++", "k-center")
"""Selection methods that pick by the samples' embeddings as well as their scores."""
NOT_IN_A_ROUND = {
    "threshold": "it keeps every sample scoring above a bound, however many that is, while a round "
                 "takes exactly its share of budget.samples",
    "stratified": "it needs a stratum for every sample, and run samples carry none",
}
"""Selection methods a round cannot apply, and why (use them from `acqsynth.selection` directly)."""
ROUND_METHODS = tuple(m for m in METHODS if m not in NOT_IN_A_ROUND)
"""Selection methods a round applies: they need only scores, k, a seed and embeddings."""


def score_and_select(
    samples: Sequence[Sample],
    acquisition: str,
    method: str,
    k: int,
    ctx: ScoringContext,
    seed: int,
    quantile: int | None = None,
    quantiles: int = 4,
    scores: np.ndarray | Sequence[float] | None = None,
) -> tuple[list[Sample], datasets.Dataset]:
    """Score `samples` with `acquisition` and select `k` of them (all when k ≥ len(samples)) with `method`
    (`quantile`/`quantiles` for method "quantile"). `scores`: the acquisition's values when already
    known (a score cache), so nothing is scored again.

    Returns the selected samples (in selection order) and the samples as a Dataset with a score
    column, a `selected` flag and the selection rank (-1 when not selected).
    """
    k = min(k, len(samples))
    acq = parse_acquisition(acquisition)
    col = column_name(acq)
    if scores is None:
        values = score_samples(list(samples), [acq], ctx)[0][col]
    else:
        values = np.asarray(scores, dtype=np.float64)
        if values.shape != (len(samples),):
            raise ValueError(f"{len(values)} cached scores for {len(samples)} samples")
    embeddings = None
    if method in EMBEDDING_METHODS:
        embeddings = ctx.embed([s.question for s in samples], by=f"selection {method}")
    config = SelectionConfig(method=method, k=k, seed=seed, quantile=quantile, quantiles=quantiles)
    chosen = select(config, values, embeddings=embeddings, ids=[s.id for s in samples])
    rank = np.full(len(samples), -1, dtype=np.int64)
    rank[chosen] = np.arange(len(chosen))
    table = to_dataset(samples).add_column(col, values.tolist(), feature=datasets.Value("float64"))
    table = table.add_column("selected", (rank >= 0).tolist()).add_column("selection_rank", rank.tolist())
    return [samples[i] for i in chosen], table


def score_column(table: datasets.Dataset) -> str | None:
    """The acquisition-score column of a table `score_and_select` wrote (the one column that is not a
    Sample field or the selection flags), or None when there is not exactly one."""
    cols = [c for c in table.column_names if c not in SAMPLE_COLUMNS and c not in ("selected", "selection_rank")]
    return cols[0] if len(cols) == 1 else None


def student_context(student: Any, task: Any, embedder: Any, reference: Sequence[str], seed: int,
                    max_new_tokens: int, temperature: float) -> ScoringContext:
    """A scoring context for the current student; its own answers are short samples (arithmetic needs
    a few tokens, the 512 of AcquisitionSynthesis would dominate the round's time)."""
    ctx = ScoringContext(student=student, task=task, embedder=embedder, reference=list(reference), seed=seed)
    ctx.answer_params.max_new_tokens = max_new_tokens
    ctx.answer_params.temperature = temperature
    return ctx


def select_in_round(ctx: RoundContext, samples: Sequence[Sample], reference: Sequence[str],
                    scores: Sequence[float] | None = None) -> tuple[list[Sample], datasets.Dataset]:
    """`score_and_select` with the run's `selection` settings and seeds: `ctx.n` of `samples` as the
    round's student values them (`reference`: the questions proximity and diversity measure against)."""
    sel = ctx.config.selection
    scoring = student_context(ctx.student, ctx.task, ctx.embedder, reference, ctx.generation_seed,
                              sel.answer_max_new_tokens, sel.answer_temperature)
    return score_and_select(samples, sel.acquisition, sel.method, ctx.n, scoring, ctx.selection_seed,
                            sel.quantile, sel.quantiles, scores)
