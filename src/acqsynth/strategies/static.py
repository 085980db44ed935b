"""Static generation: one batch of samples from seeds, with no feedback from the student.

`generate_round` is also the generation step of the other strategies: the active loop calls it with
the seeds the student selected, rejection sampling with an oversampled target.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from acqsynth.generation.pipeline import GenerateConfig, GenerationRun, generate_samples
from acqsynth.generation.setup import GenerationSetup
from acqsynth.samples import Sample


@dataclass
class GenerationBudget:
    """What one round may still spend on the generator."""

    generated: int
    """Most completions."""
    tokens: int | None
    """Most completion tokens (None = unlimited)."""


def generate_round(
    setup: GenerationSetup,
    seeds: Sequence[Sample],
    num_samples: int,
    budget: GenerationBudget,
    config: GenerateConfig,
    output: Path,
    earlier: Sequence[Sample] = (),
    progress: Callable[[GenerationRun], None] | None = None,
) -> GenerationRun:
    """Generate up to `num_samples` accepted samples from `seeds` within `budget` into `output`.

    `config` carries the generation settings; its sample target and budget are replaced by the
    arguments. Samples that duplicate `earlier` ones (earlier rounds) are removed.
    """
    cfg = replace(config, num_samples=num_samples, max_generated=budget.generated, max_tokens=budget.tokens)
    return generate_samples(
        seeds=list(seeds), task=setup.task, generator=setup.generator, config=cfg, output=output,
        prompt_builder=setup.prompt_builder, answer_model=setup.answer_model, embedder=setup.embedder,
        seed_pool=setup.seed_pool, evals=setup.evals, earlier=earlier, progress=progress,
    )
