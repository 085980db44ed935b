"""`acqsynth score` as a library call: add one score column per acquisition function to a file of samples."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import datasets

from acqsynth.acquisition import ScoringContext, parse_acquisitions
from acqsynth.acquisition.base import default_answer_params
from acqsynth.acquisition.scoring import ScoreReport, score_dataset
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.models.embedder import LazyEmbedder
from acqsynth.models.loader import load_generator, load_student
from acqsynth.samples import read_samples, write_samples
from acqsynth.tasks import get_task


@dataclass
class ScoreJob:
    """Which acquisition functions score which samples, with which models, written where."""

    acquisition: str
    """NAME[,NAME…]: names with optional (key=value) parameters or weighted sums, e.g. 'loss,confidence' or
    '0.5*loss + 0.5*diversity'; FILE.py:NAME for your own."""
    input: str
    """.jsonl/.parquet of samples."""
    output: str
    """Where to write the samples with score columns (.jsonl or .parquet); a .scores.json is written beside it."""
    student: str = "smollm2-135m-instruct"
    """Alias, checkpoint dir, .gguf or hub id ("" = no student)."""
    task: str | None = None
    """Task whose prompt and reference format to use (None = the bare question)."""
    reference: str | None = None
    """Seed/target set for proximity and diversity: built-in name or file."""
    reference_split: str = "seed"
    """Split of the reference set."""
    embedder: str = "minilm-l6"
    """Sentence embedder of the embedding functions (loaded only if one needs it)."""
    judge: str | None = None
    """Judge model for llm-judge (alias, openai:URL@model, llamacpp:…)."""
    reward_model: str | None = None
    """Sequence-classification reward model for reward-model."""
    normalize: str = "minmax"
    """Normalisation of weighted-sum terms over all input samples."""
    batch_size: int = 16
    """Samples per forward/backward pass."""
    chunk_size: int = 64
    """Samples per progress step."""
    max_length: int = 1024
    """Longest prompt+answer in tokens; longer ones are cut with a warning."""
    max_new_tokens: int = 512
    """Length limit of the student's sampled answers (AcquisitionSynthesis' 512, as `default_answer_params`;
    `acqsynth run` has its own, selection.answer_max_new_tokens)."""
    temperature: float = 0.7
    """Temperature of the student's sampled answers."""
    seed: int = 0
    """Root seed for sampled answers, k-means and random scores."""


@dataclass
class Scored:
    """What `score_file` wrote: the scored samples, one report per function, the wall time."""

    path: Path
    data: datasets.Dataset
    reports: list[ScoreReport]
    seconds: float


def score_file(job: ScoreJob, progress: bool = True) -> Scored:
    """Score the job's input with each acquisition; write the scored samples and OUTPUT.scores.json."""
    acqs = parse_acquisitions(job.acquisition, normalize=job.normalize)
    out_path = Path(job.output)
    if out_path.suffix.lower() not in (".jsonl", ".json", ".parquet"):
        raise AcqsynthError(f"--output {job.output}: use a .jsonl or .parquet file name")
    if not out_path.parent.exists():
        raise AcqsynthError(f"--output {job.output}: directory {out_path.parent} does not exist")
    if job.batch_size < 1 or job.chunk_size < 1 or job.max_length < 2:
        raise AcqsynthError("--batch-size and --chunk-size must be >= 1 and --max-length >= 2")
    ds = read_samples(job.input)
    ctx = ScoringContext(seed=job.seed, embedder=LazyEmbedder(job.embedder))
    ctx.answer_params = default_answer_params()
    ctx.answer_params.max_new_tokens = job.max_new_tokens
    ctx.answer_params.temperature = job.temperature
    if job.student:
        ctx.student = load_student(job.student, batch_size=job.batch_size, max_length=job.max_length)
    if job.task:
        ctx.task = get_task(job.task)
    if job.reference:
        ref = load_data(job.reference, split=job.reference_split)
        if len(ref) == 0:
            raise AcqsynthError(f"reference set {job.reference!r} split {job.reference_split!r} is empty")
        ctx.reference = list(ref["question"])
    if job.judge:
        ctx.judge = load_generator(job.judge)
    if job.reward_model:
        ctx.reward_model = job.reward_model
    start = time.perf_counter()
    out, reports = score_dataset(ds, acqs, ctx, chunk_size=job.chunk_size, progress=progress)
    wall = time.perf_counter() - start
    path = write_samples(out, job.output)
    record = {
        "input": str(job.input),
        "student": job.student,
        "seed": job.seed,
        "samples": len(ds),
        "seconds": round(wall, 3),
        "acquisitions": [
            {"column": r.column, "params": r.params, "seconds": round(r.seconds, 3),
             "samples_per_s": round(r.samples_per_s, 3), "nonfinite": r.nonfinite}
            for r in reports
        ],
    }
    Path(f"{path}.scores.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    return Scored(path=path, data=out, reports=reports, seconds=wall)
