"""The `random` acquisition: the baseline every other function must beat."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from acqsynth.acquisition.base import ScoringContext
from acqsynth.samples import Sample


@dataclass
class RandomScore:
    """Uniform [0, 1) per sample, a hash of (seed, sample id, question): the same sample gets the same
    score in any batch or order, so random selection is reproducible."""

    name: ClassVar[str] = "random"

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        out = np.empty(len(samples))
        for i, s in enumerate(samples):
            digest = hashlib.blake2b(f"{ctx.seed}\x1f{s.id}\x1f{s.question}".encode(), digest_size=8).digest()
            out[i] = int.from_bytes(digest, "big") / 2**64
        return out
