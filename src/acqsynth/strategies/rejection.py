"""Rejection sampling (AcquisitionSynthesis' no-RL variant): generate `oversample` × N candidates
from the untrained generator, score them with an acquisition function on the frozen student, and keep
the best N (top-k, or diverse top-k). Every candidate counts against the generation budget.

Generation is `static.generate_round` with the oversampled target; keeping the best is the same
score-and-select step the active loop applies to seeds."""

from __future__ import annotations

from acqsynth.strategies.active import score_and_select

select_candidates = score_and_select
"""The N candidates the student values most (all when there are no more), and the scored candidate table."""
