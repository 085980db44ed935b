"""Random real data: samples drawn from the pool split, the baseline synthetic data must beat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample
from acqsynth.strategies.base import RoundContext, RoundResult


def random_real(pool: Sequence[Sample], n: int, seed: int, exclude: Sequence[str] = ()) -> list[Sample]:
    """`n` pool samples drawn without replacement (fixed by `seed`), skipping ids in `exclude`
    (those taken by earlier rounds), in draw order."""
    taken = set(exclude)
    free = [s for s in pool if s.id not in taken]
    if n > len(free):
        raise AcqsynthError(
            f"the pool has {len(free)} unused samples but {n} were asked for (raise data.pool or lower budget.samples)"
        )
    order = np.random.default_rng(seed).permutation(len(free))[:n]
    return [free[i] for i in order]


class RandomReal:
    """`random`: the whole budget drawn at random from the real pool in one round."""

    generates = False
    multi_round = False
    uses_acquisition = False

    def generator_template(self, template: str | None, kind: str) -> str | None:
        return template

    def collect(self, ctx: RoundContext) -> RoundResult:
        return RoundResult(random_real(ctx.pool(), ctx.n, seed=ctx.generation_seed,
                                       exclude=[s.id for s in ctx.earlier]))
