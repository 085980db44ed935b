"""Scoring and selecting by acquisition, the step `active` (seeds), `rejection` (candidates) and
`filtered` (pool samples) share: the current student scores the samples with an acquisition
function and a selection rule (`acqsynth.selection`) keeps some of them (arXiv 2512.00884; the
default criterion, the student's loss on its own answer, was the best in that paper)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import datasets
import numpy as np

from acqsynth.acquisition import ScoringContext, column_name, parse_acquisition
from acqsynth.acquisition.scoring import score_samples
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.samples import SAMPLE_COLUMNS, Sample, iter_samples, to_dataset
from acqsynth.selection import METHODS, SelectionConfig, select
from acqsynth.strategies.base import RoundContext

if TYPE_CHECKING:  # strategies never import acqsynth.run at run time (run.config imports them)
    from acqsynth.run.config import RunConfig

EMBEDDING_METHODS = ("diverse", "kmeans++", "k-center")
"""Selection methods that pick by the samples' embeddings as well as their scores."""
NOT_IN_A_ROUND = {
    "threshold": "it keeps every sample scoring above a bound, however many that is, while a round "
                 "takes exactly its share of budget.samples",
}
"""Selection methods a round cannot apply, and why (use them from `acqsynth.selection` directly)."""
ROUND_METHODS = tuple(m for m in METHODS if m not in NOT_IN_A_ROUND)
"""Selection methods a round applies: they need only scores, k, a seed and embeddings ("stratified" also
`selection.strata`, a metadata key, and takes the evaluated items' mix of it)."""


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
    strata: Sequence[Hashable] | None = None,
    proportions: Mapping[Hashable, int] | None = None,
    diverse_pool: int | None = None,
) -> tuple[list[Sample], datasets.Dataset]:
    """Score `samples` with `acquisition` and select `k` of them (all when k ≥ len(samples)) with `method`
    (`quantile`/`quantiles` for method "quantile"; `strata`, one per sample, and `proportions` for
    "stratified"; `diverse_pool` × k top-scoring samples for "diverse" to pick from, None = 4 × k).
    `scores`: the acquisition's values when already known (a score cache), so nothing is scored again.

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
    pool = None if diverse_pool is None or method != "diverse" else min(len(samples), diverse_pool * k)
    config = SelectionConfig(method=method, k=k, seed=seed, quantile=quantile, quantiles=quantiles, pool=pool)
    chosen = select(config, values, embeddings=embeddings, strata=strata, ids=[s.id for s in samples],
                    proportions=proportions)
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


def strata_of(samples: Sequence[Sample], key: str, what: str) -> list[Hashable]:
    """Each sample's value of metadata `key` (the strata of `selection.strata`); an error naming the
    samples (`what`: which ones, in words) that lack it or hold a value that cannot be a stratum."""
    missing = [s.id for s in samples if key not in s.metadata]
    if missing:
        raise AcqsynthError(f"selection.strata {key!r}: {len(missing)} of {len(samples)} {what} have no metadata "
                            f"key {key!r} (e.g. {', '.join(missing[:3])})")
    values = [s.metadata[key] for s in samples]
    bad = [s.id for s, v in zip(samples, values, strict=True) if isinstance(v, (dict, list))]
    if bad:
        raise AcqsynthError(f"selection.strata {key!r}: the values of {len(bad)} {what} are not plain values "
                            f"(e.g. {', '.join(bad[:3])})")
    return values


def eval_mix(config: RunConfig, key: str) -> dict[Hashable, int]:
    """How many of the run's evaluated items (the first `data.eval_n` of `data.eval_split`) have each
    value of metadata `key`, in order of first appearance: the proportions of "stratified"."""
    d = config.data
    ev = load_data(d.name, split=d.eval_split, task=d.task)
    items = list(iter_samples(ev.select(range(min(d.eval_n, len(ev))))))
    return dict(Counter(strata_of(items, key, f"evaluated items ({d.eval_split} split of {d.name})")))


def select_in_round(ctx: RoundContext, samples: Sequence[Sample], reference: Sequence[str],
                    scores: Sequence[float] | None = None) -> tuple[list[Sample], datasets.Dataset]:
    """`score_and_select` with the run's `selection` settings and seeds: `ctx.n` of `samples` as the
    round's student values them (`reference`: the questions proximity and diversity measure against).
    Method "stratified" splits `ctx.n` over the values of `selection.strata` in the evaluated items' mix."""
    sel = ctx.config.selection
    scoring = student_context(ctx.student, ctx.task, ctx.embedder, reference, ctx.generation_seed,
                              sel.answer_max_new_tokens, sel.answer_temperature)
    strata = proportions = None
    if sel.method == "stratified" and sel.strata:
        strata = strata_of(samples, sel.strata, "candidates")
        proportions = eval_mix(ctx.config, sel.strata)
        mix = ", ".join(f"{v}: {n}" for v, n in proportions.items())
        ctx.log(f"stratified by {sel.strata!r} in the evaluated items' mix ({mix})")
    return score_and_select(samples, sel.acquisition, sel.method, ctx.n, scoring, ctx.selection_seed,
                            sel.quantile, sel.quantiles, scores, strata=strata, proportions=proportions,
                            diverse_pool=sel.diverse_pool)
