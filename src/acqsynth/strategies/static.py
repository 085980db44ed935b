"""Static generation: one batch of samples from the seeds, with no feedback from the student.

Its generation step is every generating strategy's: `generate` runs the generator for one round
(`active` gives it the seeds the student selected, `mistakes` the seeds it got wrong, `rejection`
an oversampled target), and `generation_result` reads back what it cost.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from tqdm.auto import tqdm

from acqsynth.generation.pipeline import GenerateConfig, GenerationRun, generate_samples
from acqsynth.generation.setup import GenerationSetup
from acqsynth.samples import Sample
from acqsynth.strategies.base import GenerationBudget, RoundContext, RoundResult


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


def generate(ctx: RoundContext, setup: GenerationSetup, seeds: Sequence[Sample],
             target: int) -> GenerationRun:
    """The round's generation: up to `target` accepted samples from `seeds` within what is left of the
    budget, into the round's generation/, with a progress bar of accepted samples."""
    g = ctx.config.generator
    config = g.generate_config(ctx.n, ctx.budget.generated, ctx.budget.tokens, seed=ctx.generation_seed)
    ctx.log(f"generating {target} samples from {len(seeds)} seeds with {g.model}")
    bar = tqdm(total=target, desc=f"round {ctx.round} accepted", unit="sample", disable=not ctx.progress)

    def show(run: GenerationRun) -> None:
        led = run.ledger
        assert led is not None
        bar.n = led.accepted
        bar.set_postfix_str(f"generated {led.generated}, rejected {led.rejected}")
        bar.refresh()

    try:
        return generate_round(setup, seeds, target, ctx.budget, config, ctx.out / "generation",
                              earlier=ctx.earlier, progress=show)
    finally:
        bar.close()


def generation_result(ctx: RoundContext, run: GenerationRun, samples: list[Sample]) -> RoundResult:
    """The round's result: `samples` (those of `run` it keeps), the generation stats and what `run` spent."""
    stats = json.loads((ctx.out / "generation" / "stats.json").read_text())
    assert run.ledger is not None
    return RoundResult(samples, stats, run.ledger.generated, run.ledger.tokens)


class Static:
    """`static`: one round of generation from the seeds in a random order, no student feedback."""

    generates = True
    multi_round = False
    uses_acquisition = False

    def generator_template(self, template: str | None, kind: str) -> str | None:
        return template

    def collect(self, ctx: RoundContext) -> RoundResult:
        setup = ctx.setup()
        run = generate(ctx, setup, setup.seeds, ctx.n)
        return generation_result(ctx, run, list(run.accepted))
