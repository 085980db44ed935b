"""Score a Dataset of samples with several acquisition functions and write the scores back as columns."""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm

from acqsynth.acquisition import Combination, column_name, normalize, params_of
from acqsynth.acquisition.base import ScoringContext
from acqsynth.errors import AcqsynthError
from acqsynth.samples import SAMPLE_COLUMNS, Sample, iter_samples

SAMPLED_K = ("answer-variance", "semantic-entropy")
"""Functions that draw `k` answers from the student per question."""


def answers_needed(acq: Any) -> int:
    """How many sampled student answers per question an acquisition function reads (0 if none)."""
    if isinstance(acq, Combination):
        return max((answers_needed(a) for _, a in acq.terms), default=0)
    if getattr(acq, "name", None) in SAMPLED_K:
        return int(acq.k)
    return 1 if getattr(acq, "answer", None) == "own" else 0


@dataclass
class ScoreReport:
    """What scoring one function over a dataset took and found."""

    column: str
    """Column the scores were written to."""
    params: dict[str, Any]
    """All parameters of the function."""
    seconds: float = 0.0
    """Wall time spent in this function (shared work is charged to the first function that needs it)."""
    nonfinite: list[str] = field(default_factory=list)
    """Ids of samples whose score is NaN or infinite."""
    samples: int = 0
    """Number of samples scored."""

    @property
    def samples_per_s(self) -> float:
        """Throughput of this function alone."""
        return self.samples / self.seconds if self.seconds > 0 else float("inf")


def score_samples(
    samples: Sequence[Sample],
    acquisitions: Sequence[Any],
    ctx: ScoringContext,
    chunk_size: int = 64,
    progress: bool = False,
) -> tuple[dict[str, np.ndarray], list[ScoreReport]]:
    """Scores of every sample under every function, computed chunk by chunk (in order: stateful
    functions such as `diversity-archive` see the samples in this order).

    Within a chunk all functions run back to back, so the student's sampled answers and forward-pass
    statistics are computed once and shared. Non-finite scores are kept, counted and warned about.
    """
    columns = [column_name(a) for a in acquisitions]
    twice = sorted({c for c in columns if columns.count(c) > 1})
    if twice:
        raise AcqsynthError(f"acquisition {twice[0]!r} is requested twice (columns must be distinct)")
    # A combination's terms are scored chunk by chunk and normalised once over all samples at the
    # end, so its scores do not depend on the chunk size.
    term_scores = {
        c: [np.full(len(samples), np.nan) for _ in a.terms]
        for c, a in zip(columns, acquisitions, strict=True)
        if isinstance(a, Combination)
    }
    ctx.max_answers = max([ctx.max_answers, *(answers_needed(a) for a in acquisitions)])
    scores = {c: np.full(len(samples), np.nan) for c in columns}
    reports = [ScoreReport(c, params_of(a)) for c, a in zip(columns, acquisitions, strict=True)]
    bar = tqdm(total=len(samples), unit="sample", disable=not progress, desc="scoring")
    start = time.perf_counter()
    for lo in range(0, len(samples), chunk_size):
        chunk = samples[lo : lo + chunk_size]
        for acq, col, rep in zip(acquisitions, columns, reports, strict=True):
            t0 = time.perf_counter()
            if col in term_scores:
                for (_, term), store in zip(acq.terms, term_scores[col], strict=True):
                    store[lo : lo + len(chunk)] = _checked(term.score(chunk, ctx), len(chunk), column_name(term))
            else:
                scores[col][lo : lo + len(chunk)] = _checked(acq.score(chunk, ctx), len(chunk), col)
            rep.seconds += time.perf_counter() - t0
        bar.update(len(chunk))
        bar.set_postfix(samples_per_s=f"{(lo + len(chunk)) / (time.perf_counter() - start):.2f}")
    bar.close()
    for col, parts in term_scores.items():
        combo = acquisitions[columns.index(col)]
        scores[col] = sum(
            (w * normalize(part, combo.normalize) for (w, _), part in zip(combo.terms, parts, strict=True)),
            np.zeros(len(samples)),
        )
    for rep in reports:
        rep.samples = len(samples)
        bad = ~np.isfinite(scores[rep.column])
        rep.nonfinite = [samples[int(i)].id for i in np.flatnonzero(bad)]
        if rep.nonfinite:
            shown = ", ".join(repr(i) for i in rep.nonfinite[:5])
            warnings.warn(
                f"acquisition {rep.column!r}: {len(rep.nonfinite)} of {len(samples)} scores are NaN or "
                f"infinite (e.g. {shown}); selection ranks them last",
                stacklevel=2,
            )
    return scores, reports


def _checked(values: object, n: int, col: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (n,):
        raise AcqsynthError(f"acquisition {col!r} returned shape {arr.shape} for {n} samples: expected ({n},)")
    return arr


def score_dataset(
    ds: datasets.Dataset,
    acquisitions: Sequence[Any],
    ctx: ScoringContext,
    chunk_size: int = 64,
    progress: bool = False,
) -> tuple[datasets.Dataset, list[ScoreReport]]:
    """`ds` with one float64 column per acquisition function (named by `column_name`), plus reports.

    An existing column of the same name is replaced, with a warning; a Sample field never is.
    """
    clash = [column_name(a) for a in acquisitions if column_name(a) in SAMPLE_COLUMNS]
    if clash:
        raise AcqsynthError(f"acquisition column {clash[0]!r} would overwrite the sample field of that name")
    samples = list(iter_samples(ds))
    scores, reports = score_samples(samples, acquisitions, ctx, chunk_size=chunk_size, progress=progress)
    for col, values in scores.items():
        if col in ds.column_names:
            warnings.warn(f"replacing the existing column {col!r} with new scores", stacklevel=2)
            ds = ds.remove_columns(col)
        ds = ds.add_column(col, values.tolist(), feature=datasets.Value("float64"))
    return ds, reports
