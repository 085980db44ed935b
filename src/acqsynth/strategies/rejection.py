"""Rejection sampling (AcquisitionSynthesis' no-RL variant): generate `oversample` × N candidates
from the untrained generator, score them with `selection.acquisition` on the student, and keep the
best N (top-k, diverse top-k, ...). Every candidate counts against the generation budget."""

from __future__ import annotations

from acqsynth.samples import write_samples
from acqsynth.strategies.base import RoundContext, RoundResult
from acqsynth.strategies.scoring import select_in_round
from acqsynth.strategies.static import generate, generation_result


class Rejection:
    """`rejection`: oversample from the generator, keep the candidates the student values most."""

    generates = True
    multi_round = False
    uses_acquisition = True

    def generator_template(self, template: str | None, kind: str) -> str | None:
        return template

    def collect(self, ctx: RoundContext) -> RoundResult:
        setup = ctx.setup()
        run = generate(ctx, setup, setup.seeds, ctx.n * ctx.config.oversample)
        kept = list(run.accepted)
        if kept:
            acquisition = ctx.config.selection.acquisition
            ctx.log(f"keeping the best {ctx.n} of {len(kept)} candidates by {acquisition}")
            kept, table = select_in_round(ctx, kept, [s.question for s in setup.seeds])
            write_samples(table, ctx.out / "candidate_scores.jsonl")
        return generation_result(ctx, run, kept)
