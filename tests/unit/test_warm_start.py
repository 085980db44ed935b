"""Warm start (`data.warmup`): the student trains once on the first pool rows before round 0, that
warmed student is "before" and scores round 1, every round trains on the warm-up samples too, none
is ever selected, and a resumed run does not train the warm-up again."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_job import config, rows

from acqsynth.acquisition import Loss, ScoringContext
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.run.job import Job, run_job
from acqsynth.samples import iter_samples
from acqsynth.strategies import RoundContext
from acqsynth.tasks import get_task

WARM = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from scripted_generator import write_problems
    from tiny import make_tiny_model

    root = tmp_path_factory.mktemp("warm")
    return {"root": root, "data": write_problems(root / "apples.jsonl"), "model": make_tiny_model(root / "tiny")}


def pool_ids(world: dict[str, Path]) -> list[str]:
    return load_data(str(world["data"]), split="pool", task="math")["id"]


def meta(row: dict[str, Any]) -> dict[str, Any]:
    return row["metadata"] if isinstance(row["metadata"], dict) else json.loads(row["metadata"] or "{}")


def test_the_warmed_student_is_round_0_and_trains_with_every_round(world, tmp_path, trainings) -> None:
    out = tmp_path / "run"
    cfg = config(world, out, "strategy=random", f"data.warmup={WARM}")
    job = Job(cfg, out, progress=False)
    evaluated: list[Any] = []
    real_evaluate = job.evaluate

    def recording(student: Any, path: Path) -> dict[str, Any]:
        evaluated.append(student)
        return real_evaluate(student, path)

    job.evaluate = recording  # type: ignore[method-assign]
    summary = job.run()
    warm = pool_ids(world)[:WARM]
    # the warm-up is the first pool rows, trained once before round 0; round 1 trains on it plus its picks
    assert [r["id"] for r in rows(out / "round-00" / "warmup.jsonl")] == warm
    picked = [r["id"] for r in rows(out / "round-01" / "data.jsonl")]
    assert trainings == [warm, warm + picked]
    assert not set(picked) & set(warm) and len(picked) == 6
    assert (out / "round-00" / "adapter" / "adapter_model.safetensors").exists()
    # the budget counts selected samples only; data.jsonl holds every training sample, the warm-up marked
    assert summary.samples == 6 and summary.unique_ids
    data = rows(out / "data.jsonl")
    assert [r["id"] for r in data] == warm + picked
    assert [bool(meta(r).get("warmup")) for r in data] == [True] * WARM + [False] * 6
    # round 0 evaluated the warmed student (rebuilt from round-00/adapter, it is the same), not the untrained one
    assert evaluated[0] is job.student_after(0) and evaluated[0] is not job.base
    again = Job(cfg, out, progress=False)
    again.load()
    again.evaluate(again.student_after(0), tmp_path / "warmed.jsonl")
    assert rows(tmp_path / "warmed.jsonl") == rows(out / "round-00" / "eval.jsonl")
    # recorded: round 0's warmup entry, metrics.json's warmup (after samples) and its training seed
    r0 = json.loads((out / "round-00" / "round.json").read_text())
    assert r0["warmup"]["samples"] == WARM and r0["warmup"]["train"]["seed"] == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert list(metrics)[6:9] == ["samples", "warmup", "unique_ids"]
    assert metrics["warmup"]["samples"] == WARM and metrics["warmup"]["file"] == "round-00/warmup.jsonl"
    assert metrics["seeds"]["warmup"] == 0 and list(metrics["seeds"])[-1] == "warmup"
    assert "warm start" in (out / "report.md").read_text()


def test_active_rounds_see_the_warm_up_as_earlier_samples(world, tmp_path, trainings) -> None:
    out = tmp_path / "run"
    job = Job(config(world, out, "strategy=active", "rounds=2", f"data.warmup={WARM}"), out, progress=False)
    seen: list[tuple[list[str], Any]] = []
    active = job.strategy

    class Recording:  # the active strategy, recording what each round's context holds
        generates, multi_round, uses_acquisition = active.generates, active.multi_round, active.uses_acquisition
        generator_template = staticmethod(active.generator_template)

        def collect(self, ctx: RoundContext) -> Any:
            seen.append(([s.id for s in ctx.earlier], ctx.student))
            return active.collect(ctx)

    job.strategy = Recording()
    summary = job.run()
    warm = pool_ids(world)[:WARM]
    r1, r2 = ([r["id"] for r in rows(out / f"round-{r:02d}" / "data.jsonl")] for r in (1, 2))
    assert summary.samples == 6 and [rec.new_samples for rec in summary.rounds] == [0, 3, 3]
    assert [ids for ids, _ in seen] == [warm, warm + r1]
    assert seen[0][1] is job.student_after(0)  # round 1's acquisition scores come from the warmed student
    assert trainings == [warm, warm + r1, warm + r1 + r2]


def test_resume_after_the_warm_up_does_not_train_it_again(world, tmp_path, trainings) -> None:
    out = tmp_path / "run"
    cfg = config(world, out, "strategy=random", f"data.warmup={WARM}")
    run_job(cfg, out, progress=False)
    before = (out / "round-00" / "eval.jsonl").read_text()
    data = (out / "data.jsonl").read_text()
    # as if killed after the warm-up trained, before round 0's evaluation was recorded
    for f in ("round-00/round.json", "round-01/round.json", "metrics.json", "data.jsonl"):
        (out / f).unlink()
    trainings.clear()
    run_job(cfg, out, progress=False)
    assert len(trainings) == 1 and len(trainings[0]) == WARM + 6  # round 1 only: the warm-up was loaded
    assert (out / "round-00" / "eval.jsonl").read_text() == before
    assert (out / "data.jsonl").read_text() == data
    # killed in round 1: round 0 is loaded as it is
    (out / "round-01" / "round.json").unlink()
    trainings.clear()
    run_job(cfg, out, progress=False)
    assert len(trainings) == 1 and len(trainings[0]) == WARM + 6


def test_an_untrained_round_0_is_redone_with_the_warm_up(world, tmp_path, trainings) -> None:
    """An experiment copies the shared untrained evaluation into each cell: a warm-started cell must not
    take it for its own round 0."""
    cold, warm = tmp_path / "cold", tmp_path / "warm"
    run_job(config(world, cold, "strategy=random"), cold, progress=False)
    shutil.copytree(cold / "round-00", warm / "round-00")
    trainings.clear()
    summary = run_job(config(world, warm, "strategy=random", f"data.warmup={WARM}"), warm, progress=False)
    assert len(trainings) == 2 and len(trainings[0]) == WARM
    assert summary.warmup is not None and summary.rounds[0].warmup["samples"] == WARM


def test_random_and_filtered_never_pick_a_warm_up_id(world, tmp_path) -> None:
    ids = pool_ids(world)
    # random: a warm-up of all but 6 pool rows leaves exactly those 6 to draw
    rnd = tmp_path / "random"
    run_job(config(world, rnd, "strategy=random", f"data.warmup={len(ids) - 6}"), rnd, progress=False)
    assert sorted(r["id"] for r in rows(rnd / "round-01" / "data.jsonl")) == sorted(ids[-6:])
    with pytest.raises(AcqsynthError, match="the pool has 5 unused samples but 6 were asked for"):
        out = tmp_path / "short"
        run_job(config(world, out, "strategy=random", f"data.warmup={len(ids) - 5}"), out, progress=False)
    # filtered: data.pool rows after the warm-up are ranked, by the warmed student
    flt = tmp_path / "filtered"
    cfg = config(world, flt, "strategy=filtered", "data.pool=12", f"data.warmup={WARM}",
                 "selection.acquisition=loss(answer=reference)", "train.batch_size=1", "train.learning_rate=1e-2")
    run_job(cfg, flt, progress=False)
    scored = rows(flt / "round-01" / "pool_scores.jsonl")
    assert [s["id"] for s in scored] == ids[WARM : WARM + 12]
    job = Job(cfg, flt, progress=False)
    job.load()
    pool = [s for s in iter_samples(load_data(str(world["data"]), split="pool", task="math")) if s.id in
            {r["id"] for r in scored}]
    task = get_task("math")
    col = "loss(answer=reference)"
    warmed = Loss(answer="reference").score(pool, ScoringContext(student=job.student_after(0), task=task))
    cold = Loss(answer="reference").score(pool, ScoringContext(student=job.base, task=task))
    np.testing.assert_allclose([s[col] for s in scored], warmed, rtol=1e-5)
    assert not np.allclose(warmed, cold, rtol=1e-3)


def test_the_warm_up_must_fit_the_pool(world, tmp_path) -> None:
    out = tmp_path / "run"
    with pytest.raises(AcqsynthError, match="data.warmup is 999 but the pool split has only 40 rows"):
        run_job(config(world, out, "strategy=random", "data.warmup=999"), out, progress=False)
    with pytest.raises(AcqsynthError, match="data.warmup"):
        config(world, out, "data.warmup=-1")
