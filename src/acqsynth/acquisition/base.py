"""The acquisition interface: `score(samples, ctx) -> one float per sample`, higher = more valuable.

An acquisition function is any object with a `name` and a `score` method (a dataclass whose fields
are its parameters, by convention). Everything a function may need, and everything two functions
could compute twice, lives in one `ScoringContext`: the student, the task, the embedder, the seed
set, the student's sampled answers and the per-token statistics of one forward pass. So
`confidence`, `answer-variance` and `loss` on the student's own answer share the same samples, and
`loss`, `entropy`, `el2n` and `least-confidence` share one forward pass.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import Embedder, GenerationParams, Generator, Student, TokenScores
from acqsynth.samples import Sample
from acqsynth.tasks.base import Messages, Task


@runtime_checkable
class Acquisition(Protocol):
    """One acquisition function. Parameters are dataclass fields; `name` is what configs call it."""

    name: ClassVar[str]

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        """One float64 per sample, higher = more valuable to the student; NaN where undefined."""
        ...


def default_answer_params() -> GenerationParams:
    """How the student samples its own answers: T=0.7 and 512 new tokens, as in AcquisitionSynthesis."""
    return GenerationParams(max_new_tokens=512, temperature=0.7, top_p=1.0, n=1, seed=0)


@dataclass
class ScoringContext:
    """The models, reference data and shared caches that acquisition functions draw on."""

    student: Student | None = None
    """The student (a `TransformersStudent`); needed by every function that looks at the student."""
    task: Task | None = None
    """Formats prompts and reference answers; without one the prompt is the bare question."""
    embedder: Embedder | None = None
    """Sentence embedder: proximity, diversity, answer variance, semantic entropy."""
    reference: Sequence[str] | None = None
    """Questions of the seed / target set: proximity and diversity measure against these."""
    judge: Generator | None = None
    """Judge model for `llm-judge`."""
    reward_model: Any = None
    """A sequence-classification reward model for `reward-model`: a (model, tokenizer) pair, or a path /
    hub id loaded on first use."""
    seed: int = 0
    """Root seed for sampled answers, k-means and random scores."""
    answer_params: GenerationParams = field(default_factory=default_answer_params)
    """How the student samples its own answers (n is set per request)."""
    max_answers: int = 0
    """Sample at least this many answers per question the first time any are needed (set by
    `score_dataset` to the largest k any requested function uses, so they are drawn once)."""
    _answers: dict[str, list[str]] = field(default_factory=dict, repr=False)
    _stats: dict[tuple[str, str, bool], TokenScores] = field(default_factory=dict, repr=False)
    _embeddings: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _memo: dict[str, Any] = field(default_factory=dict, repr=False)

    # ---- requirements ------------------------------------------------------------------------

    def need(self, what: str, by: str) -> Any:
        """The context field `what`, or a clear error saying that function `by` needs it."""
        value = getattr(self, what)
        if value is None:
            hints = {
                "student": "--student",
                "embedder": "--embedder",
                "reference": "--reference (a file of seed/target questions)",
                "judge": "--judge",
                "reward_model": "--reward-model",
            }
            raise AcqsynthError(f"acquisition {by!r} needs a {what}: pass {hints.get(what, what)}")
        return value

    # ---- text --------------------------------------------------------------------------------

    def prompt(self, sample: Sample) -> Messages:
        """The chat prompt that asks the student `sample`'s question."""
        if self.task is not None:
            return self.task.prompt(sample)
        return [{"role": "user", "content": sample.question}]

    def prompt_text(self, sample: Sample, by: str) -> str:
        """The student's chat-formatted prompt for `sample`, ending where its answer begins."""
        return self.need("student", by).format_prompt(self.prompt(sample))

    def reference_answer(self, sample: Sample, by: str) -> str:
        """The reference answer text the student should produce (task target, else the answer field)."""
        if not sample.answer and not sample.reasoning:
            raise AcqsynthError(
                f"acquisition {by!r} needs a reference answer, but sample {sample.id!r} has an empty "
                "'answer' field"
            )
        if self.task is not None:
            return self.task.target(sample)
        return f"{sample.reasoning}\n{sample.answer}".strip() if sample.reasoning else sample.answer

    def final_answer(self, sample: Sample, by: str) -> str:
        """The sample's final answer alone, without reasoning or the task's answer marker."""
        if not sample.answer:
            raise AcqsynthError(f"acquisition {by!r} needs the final answer, but sample {sample.id!r} has an "
                                "empty 'answer' field")
        return sample.answer

    # ---- shared work -------------------------------------------------------------------------

    def answers(self, samples: Sequence[Sample], k: int, by: str) -> list[list[str]]:
        """k answers the student samples for each question, drawn once per question and shared.

        Sample j of a question is the same whichever function asks first, as long as the first
        request was for at least j+1 answers (`max_answers` makes the first request big enough).
        """
        student = self.need("student", by)
        keys = [self._prompt_key(s) for s in samples]
        want = max(k, self.max_answers)
        missing: dict[str, Messages] = {}
        for key, s in zip(keys, samples, strict=True):
            if len(self._answers.get(key, ())) < k and key not in missing:
                missing[key] = self.prompt(s)
        if missing:
            params = dataclasses.replace(self.answer_params, n=want, seed=self.seed)
            # Seeded by the question itself, not its position: the same answers in any order or chunk.
            index = [int(key[:7], 16) for key in missing]
            outs = student.sample(list(missing.values()), params, seed_index=index)
            for key, comps in zip(missing, outs, strict=True):
                self._answers[key] = [c.text for c in comps]
        return [self._answers[key][:k] for key in keys]

    def token_stats(
        self, samples: Sequence[Sample], completions: Sequence[str], by: str, hidden: bool = False
    ) -> list[TokenScores]:
        """Per-token log-probs, top-2, entropy and sum of squares of each completion (one forward, cached)."""
        student = self.need("student", by)
        keys = [(self.prompt_text(s, by), c, hidden) for s, c in zip(samples, completions, strict=True)]
        todo = [i for i, key in enumerate(keys) if key not in self._stats]
        if todo:
            # A cached entry with hidden states also answers a request without them.
            todo = [i for i in todo if (keys[i][0], keys[i][1], True) not in self._stats]
        if todo:
            got = student.score_texts(
                [keys[i][0] for i in todo], [keys[i][1] for i in todo], top_k=2, stats=True, hidden=hidden
            )
            for i, sc in zip(todo, got, strict=True):
                self._stats[keys[i]] = sc
        return [self._stats.get(key) or self._stats[(key[0], key[1], True)] for key in keys]

    def embed(self, texts: Sequence[str], by: str) -> np.ndarray:
        """Unit-norm embeddings of `texts` from the embedder, cached by text."""
        embedder = self.need("embedder", by)
        todo = list(dict.fromkeys(t for t in texts if t not in self._embeddings))
        if todo:
            for t, e in zip(todo, embedder.encode(todo), strict=True):
                self._embeddings[t] = np.asarray(e, dtype=np.float32)
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return np.stack([self._embeddings[t] for t in texts])

    def forget_samples(self) -> None:
        """Drop what was computed per sample (sampled answers, token statistics, embeddings) and keep
        the memoised work on the reference set, for a context that scores a stream of new samples."""
        self._answers.clear()
        self._stats.clear()
        self._embeddings.clear()

    def memo(self, key: str, compute: Any) -> Any:
        """A value computed once per context (e.g. k-means centroids of the reference set)."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def _prompt_key(self, sample: Sample) -> str:
        text = "\x1f".join(f"{m['role']}\x1e{m['content']}" for m in self.prompt(sample))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class FunctionAcquisition:
    """A user's plain function `f(samples, ctx) -> array` used as an acquisition."""

    name: ClassVar[str] = "function"
    fn: Callable[[Sequence[Sample], ScoringContext], Any] = lambda samples, ctx: np.zeros(len(samples))
    """The scoring function."""
    label: str = "function"
    """Column name for its scores."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        return np.asarray(self.fn(samples, ctx), dtype=np.float64)


def spec_of(acq: Acquisition) -> str:
    """`name` or `name(key=value,…)` with only the parameters that differ from their defaults."""
    if not dataclasses.is_dataclass(acq):
        return acq.name
    parts = []
    for f in dataclasses.fields(acq):
        if not f.init or f.name.startswith("_"):
            continue
        value = getattr(acq, f.name)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING
        )
        if value != default:
            parts.append(f"{f.name}={value}")
    return f"{acq.name}({','.join(parts)})" if parts else acq.name


def params_of(acq: Acquisition) -> dict[str, Any]:
    """All parameters of an acquisition function (its dataclass fields), for provenance records."""
    if not dataclasses.is_dataclass(acq):
        return {}
    return {f.name: getattr(acq, f.name) for f in dataclasses.fields(acq) if f.init and not f.name.startswith("_")}
