"""`acqsynth eval` as a library call: a student's accuracy on rows of a dataset, written beside a summary."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from acqsynth.data.request import DataRequest
from acqsynth.errors import AcqsynthError
from acqsynth.evaluation.accuracy import EvalConfig, evaluate
from acqsynth.generation.setup import builtin_task_name
from acqsynth.models.hf_generator import HFGenerator
from acqsynth.models.loader import load_student
from acqsynth.samples import write_samples
from acqsynth.tasks import get_task


@dataclass
class EvalJob:
    """What `acqsynth eval` evaluates, on which rows, and where the per-row results go."""

    data: DataRequest
    """The rows evaluated."""
    student: str = "smollm2-135m-instruct"
    """Alias, checkpoint dir, .gguf or hub id."""
    output: str | None = None
    """Per-row results file (.jsonl or .parquet); a .summary.json is written beside it (None =
    runs/eval/STUDENT_DATA_SPLIT_nN_sSEED.jsonl)."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """How the student is evaluated."""


def run_eval(job: EvalJob) -> dict[str, Any]:
    """Evaluate the student on the job's rows; write per-row results and a summary JSON; return the summary."""
    req, config = job.data, job.eval
    ds = req.load()
    task_obj = get_task(req.task or builtin_task_name(req.name, option="--task"))
    ds = req.head(ds)
    if len(ds) == 0:  # before the student is loaded: nothing to evaluate is the user's to fix
        raise AcqsynthError(f"dataset {req.name!r} has no rows to evaluate in its {req.split!r} split"
                            + (f" (asked for -n {req.n})" if req.n is not None else ""))
    out_path = Path(job.output) if job.output else Path("runs") / "eval" / (
        f"{slug(job.student)}_{slug(req.name)}_{req.split}_n{len(ds)}_s{config.seed}.jsonl")
    stu = load_student(job.student, batch_size=config.batch_size)
    gen = HFGenerator((stu.model, stu.tokenizer), batch_size=config.batch_size)
    rows, summary = evaluate(stu, gen, task_obj, ds, config)
    write_samples(rows, out_path)
    result = {"student": job.student, "data": req.name, "split": req.split, "seed": config.seed,
              "output": str(out_path), **summary.to_dict()}
    out_path.with_suffix(".summary.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def slug(text: str) -> str:
    """`text` (a model or dataset spec) as a file-name part: its last path part, odd characters as `-`."""
    return "".join(ch if ch.isalnum() or ch in "-._" else "-" for ch in Path(text).name or text)
