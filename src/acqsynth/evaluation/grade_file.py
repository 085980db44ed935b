"""`acqsynth grade` as a library call: grade the predictions in a file of Samples, write the verdicts."""

from __future__ import annotations

from dataclasses import dataclass

from acqsynth.errors import AcqsynthError
from acqsynth.samples import iter_samples, read_samples, write_samples
from acqsynth.tasks import get_task
from acqsynth.tasks.base import Verdict, grade_all


@dataclass
class GradeJob:
    """Which predictions `acqsynth grade` grades, by which task's rule, and where the verdicts go."""

    task: str
    """math, mcqa, code, or a task .yaml/.py file (code runs in the sandbox)."""
    input: str
    """.jsonl/.parquet of Samples with a prediction field."""
    output: str
    """Where to write the rows with extracted/correct/reason."""
    field: str = "prediction"
    """The field holding the candidate answer."""


@dataclass
class Graded:
    """What `grade_file` wrote."""

    task: str
    """The task's name."""
    verdicts: list[Verdict]
    """One per row, in order."""


def grade_file(job: GradeJob) -> Graded:
    """Grade every row's `job.field` against its reference; write the rows with extracted/correct/reason."""
    task = get_task(job.task)
    ds = read_samples(job.input)
    if job.field not in ds.column_names:
        raise AcqsynthError(f"{job.input}: no {job.field!r} field to grade (columns: {', '.join(ds.column_names)})")
    preds = ds[job.field]
    missing = [i + 1 for i, p in enumerate(preds) if p is None]
    if missing:
        raise AcqsynthError(f"{job.input}: row {missing[0]} has no {job.field!r} ({len(missing)} rows lack one)")
    verdicts = grade_all(task, [str(p) for p in preds], list(iter_samples(ds)))
    out = (
        ds.add_column("extracted", [v.extracted for v in verdicts])
        .add_column("correct", [v.correct for v in verdicts])
        .add_column("reason", [v.reason for v in verdicts])
    )
    write_samples(out, job.output)
    return Graded(task=task.name, verdicts=verdicts)
