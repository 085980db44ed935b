"""Random real data: samples drawn from the pool split, the baseline synthetic data must beat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample


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
