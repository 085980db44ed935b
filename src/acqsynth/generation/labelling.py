"""Labelling generated samples: keep the generator's answer, relabel by self-consistency, or execute.

- `keep`: the generator's own answer is the label (agreement unknown).
- `self-consistency`: an answer model samples k answers to the question; they are grouped (exact
  match of the task's extracted answer for math and multiple choice, embedding clustering with a
  cosine threshold for free text); the label is the medoid of the largest group and the group's
  share of the k answers is recorded as `label_agreement`. Below `min_agreement` a sample is dropped.
- `execution` (code): the generated tests are run against the generated solution in the sandbox;
  only passing pairs are kept.
- `compute` (arithmetic): the question must hold exactly one arithmetic expression (numbers,
  + - * /, parentheses); its exact value (rational arithmetic, no `eval`) is the label. The
  generator's reasoning is kept only when its answer was right, so a wrong derivation is not taught.

Every decision is written into the sample's metadata, so a user can audit a label later.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np

from acqsynth.errors import AcqsynthError, check_range
from acqsynth.models.interfaces import Completion, Embedder, GenerationParams, Generator
from acqsynth.samples import Sample
from acqsynth.tasks.base import Task, task_kind

LABEL_METHODS = ("keep", "self-consistency", "execution", "compute")
_FINAL_LINE = re.compile(r"\n?[^\n]*####[^\n]*\s*$")


@dataclass
class LabelConfig:
    """How generated samples get their answers."""

    method: str = "keep"
    """`keep` (the generator's answer), `self-consistency` (majority of an answer model's k samples)
    `execution` (code: the generated tests must pass on the generated solution) or `compute`
    (arithmetic: the exact value of the one expression in the question)."""
    k: int = 8
    """Answers sampled per question for self-consistency (the paper used 16)."""
    temperature: float = 0.8
    """Sampling temperature of the answer model."""
    max_new_tokens: int = 256
    """Length limit of each sampled answer."""
    min_agreement: float = 0.5
    """Drop a sample whose largest answer group holds less than this share of the k answers."""
    grouping: str = "auto"
    """`exact` (same extracted answer), `embedding` (cosine clustering of the answers) or `auto`:
    exact for math and multiple choice, embedding for any other task."""
    cluster_threshold: float = 0.35
    """Cosine distance below which free-text answers merge into one group (embedding grouping)."""

    def __post_init__(self) -> None:
        if self.method not in LABEL_METHODS:
            raise AcqsynthError(f"label method {self.method!r} is unknown; choose one of {', '.join(LABEL_METHODS)}")
        if self.k < 1:
            raise AcqsynthError(f"label k must be >= 1, got {self.k}")
        if not 0.0 <= self.min_agreement <= 1.0:
            raise AcqsynthError(f"min_agreement must be in [0, 1], got {self.min_agreement}")
        if self.grouping not in ("auto", "exact", "embedding"):
            raise AcqsynthError(f"grouping {self.grouping!r} is unknown; choose auto, exact or embedding")
        check_range("temperature", self.temperature, 0)
        check_range("max_new_tokens", self.max_new_tokens, 1)
        check_range("cluster_threshold", self.cluster_threshold, 0, 2)

    def params(self, seed: int) -> GenerationParams:
        """Sampling parameters of the answer model."""
        return GenerationParams(
            max_new_tokens=self.max_new_tokens, temperature=self.temperature, n=self.k, seed=seed
        )

    def worst_tokens(self) -> int:
        """Most completion tokens labelling one sample may cost."""
        return self.k * self.max_new_tokens if self.method == "self-consistency" else 0


@dataclass
class Labelled:
    """A labelled sample, or why it was dropped."""

    sample: Sample | None
    """The sample with its final answer and labelling metadata (None when dropped)."""
    reason: str | None
    """Why it was dropped (None when kept)."""


def group_key(answer: str | None) -> str | None:
    """The grouping key of an extracted answer: numbers by value ("7", "7.0", "07" are one group)."""
    if answer is None:
        return None
    try:
        value = float(answer)
    except ValueError:
        return answer
    if not math.isfinite(value):
        return answer
    return str(int(value)) if value.is_integer() else repr(value)


def majority_group(keys: Sequence[str | None]) -> list[int]:
    """Positions of the largest group of equal non-None keys (ties: the group seen first)."""
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        if k is not None:
            groups.setdefault(k, []).append(i)
    return max(groups.values(), key=len, default=[])


def embedding_group(texts: Sequence[str], embedder: Embedder, threshold: float) -> tuple[list[int], int]:
    """The largest cluster of `texts` (agglomerative, cosine) and its medoid (the member with the
    highest mean similarity to the others)."""
    from acqsynth.acquisition.variance import cluster_labels  # the acquisition package imports torch

    emb = embedder.encode(list(texts))
    labels = cluster_labels(emb, threshold)
    sizes = np.bincount(labels)
    members = [int(i) for i in np.flatnonzero(labels == int(np.argmax(sizes)))]
    sub = emb[members] @ emb[members].T
    return members, members[int(np.argmax(sub.mean(axis=1)))]


def _grouping(cfg: LabelConfig, task: Task) -> str:
    if cfg.grouping != "auto":
        return cfg.grouping
    return "exact" if task_kind(task) in ("math", "mcqa") else "embedding"


def _strip_final_answer(text: str) -> str:
    """A worked solution without its `#### answer` line (the task's target adds it back)."""
    return _FINAL_LINE.sub("", text).strip()


def label_one(
    sample: Sample,
    answers: Sequence[Completion],
    task: Task,
    cfg: LabelConfig,
    embedder: Embedder | None = None,
) -> Labelled:
    """Self-consistency label of one sample from the answer model's k completions."""
    texts = [c.text for c in answers]
    # a completion cut off by the length limit never reached its final answer (the math extractor
    # would fall back to whatever number came last), so it votes for nothing
    extracted = [
        task.extract(t, sample) if c.finish_reason == "stop" else None for t, c in zip(texts, answers, strict=True)
    ]
    if _grouping(cfg, task) == "exact":
        members = majority_group([group_key(e) for e in extracted])
        medoid = members[0] if members else None
    else:
        if embedder is None:
            raise AcqsynthError("embedding grouping of free-text answers needs an embedder")
        usable = [i for i, e in enumerate(extracted) if e is not None]
        if usable:
            sub, med = embedding_group([str(extracted[i]) for i in usable], embedder, cfg.cluster_threshold)
            members, medoid = [usable[i] for i in sub], usable[med]
        else:
            members, medoid = [], None
    agreement = len(members) / len(answers) if answers else 0.0
    meta: dict[str, Any] = {
        **sample.metadata,
        "label_method": "self-consistency",
        "label_k": len(answers),
        "label_agreement": round(agreement, 4),
        "generator_answer": sample.answer,
    }
    if medoid is None:
        return Labelled(None, f"self-consistency: no answer could be extracted from {len(answers)} samples")
    label = str(extracted[medoid])
    agrees = task.grade(texts[medoid], sample).correct
    meta["generator_agrees"] = bool(agrees)
    meta["label"] = label
    if agreement < cfg.min_agreement:
        return Labelled(None, f"self-consistency: agreement {agreement:.2f} < {cfg.min_agreement:.2f}")
    reasoning = sample.reasoning if agrees else _strip_final_answer(texts[medoid])
    answer = sample.answer if agrees else label
    return Labelled(replace(sample, answer=answer, reasoning=reasoning or sample.reasoning, metadata=meta), None)


def label_self_consistency(
    samples: Sequence[Sample],
    seed_index: Sequence[int],
    task: Task,
    answer_model: Generator,
    cfg: LabelConfig,
    seed: int = 0,
    embedder: Embedder | None = None,
) -> tuple[list[Labelled], list[list[Completion]]]:
    """Label every sample by the answer model's self-consistency; also return the raw completions.

    `seed_index[i]` numbers sample i's request, so its k answers do not depend on batching."""
    if not samples:
        return [], []
    prompts = [task.prompt(s) for s in samples]
    answers = answer_model.generate(prompts, cfg.params(seed), seed_index=list(seed_index))
    return [label_one(s, a, task, cfg, embedder) for s, a in zip(samples, answers, strict=True)], answers


def has_test(tests: str) -> bool:
    """Whether test code asserts anything (`assert ...` or a `check(...)` call)."""
    return re.search(r"^\s*(assert\b|check\s*\()", tests, re.MULTILINE) is not None


def label_execution(samples: Sequence[Sample], task: Task, max_workers: int = 2) -> list[Labelled]:
    """Keep a code sample only if its generated tests pass on its generated solution (in the sandbox)."""
    out: list[Labelled | None] = [None] * len(samples)
    todo = []
    for i, s in enumerate(samples):
        if not has_test(s.tests or ""):
            out[i] = Labelled(None, "execution: the tests assert nothing")
        else:
            todo.append(i)
    grade_many = getattr(task, "grade_many", None)
    preds = [samples[i].answer for i in todo]
    subset = [samples[i] for i in todo]
    verdicts = grade_many(preds, subset, max_workers=max_workers) if grade_many else [
        task.grade(p, s) for p, s in zip(preds, subset, strict=True)
    ]
    for i, v in zip(todo, verdicts, strict=True):
        s = samples[i]
        if v.correct:
            meta = {**s.metadata, "label_method": "execution", "label_agreement": 1.0}
            out[i] = Labelled(replace(s, metadata=meta), None)
        else:
            out[i] = Labelled(None, f"execution: generated solution fails its own tests ({v.reason[:120]})")
    return [o for o in out if o is not None]


def label_keep(samples: Sequence[Sample]) -> list[Labelled]:
    """The generator's answers as labels."""
    return [Labelled(replace(s, metadata={**s.metadata, "label_method": "keep"}), None) for s in samples]


_EXPRESSION = re.compile(r"(?<![\w.*/+-])[-+*/().\d\s]*\d[-+*/().\d\s]*(?![\w.])")
_OPERATOR = re.compile(r"\d\s*\)*\s*[-+*/]\s*\(*\s*-?\s*\d")
_MAX_DIGITS = 15


def find_expression(question: str) -> str | None:
    """The arithmetic expression that `question` asks for ("Calculate 3 * (4 + 5) =" → "3 * (4 + 5)").

    Strict, so that a label is never computed from part of the problem: the expression must be the
    only place the question has digits, and only "=", "?" or "." may follow it. So "Calculate 14^2 =",
    "Exercise 10: Calculate 6 * 2 =" and "What is 3 + 4 squared?" give None (no single label).
    """
    spans = [m for m in _EXPRESSION.finditer(question) if _OPERATOR.search(m.group())]
    if len(spans) != 1:
        return None
    m = spans[0]
    before, after = question[: m.start()], question[m.end() :]
    if re.search(r"\d", before + after) or not re.fullmatch(r"\s*=?\s*[?.]?\s*", after):
        return None
    return m.group().strip()


def _value(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        if len(str(node.value).replace(".", "")) > _MAX_DIGITS:
            raise ValueError("a number has too many digits")
        return Fraction(str(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
        a, b = _value(node.left), _value(node.right)
        if isinstance(node.op, ast.Add):
            return a + b
        if isinstance(node.op, ast.Sub):
            return a - b
        if isinstance(node.op, ast.Mult):
            return a * b
        if b == 0:
            raise ZeroDivisionError("division by zero")
        return a / b
    raise ValueError(f"{type(node).__name__} is not allowed")


def decimal_text(value: Fraction) -> str | None:
    """`value` as an exact decimal ("12", "-0.25"), or None when it has no finite decimal form (1/3)."""
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return None
    if value.denominator == 1:
        return str(value.numerator)
    places = 0
    while (value * 10**places).denominator != 1:
        places += 1
    scaled = value * 10**places
    sign, digits = ("-" if scaled < 0 else ""), str(abs(scaled.numerator)).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def evaluate_expression(expression: str) -> Fraction:
    """The exact value of an arithmetic expression; ValueError / ZeroDivisionError if it has none."""
    if len(expression) > 200:
        raise ValueError("the expression is longer than 200 characters")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:
        raise ValueError("the expression does not parse") from None
    return _value(tree.body)


def label_compute(samples: Sequence[Sample], task: Task) -> list[Labelled]:
    """Label each sample with the exact value of the single arithmetic expression in its question."""
    out = []
    for s in samples:
        expression = find_expression(s.question)
        if expression is None:
            out.append(Labelled(None, "compute: the question is not one arithmetic expression"))
            continue
        try:
            value = evaluate_expression(expression)
        except (ValueError, ZeroDivisionError) as e:
            out.append(Labelled(None, f"compute: the expression has no value ({e}: {expression!r})"))
            continue
        label = decimal_text(value)
        if label is None:
            out.append(Labelled(None, f"compute: the value has no finite decimal form ({expression} = {value})"))
            continue
        got = task.extract(s.answer, s) if s.answer else None
        agrees = got is not None and group_key(got) == group_key(label)
        meta = {**s.metadata, "label_method": "compute", "label_agreement": 1.0, "generator_answer": s.answer,
                "generator_agrees": agrees, "expression": expression}
        out.append(Labelled(replace(s, answer=label, reasoning=s.reasoning if agrees else None, metadata=meta), None))
    return out
