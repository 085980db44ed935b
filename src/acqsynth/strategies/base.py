"""The strategy interface: what one round of `acqsynth run` hands a strategy (`RoundContext`), what
the strategy hands back (`RoundResult`), and the `Strategy` Protocol itself.

A strategy only makes a round's new samples. The run does everything around it: it spreads the
sample budget over the rounds, holds generating strategies to the generation budget, trains the
student on all samples so far, evaluates it and records the round.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from acqsynth.models.interfaces import Embedder, Student
from acqsynth.samples import Sample
from acqsynth.tasks.base import Task

if TYPE_CHECKING:  # strategies never import acqsynth.run at run time (run.config imports them)
    from acqsynth.generation.setup import GenerationSetup
    from acqsynth.run.config import RunConfig


@dataclass
class GenerationBudget:
    """What one round may still spend on the generator."""

    generated: int
    """Most completions."""
    tokens: int | None
    """Most completion tokens (None = unlimited)."""


@dataclass
class RoundContext:
    """Everything one round gives its strategy. `pool` and `setup` load on first call, so a strategy
    pays only for what it uses."""

    round: int
    """The round's number (1, 2, ...)."""
    n: int
    """Samples wanted: the round's even share of what is left of `budget.samples`."""
    student: Student
    """The current student: the base model (the warmed one with `data.warmup`), or the one trained on
    every earlier round's samples."""
    budget: GenerationBudget
    """What is left of the run's generation budget."""
    out: Path
    """The round's directory (score tables, generation/, ...)."""
    config: RunConfig
    """The run's config (`selection`, `generator`, `data`, `oversample`, ...)."""
    earlier: list[Sample]
    """The warm-up samples (`data.warmup`) and every earlier round's samples: a strategy must not give
    them again."""
    selection_seed: int
    """Seed of the selection method (tie-breaks, random and diverse methods, quantile draws)."""
    generation_seed: int
    """Seed of everything else that samples: the generator, the student's sampled answers, pool draws."""
    task: Task
    """The run's task (prompts, grading)."""
    task_name: str
    """The task's config name: `data.task`, or the built-in dataset's task."""
    embedder: Embedder | None
    """The sentence embedder (`generator.embedder`; None when switched off)."""
    cache_dir: Path
    """The run's cache directory (an experiment's cells share one)."""
    pool: Callable[[], list[Sample]]
    """The real pool split without the warm-up rows (its first `data.pool` rows after them; with
    `data.pool_seeded`, `data.pool` of them drawn by the run's seed)."""
    setup: Callable[[], GenerationSetup]
    """The generation set-up (generator, seeds, caches, hygiene indexes), loaded once per run."""
    progress: bool = True
    """Show progress bars."""

    def log(self, message: str) -> None:
        """A line on stderr about this round."""
        print(f"[acqsynth run] round {self.round}: {message}", file=sys.stderr, flush=True)


@dataclass
class RoundResult:
    """What a strategy made in one round and what that cost."""

    samples: list[Sample]
    """The round's new training samples (at most `RoundContext.n`; none ends the run)."""
    generation: dict[str, Any] = field(default_factory=dict)
    """Generation stats (generation/stats.json; {} for real data); its `stop_reason` says why a round
    that found no samples stopped."""
    generated: int = 0
    """Generator completions spent, rejected ones included."""
    tokens: int = 0
    """Generator and answer-model completion tokens spent."""


@runtime_checkable
class Strategy(Protocol):
    """One way to make a round's training data (docs/strategies.md)."""

    generates: bool
    """Writes samples with the generator: the run loads it, names it in metrics.json and holds each
    round to what is left of the generation budget. False: real pool samples, no generator."""
    multi_round: bool
    """Runs `rounds` rounds, the sample budget spread evenly over them and the student retrained in
    between. False: one round with the whole budget."""
    uses_acquisition: bool
    """Picks samples by `selection.acquisition` (an experiment's results table names it)."""

    def generator_template(self, template: str | None, kind: str) -> str | None:
        """The generator's prompt template, given `generator.template` (None: the built-in one of
        template kind `kind`); most strategies return `template` as it is."""
        ...

    def collect(self, ctx: RoundContext) -> RoundResult:
        """Make the round's new samples."""
        ...


def protocol_gaps(obj: object) -> list[str]:
    """What `obj` lacks to be a `Strategy`, in words (empty when it is one)."""
    flags = ("generates", "multi_round", "uses_acquisition")
    gaps = [f"{name} (a bool)" for name in flags if not isinstance(getattr(obj, name, None), bool)]
    return gaps + [f"{name}() (a method)" for name in ("generator_template", "collect")
                   if not callable(getattr(obj, name, None))]
