"""Accuracy of a student on a task: generate-and-grade for every task, option log-likelihood for MCQ."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import datasets
import numpy as np
from tqdm.auto import tqdm

from acqsynth.errors import AcqsynthError, check_range
from acqsynth.evaluation.cloze import chance, cloze_scores
from acqsynth.evaluation.stats import Estimate, bootstrap_mean, pass_at_k
from acqsynth.models.interfaces import GenerationParams, Generator, Student
from acqsynth.samples import Sample, iter_samples
from acqsynth.tasks.base import Task, grade_all
from acqsynth.tasks.mcqa import gold_letter

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MCQ_METRICS = ("auto", "generate", "letter", "acc", "acc_norm")
SMALL_STUDENT_PARAMS = 1_000_000_000
"""Under this many parameters, `mcq_metric="auto"` scores multiple choice by cloze acc_norm."""


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
    cloze: bool = True
    """For multiple choice, also score each option's text as the continuation of the prompt
    "Question: ..." then "Answer:" on the next line (lm-evaluation-harness's convention) and report
    `acc` and length-normalised `acc_norm`."""
    mcq_metric: str = "auto"
    """What `accuracy` (and the per-row `correct`) means for multiple choice: "generate" (the letter in the
    student's generated reply), "letter" (letter log-likelihood), "acc" or "acc_norm" (cloze). "auto" is
    acc_norm for students under 1B parameters (at chance on letters) and "generate" from 1B up."""
    samples: int = 1
    """Answers sampled per item. With n > 1 (and temperature > 0) accuracy is the mean pass@1 = c/n
    and `pass_k` is reported with the unbiased estimator of Chen et al. (2021)."""
    pass_k: list[int] = field(default_factory=lambda: [1])
    """The k of pass@k to report (each ≤ samples)."""

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise AcqsynthError(f"eval.samples must be >= 1, got {self.samples}")
        check_range("eval.max_new_tokens", self.max_new_tokens, 1)
        check_range("eval.temperature", self.temperature, 0)
        check_range("eval.batch_size", self.batch_size, 1)
        check_range("eval.seed", self.seed, 0, 2**32 - 1)
        if self.mcq_metric not in MCQ_METRICS:
            raise AcqsynthError(f"eval.mcq_metric must be one of {', '.join(MCQ_METRICS)}, got {self.mcq_metric!r}")
        if self.mcq_metric in ("acc", "acc_norm") and not self.cloze:
            raise AcqsynthError(f"eval.mcq_metric={self.mcq_metric} needs eval.cloze=true")
        if self.mcq_metric == "letter" and not self.loglik:
            raise AcqsynthError("eval.mcq_metric=letter needs eval.loglik=true")
        if self.samples > 1 and self.temperature <= 0:
            raise AcqsynthError("eval.samples > 1 needs eval.temperature > 0 (greedy answers would all be the same)")
        bad = [k for k in self.pass_k if not 1 <= k <= self.samples]
        if bad:
            raise AcqsynthError(f"eval.pass_k: every k must be in 1..eval.samples ({self.samples}), got {bad}")


@dataclass
class EvalSummary:
    """What `evaluate` measured."""

    task: str
    n: int
    accuracy: Estimate
    """The headline metric (named by `metric`), with a bootstrap interval over items."""
    wall_s: float
    rows_per_s: float
    loglik_accuracy: Estimate | None = None
    """Multiple choice: the letter whose log-likelihood after "Answer:" is highest."""
    metric: str = "generate"
    """What `accuracy` measures: "generate" (graded generated answers), "letter", "acc" or "acc_norm"."""
    generated_accuracy: Estimate | None = None
    """Graded generated answers (the same as `accuracy` when `metric` is "generate")."""
    cloze_acc: Estimate | None = None
    """Multiple choice, cloze: the option text with the highest sum of log-probs."""
    cloze_acc_norm: Estimate | None = None
    """Multiple choice, cloze: the highest log-prob sum per character of the option."""
    chance: float | None = None
    """Multiple choice: the accuracy of a uniform random pick (mean of 1 / options)."""
    reasons: dict[str, int] = field(default_factory=dict)
    pass_at_k: dict[str, Estimate] = field(default_factory=dict)
    """pass@k by k (as a string key, for JSON), each with a bootstrap interval over items."""

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
        raise AcqsynthError("cannot evaluate on an empty dataset (0 rows)")
    samples = list(iter_samples(data))
    start = time.perf_counter()
    n = config.samples
    params = GenerationParams(
        max_new_tokens=config.max_new_tokens, temperature=config.temperature, n=n, seed=config.seed
    )
    answers: list[list[str]] = []
    bar = tqdm(total=len(samples), desc=f"eval {task.name}", unit="row", disable=not progress)
    for i in range(0, len(samples), config.batch_size):
        chunk = samples[i : i + config.batch_size]
        outs = generator.generate([task.prompt(s) for s in chunk], params)
        answers.extend([c.text for c in o[:n]] for o in outs)
        bar.update(len(chunk))
    bar.close()
    predictions = [a[0] for a in answers]
    verdicts = grade_all(task, predictions, samples)
    correct = np.array([v.correct for v in verdicts], dtype=np.float64)
    out = (
        data.add_column("prediction", predictions)
        .add_column("extracted", [v.extracted for v in verdicts])
        .add_column("correct", [bool(v.correct) for v in verdicts])
        .add_column("reason", [v.reason for v in verdicts])
    )
    pass_k: dict[str, Estimate] = {}
    if n > 1:
        rest = grade_all(task, [a for ans in answers for a in ans[1:]], [s for s in samples for _ in range(n - 1)])
        n_correct = correct + np.array([v.correct for v in rest], dtype=np.float64).reshape(len(samples), n - 1).sum(1)
        correct = n_correct / n
        out = out.add_column("n_correct", n_correct.astype(int).tolist()).add_column("pass1", correct.tolist())
        # per-item counts in, per-item pass@k out: an array, never the scalar of a 0-d input
        pass_k = {str(k): bootstrap_mean(np.asarray(pass_at_k(n, n_correct.astype(int), k)), seed=config.seed)
                  for k in config.pass_k}
    mcq = hasattr(task, "option_continuations") and all(s.choices for s in samples)
    generated = bootstrap_mean(correct, seed=config.seed)
    metrics: dict[str, tuple[Estimate, np.ndarray]] = {"generate": (generated, correct)}
    loglik_est = cloze_acc = cloze_norm = None
    if mcq and config.loglik:
        picks = option_loglik_predictions(student, task, samples)
        hits = np.array([p == gold_letter(s) for p, s in zip(picks, samples, strict=True)], dtype=np.float64)
        out = out.add_column("loglik_prediction", picks).add_column("loglik_correct", hits.astype(bool).tolist())
        loglik_est = bootstrap_mean(hits, seed=config.seed)
        metrics["letter"] = (loglik_est, hits)
    if mcq and config.cloze:
        res = cloze_scores(student, samples, progress=progress)
        out = (
            out.add_column("cloze_prediction", [LETTERS[i] for i in res.pick])
            .add_column("cloze_correct", res.correct.astype(bool).tolist())
            .add_column("cloze_norm_prediction", [LETTERS[i] for i in res.pick_norm])
            .add_column("cloze_norm_correct", res.correct_norm.astype(bool).tolist())
            .add_column("cloze_loglik", [ll.tolist() for ll in res.loglik])
        )
        cloze_acc = bootstrap_mean(res.correct, seed=config.seed)
        cloze_norm = bootstrap_mean(res.correct_norm, seed=config.seed)
        metrics["acc"] = (cloze_acc, res.correct)
        metrics["acc_norm"] = (cloze_norm, res.correct_norm)
    metric = resolve_mcq_metric(config.mcq_metric, student) if mcq else "generate"
    if metric not in metrics:
        raise AcqsynthError(f"eval.mcq_metric={metric} was not computed (check eval.cloze / eval.loglik)")
    headline, hits = metrics[metric]
    if metric != "generate":  # `correct` is the headline metric's; the graded reply keeps its own column
        out = out.rename_column("correct", "generated_correct").add_column("correct", hits.astype(bool).tolist())
    wall = time.perf_counter() - start
    reasons: dict[str, int] = {}
    for v in verdicts:
        key = v.reason.split(":")[0]
        reasons[key] = reasons.get(key, 0) + 1
    summary = EvalSummary(
        task=task.name,
        n=len(samples),
        accuracy=headline,
        wall_s=wall,
        rows_per_s=len(samples) / wall,
        loglik_accuracy=loglik_est,
        reasons=reasons,
        pass_at_k=pass_k,
        metric=metric,
        generated_accuracy=generated,
        cloze_acc=cloze_acc,
        cloze_acc_norm=cloze_norm,
        chance=chance(samples) if mcq else None,
    )
    return out, summary


def resolve_mcq_metric(metric: str, student: Student) -> str:
    """`metric`, with "auto" resolved by the student's size (acc_norm under 1B parameters)."""
    if metric != "auto":
        return metric
    model = getattr(student, "model", None)
    if model is None:
        return "acc_norm"
    params = sum(p.numel() for p in model.parameters())
    return "acc_norm" if params < SMALL_STUDENT_PARAMS else "generate"


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
    fast = _single_token_picks(student, prefixes, conts, owners, len(samples))
    if fast is not None:
        return fast
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


def _single_token_picks(student: Student, prefixes: list[str], conts: list[str], owners: list[int],
                        n: int) -> list[str] | None:
    """When every option is one token (" A", " B", ...), one forward pass per question gives the
    next-token logits of all its options at once (instead of one pass per option); the pick is the
    option with the highest logit, which is the highest log-likelihood. None when this does not apply
    (options of several tokens, or a student without a TransformersStudent's batching methods)."""
    if not (hasattr(student, "continuation_logits") and hasattr(student, "fit")
            and hasattr(student, "length_batches") and hasattr(student, "tokenizer")):
        return None
    tok = student.tokenizer
    ids = [tok(c, add_special_tokens=False)["input_ids"] for c in conts]
    if any(len(i) != 1 for i in ids):
        return None
    first: dict[int, int] = {}
    options: dict[int, list[int]] = {}
    for k, owner in enumerate(owners):
        first.setdefault(owner, k)
        options.setdefault(owner, []).append(ids[k][0])
    pairs = [(tok(prefixes[first[i]], add_special_tokens=False)["input_ids"], [options[i][0]]) for i in range(n)]
    seqs, _ = student.fit(pairs)
    picks: list[str] = [""] * n
    for idx in student.length_batches(seqs):
        logits, _ = student.continuation_logits([seqs[i] for i in idx])
        for row, i in zip(logits, idx, strict=True):
            picks[i] = LETTERS[int(row[options[i]].argmax())]
    return picks
