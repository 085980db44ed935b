"""Accuracy of a student on a task: generate-and-grade for every task, option log-likelihood for MCQ."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm

from acqsynth.evaluation.stats import Estimate, bootstrap_mean
from acqsynth.models.generator import GenerationParams, Generator
from acqsynth.models.student import Student
from acqsynth.samples import Sample, iter_samples
from acqsynth.tasks.base import Task, Verdict

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass
class EvalConfig:
    """How to evaluate a student."""

    max_new_tokens: int = 256
    """Generation budget per answer; answers cut off before their final answer are graded as they are."""
    temperature: float = 0.0
    """0 = greedy decoding (the default: deterministic and comparable across runs)."""
    batch_size: int = 8
    """Prompts generated together."""
    seed: int = 0
    """Seed for sampling (temperature > 0) and for the bootstrap interval."""
    loglik: bool = True
    """For multiple choice, also score each option letter by log-likelihood and report that accuracy."""


@dataclass
class EvalSummary:
    """What `evaluate` measured."""

    task: str
    n: int
    accuracy: Estimate
    wall_s: float
    rows_per_s: float
    loglik_accuracy: Estimate | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    student: Student,
    generator: Generator,
    task: Task,
    data: datasets.Dataset,
    config: EvalConfig | None = None,
    progress: bool = True,
) -> tuple[datasets.Dataset, EvalSummary]:
    """Grade the student's answers on every row; return the rows with verdict columns and a summary."""
    config = config or EvalConfig()
    if len(data) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    samples = list(iter_samples(data))
    start = time.perf_counter()
    params = GenerationParams(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, n=1, seed=config.seed
    )
    predictions: list[str] = []
    bar = tqdm(total=len(samples), desc=f"eval {task.name}", unit="row", disable=not progress)
    for i in range(0, len(samples), config.batch_size):
        chunk = samples[i : i + config.batch_size]
        outs = generator.generate([task.prompt(s) for s in chunk], params)
        predictions.extend(o[0].text for o in outs)
        bar.update(len(chunk))
    bar.close()
    verdicts = grade_all(task, predictions, samples)
    correct = np.array([v.correct for v in verdicts], dtype=np.float64)
    out = (
        data.add_column("prediction", predictions)
        .add_column("extracted", [v.extracted for v in verdicts])
        .add_column("correct", [bool(v.correct) for v in verdicts])
        .add_column("reason", [v.reason for v in verdicts])
    )
    loglik_est = None
    if config.loglik and hasattr(task, "option_continuations") and all(s.choices for s in samples):
        picks = option_loglik_predictions(student, task, samples)
        from acqsynth.tasks.mcqa import gold_letter

        hits = np.array([p == gold_letter(s) for p, s in zip(picks, samples, strict=True)], dtype=np.float64)
        out = out.add_column("loglik_prediction", picks).add_column("loglik_correct", hits.astype(bool).tolist())
        loglik_est = bootstrap_mean(hits, seed=config.seed)
    wall = time.perf_counter() - start
    reasons: dict[str, int] = {}
    for v in verdicts:
        key = v.reason.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    summary = EvalSummary(
        task=task.name,
        n=len(samples),
        accuracy=bootstrap_mean(correct, seed=config.seed),
        wall_s=wall,
        rows_per_s=len(samples) / wall,
        loglik_accuracy=loglik_est,
        reasons=reasons,
    )
    return out, summary


def grade_all(task: Task, predictions: list[str], samples: list[Sample]) -> list[Verdict]:
    """Grade predictions in order, concurrently where the task can (code candidates run in parallel sandboxes)."""
    if hasattr(task, "grade_many"):
        return task.grade_many(predictions, samples)
    return [task.grade(p, s) for p, s in zip(predictions, samples, strict=True)]


def option_loglik_predictions(student: Student, task: Any, samples: list[Sample]) -> list[str]:
    """For each MCQ sample, the letter whose continuation (" A", " B", ...) is most likely.

    The context is the student's own chat-formatted prompt followed by "Answer:" (the start of the
    task's target), so the student is scored in the format it is asked and trained to answer in.
    """
    prefixes, conts, owners = [], [], []
    for i, s in enumerate(samples):
        _, options = task.option_continuations(s)
        prefix = student.format_prompt(task.prompt(s)) + "Answer:"
        for opt in options:
            prefixes.append(prefix)
            conts.append(opt)
            owners.append(i)
    scores = student.score_texts(prefixes, conts)
    best: dict[int, tuple[float, int]] = {}
    seen: dict[int, int] = {}
    for owner, sc in zip(owners, scores, strict=True):
        k = seen.get(owner, 0)
        seen[owner] = k + 1
        total = float(sc.logprobs.sum())
        if owner not in best or total > best[owner][0]:
            best[owner] = (total, k)
    return [LETTERS[best[i][1]] for i in range(len(samples))]
