"""The GRPO reward's acquisition term per transform, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from acqsynth.acquisition import ACQUISITIONS
from acqsynth.strategies.reward_transform import AUTO, RewardTransform, resolve

NAN = math.nan


def test_clip_is_the_papers() -> None:
    assert RewardTransform("clip", 2.0)([-1.0, 0.5, 3.0, NAN]) == [0.0, 0.5, 2.0, 0.0]


def test_scale_divides_by_the_running_median_of_every_score_so_far() -> None:
    t = RewardTransform("scale", 2.0)
    first = t([10.0, 40.0, 150.0, NAN])  # median |A| of {10, 40, 150} = 40
    assert first == pytest.approx([0.25, 1.0, 2.0, 0.0])  # 150 / 40 = 3.75 is capped
    second = t([6.0, 20.0])  # median of {10, 40, 150, 6, 20} = 20
    assert second == pytest.approx([0.3, 1.0])
    assert t.history == [10.0, 40.0, 150.0, 6.0, 20.0]
    assert RewardTransform("scale", 2.0)([0.0, 0.0]) == [0.0, 0.0]  # no scale yet: no signal, no division by 0


def test_rank_is_the_percentile_rank_within_the_step_with_ties_averaged() -> None:
    t = RewardTransform("rank", 2.0)
    assert t([-0.4, -0.1, NAN, -0.3, -0.1]) == pytest.approx([0.0, 5 / 3, 0.0, 2 / 3, 5 / 3])
    assert t([-7.0]) == [1.0]  # one score: the middle
    assert t([NAN, NAN]) == [0.0, 0.0]


def test_auto_knows_every_built_in_acquisition() -> None:
    assert set(AUTO) - {"combination"} == set(ACQUISITIONS)
    assert resolve("auto", "gradient") == "scale" and resolve("auto", "confidence") == "clip"
    assert resolve("auto", "learnability") == "rank" and resolve("auto", "my-file-score") == "rank"
    assert resolve("clip", "gradient") == "clip"
    with pytest.raises(ValueError, match="resolve 'auto' first"):
        RewardTransform("auto", 2.0)


@pytest.mark.parametrize("transform", ["clip", "scale", "rank"])
def test_terms_stay_within_zero_and_the_cap(transform: str) -> None:
    rng = np.random.default_rng(0)
    t = RewardTransform(transform, 1.5)
    for _ in range(5):
        terms = t(list(rng.normal(0, 50, 9)))
        assert all(0.0 <= x <= 1.5 for x in terms)


def test_auto_ranks_a_weighted_sum_that_can_leave_zero_to_the_cap() -> None:
    import dataclasses

    from acqsynth.acquisition import parse_acquisition

    combo = parse_acquisition("0.5*loss + 0.5*diversity")
    assert resolve("auto", combo) == "clip"  # min-max terms, non-negative weights: within [0, 1]
    assert resolve("auto", dataclasses.replace(combo, terms=[(1.0, combo.terms[0][1]), (-0.5, combo.terms[1][1])])) == "rank"
    assert resolve("auto", dataclasses.replace(combo, normalize="zscore")) == "rank"
