"""The active loop (arXiv 2512.00884): in each round the current student answers every seed
question, `selection.acquisition` scores the seeds, the selection rule picks the round's share of
them, and the generator writes one new sample from each picked seed (in passes until enough are
accepted). The run retrains the student on all samples so far before the next round."""

from __future__ import annotations

from acqsynth.samples import write_samples
from acqsynth.strategies.base import RoundContext, RoundResult
from acqsynth.strategies.scoring import select_in_round
from acqsynth.strategies.static import generate, generation_result


class Active:
    """`active`: the student picks the seeds the generator writes from, round after round."""

    generates = True
    multi_round = True
    uses_acquisition = True

    def generator_template(self, template: str | None, kind: str) -> str | None:
        return template

    def collect(self, ctx: RoundContext) -> RoundResult:
        setup = ctx.setup()
        seeds = setup.seeds
        acquisition = ctx.config.selection.acquisition
        ctx.log(f"the student answers {len(seeds)} seeds; selecting {ctx.n} by {acquisition}")
        picked, table = select_in_round(ctx, seeds, [s.question for s in seeds])
        write_samples(table, ctx.out / "seed_scores.jsonl")
        run = generate(ctx, setup, picked, ctx.n)
        return generation_result(ctx, run, list(run.accepted))
