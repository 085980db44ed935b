"""GRPO generator training: the reward (clipped acquisition + format, 0 when unparsable) and two real
TRL GRPO steps on a tiny random generator and student."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tiny import make_tiny_model

from acqsynth.acquisition import FunctionAcquisition, ScoringContext
from acqsynth.config import load_config
from acqsynth.errors import AcqsynthError
from acqsynth.generation.parsing import format_reward
from acqsynth.generation.prompts import PromptBuilder
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import load_generator
from acqsynth.run.config import RunConfig
from acqsynth.run.job import run_job
from acqsynth.strategies.grpo import AcquisitionReward, GRPOSettings, train_generator
from acqsynth.strategies.reward_transform import RewardTransform
from acqsynth.strategies.transfer import describe_transfer
from acqsynth.tasks import get_task
from acqsynth.training import weights_digest

GOOD = "Ann has 3 pens and buys 4 more. How many?</question>\n<reasoning>3 + 4 = 7</reasoning>\n<answer>7</answer>"
SHORT = "Is 1 + 1 two?</question>\n<reasoning>yes</reasoning>\n<answer>2</answer> and some trailing text"
BROKEN = "Ann has 3 pens</question>\n<reasoning>no answer tag"


def test_reward_is_clipped_acquisition_plus_format_and_zero_when_unparsable() -> None:
    # a known acquisition: 10 for long questions (clipped to 2), -1 for short ones (clipped to 0)
    acq = FunctionAcquisition(fn=lambda samples, ctx: [10.0 if len(s.question) > 20 else -1.0 for s in samples],
                              label="known")
    logged: dict[str, float] = {}
    reward = AcquisitionReward(acq, ScoringContext(), get_task("math"), PromptBuilder("math"),
                               RewardTransform("clip", 2.0), format_weight=1.0)
    out = reward(["p"] * 3, [GOOD, SHORT, BROKEN], log_metric=lambda k, v: logged.__setitem__(k, v))
    f_good, f_short = format_reward("<question>" + GOOD), format_reward("<question>" + SHORT)
    assert f_good == 0.75 and f_short < 0.75  # six tags once each; trailing characters cost
    assert out == [pytest.approx(2.0 + f_good), pytest.approx(0.0 + f_short), 0.0]
    assert logged["parse_rate"] == pytest.approx(2 / 3)
    assert logged["acquisition_mean"] == pytest.approx(4.5)  # unclipped mean of the parsable ones
    reward.format_when_unparsable = True  # shaping: the broken completion earns its format reward
    assert reward(["p"], [BROKEN]) == [pytest.approx(format_reward("<question>" + BROKEN))]
    assert format_reward("<question>" + BROKEN) > 0


def test_gradient_norms_give_different_rewards(tmp_path: Path) -> None:
    """The real per-sample gradient norm on a tiny student: norms far above 2 no longer all clip to 2."""
    import math

    from acqsynth.acquisition import parse_acquisition
    from acqsynth.models.causal_lm import load_causal_lm
    from acqsynth.models.hf_student import TransformersStudent

    model, tok = load_causal_lm(str(make_tiny_model(tmp_path / "tiny")))
    ctx = ScoringContext(student=TransformersStudent(model.eval(), tok), task=get_task("math"))
    texts = [f"What is {a} plus {b}?</question>\n<reasoning>{a} + {b}</reasoning>\n<answer>{a + b}</answer>"
             for a, b in ((3, 4), (120, 37), (9, 999), (1, 1))]
    acq = parse_acquisition("gradient")
    for transform in ("scale", "rank"):
        reward = AcquisitionReward(acq, ctx, get_task("math"), PromptBuilder("math"), RewardTransform(transform, 2.0),
                                   format_weight=0.0)
        out = reward.score(texts)
        norms = out["acquisition"]
        assert all(math.isfinite(n) for n in norms) and len(set(norms)) == 4
        assert len(set(out["reward"])) == 4, (transform, out["reward"])
        order = sorted(range(4), key=norms.__getitem__)
        assert sorted(range(4), key=out["reward"].__getitem__) == order  # the reward keeps the norms' order
    assert min(norms) > 2 and RewardTransform("clip", 2.0)(norms) == [2.0] * 4  # what the old clip gave


def test_settings_are_checked() -> None:
    with pytest.raises(AcqsynthError, match="group_size must be >= 2"):
        GRPOSettings(group_size=1)
    with pytest.raises(AcqsynthError, match="method must be 'lora' or 'full'"):
        GRPOSettings(method="dpo")
    with pytest.raises(AcqsynthError, match="reward_transform must be one of auto, clip, scale, rank.*'rnak'"):
        GRPOSettings(reward_transform="rnak")


def test_two_grpo_steps_on_a_tiny_model(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny")
    settings = GRPOSettings(generator=str(model), student=str(model), data="gsm8k", prompts=8, reward="confidence",
                            group_size=2, prompts_per_step=2, max_steps=2, max_completion_length=16,
                            answer_max_new_tokens=8, learning_rate=1e-3, beta=0.01, embedder=None)
    result = train_generator(settings, tmp_path / "out", progress=False)
    assert result["steps"] == 2 and result["processes"] == 1
    steps = [h for h in result["logs"] if "reward" in h]
    assert len(steps) == 2
    for h in steps:
        assert {"reward", "parse_rate", "kl", "format_mean", "completions/mean_length"} <= set(h)
    rows = [json.loads(line) for line in (tmp_path / "out" / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and {r["step"] for r in rows} == {0, 1}
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["first"]["steps"] == 2 and "parse_rate" in summary["last"]
    # the saved generator is a plain checkpoint that `acqsynth generate --generator PATH` loads
    gen = load_generator(str(tmp_path / "out" / "generator"))
    comps = gen.generate([[{"role": "user", "content": "Write a problem."}]], GenerationParams(max_new_tokens=4))
    assert len(comps) == 1 and comps[0][0].completion_tokens > 0
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").exists()


def test_a_trained_generator_transfers_to_another_student(tmp_path: Path) -> None:
    """Generator trained against student A (2 GRPO steps) writes data for student B in `acqsynth run`."""
    a = make_tiny_model(tmp_path / "a", seed=0)
    b = make_tiny_model(tmp_path / "b", seed=1)
    settings = GRPOSettings(generator=str(a), student=str(a), data="gsm8k", prompts=4, group_size=2,
                            prompts_per_step=2, max_steps=1, max_completion_length=8, answer_max_new_tokens=4,
                            embedder=None)
    train_generator(settings, tmp_path / "grpo", progress=False)
    gen = str(tmp_path / "grpo" / "generator")
    info = describe_transfer(gen, str(b), samples=40)
    assert info["cross_student"] and info["student"] == str(a) and info["this_student"] == str(b)
    assert info["prompts"] == 4 and info["budget_over_training_prompts"] == 10.0 and info["steps"] == 1
    assert info["weights_sha256"] == weights_digest(Path(gen))  # which weights, for runs that load it by path
    assert describe_transfer(str(a), str(b), 40) is None  # an untrained generator has no provenance

    cfg = load_config(RunConfig, None, [
        "strategy=static", f"student.model={b}", f"generator.model={gen}", "data.name=gsm8k", "data.seeds=4",
        "data.eval_n=2", "generator.embedder=null", "generator.hygiene.embedding_threshold=null",
        "generator.hygiene.decontam_embedding_threshold=null", "generator.max_new_tokens=8", "budget.samples=2",
        "budget.generated=2", "eval.max_new_tokens=4", "eval.loglik=false",
    ])
    summary = run_job(cfg, tmp_path / "run", progress=False)
    assert summary.transfer is not None and summary.transfer["cross_student"] and summary.generated == 2
    assert "transfer: the generator was trained with GRPO against" in (tmp_path / "run" / "report.md").read_text()
