"""One real GRPO step of the embedded SmolLM2 generator with `reward=gradient`: the student's
per-sample gradient norms (far above the paper's clip at 2) give the completions different rewards,
in the norms' order, instead of the same clipped 2 for all."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from acqsynth.strategies.grpo import GRPOSettings, train_generator

pytestmark = pytest.mark.integration


def test_gradient_reward_separates_completions_in_a_real_grpo_step(tmp_path: Path) -> None:
    settings = GRPOSettings(data="arithmetic-2d", template="arithmetic", reward="gradient", prompts=4,
                            group_size=4, prompts_per_step=2, max_steps=1, max_completion_length=96,
                            answer_max_new_tokens=16, format_weight=0.0, embedder=None)
    result = train_generator(settings, tmp_path / "out", progress=False)
    assert result["reward_transform"] == "scale"
    rows = [json.loads(line) for line in (tmp_path / "out" / "completions.jsonl").read_text().splitlines()]
    scored = [r for r in rows if r["acquisition"] is not None]
    assert len(scored) >= 2, f"only {len(scored)} of {len(rows)} completions parsed"
    norms = [r["acquisition"] for r in scored]
    assert min(norms) > 2  # under the paper's clip every one of these would have been worth 2
    assert len({r["reward"] for r in scored}) == len(set(norms))
    order = sorted(range(len(scored)), key=norms.__getitem__)
    rewards = [scored[i]["reward"] for i in order]
    assert rewards == sorted(rewards)  # the reward is monotone in the norm
