"""The forgetting suite: general-knowledge multiple choice the student is never trained on, scored
before and after training so a method that teaches one skill by eroding others shows it.

The mix is fixed so numbers are comparable across runs: the first `n` rows of the evaluation split
of each source in `FORGETTING_SOURCES` (ARC-Easy, ARC-Challenge, SciQ, three MMLU subjects far from
arithmetic, and MMLU elementary mathematics). Each item is scored by cloze `acc_norm`
(evaluation/cloze.py): the option text the student finds most likely after "Question: ...\\nAnswer:",
per character. Letter scoring ("Answer: B") leaves a 135M student at chance, so it would measure the
student's letter preference, not its knowledge; cloze acc_norm puts the base student measurably above
chance (docs/results.md), so a loss is visible. Deterministic, no generation: one prompt pass per
question and one pass over its options.
"""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import numpy as np

from acqsynth.data import load_data
from acqsynth.evaluation.cloze import OptionScorer, chance, cloze_scores
from acqsynth.evaluation.stats import Estimate, bootstrap_mean
from acqsynth.samples import Sample, iter_samples, to_dataset
from acqsynth.tasks.mcqa import LETTERS

FORGETTING_SOURCES = (
    "arc-easy",
    "arc-challenge",
    "sciq",
    "mmlu:high_school_biology",
    "mmlu:high_school_geography",
    "mmlu:us_foreign_policy",
    "mmlu:elementary_mathematics",
)
"""Built-in multiple-choice datasets of the suite; none is a training source of any built-in task."""

DEFAULT_PER_SOURCE = 100
"""Items per source of the recommended suite: 7 sources, 636 items (three MMLU subjects have fewer)."""


def forgetting_suite(n_per_source: int = DEFAULT_PER_SOURCE, sources: Sequence[str] = FORGETTING_SOURCES) -> list[Sample]:
    """The first `n_per_source` evaluation rows of every source (fewer if a source has fewer)."""
    if n_per_source < 1:
        raise ValueError(f"the forgetting suite needs n_per_source >= 1, got {n_per_source}")
    out: list[Sample] = []
    for name in sources:
        data = load_data(name, split="eval")
        out += list(iter_samples(data.select(range(min(n_per_source, len(data))))))
    return out


def evaluate_forgetting(
    student: OptionScorer, suite: Sequence[Sample], seed: int = 0
) -> tuple[datasets.Dataset, Estimate]:
    """Cloze acc_norm of `student` on `suite`: the rows with `prediction`, `correct` and `chance`
    columns, and the accuracy with a bootstrap interval over items."""
    if not suite:
        raise ValueError("the forgetting suite is empty")
    res = cloze_scores(student, list(suite))
    hits = res.correct_norm
    rows = (
        to_dataset(list(suite))
        .add_column("prediction", [LETTERS[i] for i in res.pick_norm])
        .add_column("correct", hits.astype(bool).tolist())
        .add_column("chance", [chance([s]) for s in suite])
    )
    return rows, bootstrap_mean(np.asarray(hits), seed=seed)
