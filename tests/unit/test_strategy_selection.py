"""Every selection method either picks a round's samples or is refused when the config loads.

`threshold` and `stratified` once passed config validation, and a run then failed in its first round
("needs min_score" / "needs strata"): a round takes exactly its share of the sample budget, so the
config refuses `threshold` with the reason; `stratified` runs with `selection.strata` (a metadata key)
and is refused without it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pytest

from acqsynth.acquisition import ScoringContext
from acqsynth.config import load_config
from acqsynth.errors import AcqsynthError
from acqsynth.run.config import RunConfig
from acqsynth.samples import Sample
from acqsynth.selection import METHODS
from acqsynth.strategies.scoring import NOT_IN_A_ROUND, ROUND_METHODS, score_and_select

SAMPLES = [Sample(id=f"s{i}", question=f"What is {i} + {i}?", answer=str(2 * i), metadata={"parity": i % 2})
           for i in range(12)]


class HashEmbedder:
    """A deterministic stand-in for a sentence embedder: unit vectors from each text's characters."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        out = np.array([[sum(map(ord, t)) % 7, len(t), t.count("1") + 1] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_the_methods_are_split_into_runnable_and_refused() -> None:
    assert set(ROUND_METHODS) | set(NOT_IN_A_ROUND) == set(METHODS)
    assert not set(ROUND_METHODS) & set(NOT_IN_A_ROUND)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_in_a_round_or_is_refused_by_the_config(method: str) -> None:
    overrides = [f"selection.method={method}", "strategy=rejection"]
    if method == "quantile":
        overrides.append("selection.quantile=2")
    if method == "stratified":  # refused without the key its strata come from
        with pytest.raises(AcqsynthError, match=re.escape("selection.method 'stratified' needs selection.strata")):
            load_config(RunConfig, None, overrides)
        overrides.append("selection.strata=parity")
    if method in NOT_IN_A_ROUND:
        why = f"selection.method {method!r} cannot pick a round's samples: {NOT_IN_A_ROUND[method]}; choose one of"
        with pytest.raises(AcqsynthError, match=re.escape(why)):
            load_config(RunConfig, None, overrides)
        return
    sel = load_config(RunConfig, None, overrides).selection
    ctx = ScoringContext(embedder=HashEmbedder(), seed=0)
    strata = [s.metadata["parity"] for s in SAMPLES] if method == "stratified" else None
    picked, table = score_and_select(SAMPLES, "random", sel.method, 3, ctx, seed=1, quantile=sel.quantile,
                                     quantiles=sel.quantiles, strata=strata, diverse_pool=sel.diverse_pool)
    assert len(picked) == 3 and len({s.id for s in picked}) == 3
    assert sum(table["selected"]) == 3 and sorted(r for r in table["selection_rank"] if r >= 0) == [0, 1, 2]


def test_an_unknown_method_is_suggested_among_those_a_round_runs() -> None:
    valid = r"Valid selection methods: diverse, k-center, kmeans\+\+, quantile, random, stratified, top-k$"
    with pytest.raises(AcqsynthError, match=r"Did you mean 'top-k'\?.*" + valid):
        load_config(RunConfig, None, ["selection.method=topk"])
