"""A user's own strategy, `strategy=FILE.py:NAME`: a toy strategy in a temporary file runs end to end
(rounds, training, evaluation, metrics.json), and a file that is not a strategy is refused with an
error naming the file and the attribute."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scripted_generator import SCRIPTED, write_problems
from tiny import make_tiny_model

from acqsynth.config import load_config
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.run.config import RunConfig
from acqsynth.run.job import run_job
from acqsynth.strategies import STRATEGIES, get_strategy
from acqsynth.strategies.base import Strategy

TOY = '''
from acqsynth.strategies import RoundContext, RoundResult


class FirstOfPool:
    """The first unused real pool samples, a few each round."""

    generates = False
    multi_round = True
    uses_acquisition = False

    def generator_template(self, template, kind):
        return template

    def collect(self, ctx: RoundContext) -> RoundResult:
        taken = {s.id for s in ctx.earlier}
        ctx.log(f"taking the first {ctx.n} unused pool samples")
        return RoundResult([s for s in ctx.pool() if s.id not in taken][: ctx.n])


class NoCollect:
    generates = False
    multi_round = False
    uses_acquisition = False

    def generator_template(self, template, kind):
        return template


class NeedsArguments(FirstOfPool):
    def __init__(self, size):
        self.size = size


not_a_strategy = 42
'''


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("plugin")
    toy = root / "toy.py"
    toy.write_text(TOY)
    data = write_problems(root / "apples.jsonl")
    return {"data": data, "model": make_tiny_model(root / "tiny"), "toy": toy}


def config(world: dict[str, Path], out: Path, *overrides: str) -> RunConfig:
    base = [
        f"output={out}", f"data.name={world['data']}", "data.task=math", "data.seeds=null", "data.eval_n=6",
        f"student.model={world['model']}", "student.batch_size=4", f"generator.model={SCRIPTED}",
        "generator.embedder=null", "budget.samples=6", "train.epochs=1", "train.batch_size=4",
        "train.learning_rate=1e-3", "eval.max_new_tokens=6", "eval.loglik=false", "eval.batch_size=4",
    ]
    return load_config(RunConfig, None, [*base, *overrides])


def test_every_built_in_strategy_is_a_strategy() -> None:
    assert list(STRATEGIES) == ["active", "static", "rejection", "random", "mistakes", "filtered", "filtered-active"]
    assert all(isinstance(s, Strategy) for s in STRATEGIES.values())


def test_a_user_strategy_runs_end_to_end(world: dict[str, Path], tmp_path: Path) -> None:
    out, spec = tmp_path / "run", f"{world['toy']}:FirstOfPool"
    summary = run_job(config(world, out, f"strategy={spec}", "rounds=2"), out, progress=False)
    pool = load_data(str(world["data"]), split="pool", task="math")["id"]
    data = [json.loads(line)["id"] for line in (out / "data.jsonl").read_text().splitlines()]
    assert data == pool[:6]  # round 1 took the first three, round 2 the next three
    assert [r.new_samples for r in summary.rounds] == [0, 3, 3]  # multi_round: `rounds` rounds
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == spec and metrics["samples"] == 6 and metrics["generated"] == 0
    assert metrics["generator"] is None  # generates = False: no generator named or loaded
    assert (out / "report.md").read_text().startswith(f"# {spec}:")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("NoCollect", "NoCollect in {toy} is not a Strategy; it lacks collect() (a method)"),
        ("not_a_strategy", "not_a_strategy in {toy} is not a Strategy; it lacks generates (a bool), "
                           "multi_round (a bool), uses_acquisition (a bool), generator_template() (a method), "
                           "collect() (a method)"),
        ("Missing", "{toy} defines no 'Missing'"),
        ("NeedsArguments", "the class NeedsArguments must be built without arguments"),
    ],
)
def test_a_bad_user_strategy_is_refused_when_the_config_loads(world: dict[str, Path], name: str,
                                                              message: str) -> None:
    with pytest.raises(AcqsynthError) as err:
        load_config(RunConfig, None, [f"strategy={world['toy']}:{name}"])
    assert f"strategy {world['toy']}:{name}: " in str(err.value)
    assert message.format(toy=world["toy"]) in str(err.value)


def test_a_missing_strategy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(AcqsynthError, match="no such strategy file"):
        get_strategy(f"{tmp_path / 'nowhere.py'}:Mine")
