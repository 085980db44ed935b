"""The forgetting suite: general-knowledge multiple choice the student is never trained on, scored
before and after training so a method that teaches one skill by eroding others shows it.

The mix is fixed so numbers are comparable across runs: the first `n` rows of the evaluation split
of each source in `FORGETTING_SOURCES` (three MMLU subjects far from arithmetic and grade-school
math, ARC-Easy, ARC-Challenge and SciQ). Each item is scored by option log-likelihood (the letter
the student finds most likely after "Answer:"), which is deterministic and needs no generation, so
it costs one forward pass per option.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import datasets
import numpy as np

from acqsynth.evaluation.stats import Estimate, bootstrap_mean
from acqsynth.samples import Sample, iter_samples, to_dataset

FORGETTING_SOURCES = (
    "mmlu:high_school_biology",
    "mmlu:high_school_geography",
    "mmlu:us_foreign_policy",
    "arc-easy",
    "arc-challenge",
    "sciq",
)
"""Built-in multiple-choice datasets of the suite; none is a training source of any built-in task."""


def forgetting_suite(n_per_source: int, sources: Sequence[str] = FORGETTING_SOURCES) -> list[Sample]:
    """The first `n_per_source` evaluation rows of every source (fewer if a source has fewer)."""
    from acqsynth.data import load_data

    if n_per_source < 1:
        raise ValueError(f"the forgetting suite needs n_per_source >= 1, got {n_per_source}")
    out: list[Sample] = []
    for name in sources:
        data = load_data(name, split="eval")
        out += list(iter_samples(data.select(range(min(n_per_source, len(data))))))
    return out


def evaluate_forgetting(student: Any, suite: Sequence[Sample], seed: int = 0) -> tuple[datasets.Dataset, Estimate]:
    """Option log-likelihood accuracy of `student` on `suite`: the rows with `prediction` and
    `correct` columns, and the accuracy with a bootstrap interval over items."""
    from acqsynth.evaluation.accuracy import option_loglik_predictions
    from acqsynth.tasks import get_task
    from acqsynth.tasks.mcqa import gold_letter

    if not suite:
        raise ValueError("the forgetting suite is empty")
    task = get_task("mcqa")
    picks = option_loglik_predictions(student, task, list(suite))
    hits = np.array([p == gold_letter(s) for p, s in zip(picks, suite, strict=True)], dtype=np.float64)
    rows = to_dataset(list(suite)).add_column("prediction", picks).add_column("correct", hits.astype(bool).tolist())
    return rows, bootstrap_mean(hits, seed=seed)
