"""The active loop's selection step (arXiv 2512.00884): the current student answers every seed
question, an acquisition function scores the seeds, and a selection rule picks the ones the
generator should write new samples from. The default criterion, the student's loss on its own
answer, was the best in that paper."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np

from acqsynth.acquisition import ScoringContext, column_name, parse_acquisition
from acqsynth.acquisition.scoring import score_samples
from acqsynth.samples import Sample, to_dataset
from acqsynth.selection import SelectionConfig, select


def score_and_select(
    samples: Sequence[Sample],
    acquisition: str,
    method: str,
    k: int,
    ctx: ScoringContext,
    seed: int,
    quantile: int | None = None,
    quantiles: int = 4,
    scores: np.ndarray | None = None,
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
    if method in ("diverse", "kmeans++", "k-center"):
        embeddings = ctx.embed([s.question for s in samples], by=f"selection {method}")
    chosen = select(SelectionConfig(method=method, k=k, seed=seed, quantile=quantile, quantiles=quantiles), values,
                    embeddings=embeddings,
                    ids=[s.id for s in samples])
    rank = np.full(len(samples), -1, dtype=np.int64)
    rank[chosen] = np.arange(len(chosen))
    table = to_dataset(samples).add_column(col, values.tolist(), feature=datasets.Value("float64"))
    table = table.add_column("selected", (rank >= 0).tolist()).add_column("selection_rank", rank.tolist())
    return [samples[i] for i in chosen], table


def score_column(table: datasets.Dataset) -> str | None:
    """The acquisition-score column of a table `score_and_select` wrote (the one column that is not a
    Sample field or the selection flags), or None when there is not exactly one."""
    from acqsynth.samples import SAMPLE_COLUMNS

    cols = [c for c in table.column_names if c not in SAMPLE_COLUMNS and c not in ("selected", "selection_rank")]
    return cols[0] if len(cols) == 1 else None


select_seeds = score_and_select
"""The active loop's step: the seeds the current student's acquisition scores pick, and the scored seed table."""


def student_context(student: Any, task: Any, embedder: Any, reference: Sequence[str], seed: int,
                    max_new_tokens: int, temperature: float) -> ScoringContext:
    """A scoring context for the current student; its own answers are short samples (arithmetic needs
    a few tokens, the 512 of AcquisitionSynthesis would dominate the round's time)."""
    ctx = ScoringContext(student=student, task=task, embedder=embedder, reference=list(reference), seed=seed)
    ctx.answer_params.max_new_tokens = max_new_tokens
    ctx.answer_params.temperature = temperature
    return ctx
