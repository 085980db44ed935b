"""The ways to turn acquisition scores into training data (docs/methods.md), one module each.

Each strategy fills one round of a run with new samples: `random_real` (real pool samples, the
baseline), `static` (one-shot generation, no student feedback), `rejection` (oversample from the
generator, keep the candidates the student values most) and `active` (the student picks the seeds
the generator writes from). `acqsynth.run.job` runs rounds, trains and evaluates around them.
"""

from acqsynth.strategies.active import select_seeds
from acqsynth.strategies.random_real import random_real
from acqsynth.strategies.rejection import select_candidates
from acqsynth.strategies.static import GenerationBudget, generate_round

__all__ = ["GenerationBudget", "generate_round", "random_real", "select_candidates", "select_seeds"]
