"""The pool design (docs/experiments.md#the-pool-design): every method of a seed selects from the same
seeded candidate pool (`data.pool_seeded`), `stratified` takes the evaluated items' mix of a metadata
key (`selection.strata`), `filtered-active` rescores what is left of the pool with the retrained
student, and with the new keys at their defaults nothing changes (pool, pool-score cache key)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scripted_generator import SCRIPTED
from test_job import config, rows

from acqsynth.acquisition import Loss, ScoringContext
from acqsynth.config import load_config, to_dict
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.experiment.grid import ExperimentConfig, cells
from acqsynth.locks import claim
from acqsynth.run.config import RunConfig
from acqsynth.run.job import Job, run_job, seeded_pool
from acqsynth.samples import Sample, iter_samples
from acqsynth.selection import allocate
from acqsynth.strategies.filtered import pool_score_path
from acqsynth.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
WARM = 4


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from scripted_generator import problem, write_problems
    from tiny import make_tiny_model

    root = tmp_path_factory.mktemp("pool")
    data = write_problems(root / "apples.jsonl")
    # the same problems with a metadata `kind` whose mix differs between the eval and pool splits
    # (splits depend on the ids alone, so the file with metadata splits as the one without)
    kinds = {"eval": ["a", "a", "b", "c"], "pool": ["a", "b", "b", "b", "c", "c"], "seed": ["a"]}
    kind_of = {i: kinds[name][pos % len(kinds[name])] for name in kinds
               for pos, i in enumerate(load_data(str(data), split=name, task="math")["id"])}
    with (root / "kinds.jsonl").open("w") as f:
        for a in range(5000, 5080):
            q, ans = problem(a)
            kind = kind_of[f"apples-{a}"]
            f.write(json.dumps({"id": f"apples-{a}", "question": q, "answer": str(ans), "metadata": {"kind": kind}}) + "\n")
    return {"root": root, "data": data, "kinds": root / "kinds.jsonl", "model": make_tiny_model(root / "tiny")}


def pool_split(world: dict[str, Path]) -> list[str]:
    return list(load_data(str(world["data"]), split="pool", task="math")["id"])


def pool_of(world: dict[str, Path], tmp: Path, *overrides: str) -> list[str]:
    """The ids of the candidate pool a run with `overrides` draws from (no model is loaded)."""
    return [s.id for s in Job(config(world, tmp / "unused", *overrides), tmp / "unused", progress=False).pool()]


# ---- the seeded pool ------------------------------------------------------------------------------

def test_a_seed_gives_every_method_the_same_pool_and_another_seed_another(world, tmp_path) -> None:
    seeded = ("data.pool=12", "data.pool_seeded=true", f"data.warmup={WARM}")
    methods = [("strategy=random",), ("strategy=filtered", "selection.acquisition=loss"),
               ("strategy=filtered-active", "selection.method=quantile", "selection.quantile=2")]
    pools = {seed: [pool_of(world, tmp_path, *m, *seeded, f"seed={seed}") for m in methods] for seed in (0, 1, 2)}
    split, warm = pool_split(world), set(pool_split(world)[:WARM])
    for seed, same in pools.items():
        assert all(p == same[0] for p in same), f"seed {seed}: the methods got different pools"
        assert len(same[0]) == 12 and not set(same[0]) & warm  # never a warm-up row
        assert same[0] == [i for i in split if i in set(same[0])]  # in the split's order
    assert len({tuple(p[0]) for p in pools.values()}) == 3  # another seed, another pool
    # a larger pool of the same seed holds the smaller one; the draw depends on the ids, not their positions
    assert set(pools[0][0]) <= set(pool_of(world, tmp_path, "data.pool=20", "data.pool_seeded=true",
                                           f"data.warmup={WARM}"))
    samples = [Sample(id=f"x{i}", question="q", answer="1") for i in range(30)]
    assert {s.id for s in seeded_pool(samples, 10, 3)} == {s.id for s in seeded_pool(samples[::-1], 10, 3)}


def test_random_and_filtered_select_from_the_seed_s_pool(world, tmp_path) -> None:
    seeded = ("data.pool=12", "data.pool_seeded=true", f"data.warmup={WARM}", "seed=1", f"cache={tmp_path / 'c'}")
    pool = pool_of(world, tmp_path, *seeded)
    rnd, flt = tmp_path / "random", tmp_path / "filtered"
    run_job(config(world, rnd, "strategy=random", *seeded), rnd, progress=False)
    run_job(config(world, flt, "strategy=filtered", "selection.acquisition=loss(answer=reference)", *seeded), flt,
            progress=False)
    assert {r["id"] for r in rows(rnd / "round-01" / "data.jsonl")} <= set(pool)
    scored = rows(flt / "round-01" / "pool_scores.jsonl")
    assert [r["id"] for r in scored] == pool  # filtered ranked exactly the seed's pool
    assert {r["id"] for r in rows(flt / "round-01" / "data.jsonl")} == {r["id"] for r in scored if r["selected"]}
    # the scores of a seeded pool do not depend on how they are used: a quantile cell reads them back
    q = tmp_path / "quantile"
    run_job(config(world, q, "strategy=filtered", "selection.acquisition=loss(answer=reference)",
                   "selection.method=quantile", "selection.quantile=2", "selection.quantiles=2", *seeded), q, progress=False)
    assert len(list((tmp_path / "c" / "pool-scores").glob("*.jsonl"))) == 1
    col = "loss(answer=reference)"
    assert [r[col] for r in rows(q / "round-01" / "pool_scores.jsonl")] == [r[col] for r in scored]


def test_a_cell_waits_for_a_parallel_cell_scoring_the_same_pool_and_reads_its_scores(world, tmp_path) -> None:
    """Two workers starting loss-based cells of one seed at once score its pool once: the second waits on
    the pool-score cache's lock, then reads what the first wrote instead of scoring again."""
    seeded = ("data.pool=12", "data.pool_seeded=true", f"data.warmup={WARM}", "seed=1", f"cache={tmp_path / 'c'}",
              "strategy=filtered", "selection.acquisition=loss(answer=reference)")
    first = tmp_path / "first"
    run_job(config(world, first, *seeded), first, progress=False)
    [cached] = (tmp_path / "c" / "pool-scores").glob("*.jsonl")
    col = "loss(answer=reference)"
    planted = [{**r, col: float(i)} for i, r in enumerate(rows(cached))]  # scores the student would not give
    cached.unlink()
    second = tmp_path / "second"
    with claim(cached.with_suffix(".lock")) as held:  # a worker still scoring this pool
        assert held
        worker = threading.Thread(target=run_job, args=(config(world, second, *seeded), second),
                                  kwargs={"progress": False})
        worker.start()
        deadline = time.monotonic() + 60
        while not (second / "round-01").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        assert worker.is_alive() and not (second / "round-01" / "pool_scores.jsonl").exists()
        cached.write_text("".join(json.dumps(r) + "\n" for r in planted))  # what the other worker writes
    worker.join(timeout=120)
    assert not worker.is_alive()
    scored = rows(second / "round-01" / "pool_scores.jsonl")
    assert [r[col] for r in scored] == [float(i) for i in range(len(planted))]
    top = {r["id"] for r in planted if r[col] >= len(planted) - 6}  # budget.samples 6: the planted top 6
    assert {r["id"] for r in scored if r["selected"]} == top
    assert {r["id"] for r in rows(second / "round-01" / "data.jsonl")} == top


def test_a_seeded_pool_needs_its_size_and_room_to_draw_it(world, tmp_path) -> None:
    with pytest.raises(AcqsynthError, match="data.pool_seeded draws data.pool rows .* data.pool is not set"):
        config(world, tmp_path, "data.pool_seeded=true")
    n = len(pool_split(world)) - WARM
    with pytest.raises(AcqsynthError, match=f"data.pool is {n + 1} but the pool split has only {n} rows after"):
        pool_of(world, tmp_path, f"data.pool={n + 1}", "data.pool_seeded=true", f"data.warmup={WARM}")


def test_the_defaults_keep_the_first_rows_and_the_pool_score_cache_key(world, tmp_path) -> None:
    split = pool_split(world)
    assert pool_of(world, tmp_path, "data.pool=12", f"data.warmup={WARM}") == split[WARM : WARM + 12]
    assert pool_of(world, tmp_path, "data.pool=12", "seed=5") == split[:12]
    # the pool-score cache key of a run without the new keys is the one it was before them (these digests
    # are those of the code before `data.pool_seeded`, `selection.strata` and `selection.diverse_pool`)
    pool = [Sample(id=f"p{i}", question="q", answer="1") for i in range(5)]
    for overrides, digest in (((), "e0186faf6f55a5bc"), (("data.warmup=4",), "2700fa1bfbb713d0")):
        c = load_config(RunConfig, None, ["strategy=filtered", *overrides])
        ctx = SimpleNamespace(config=c, task_name="math", generation_seed=1, cache_dir=Path("/c"), round=1, earlier=[])
        assert pool_score_path(ctx, pool, ["r"]).name == f"{digest}.jsonl"  # type: ignore[arg-type]


def test_acquisitions_whose_meaning_changed_get_new_pool_score_keys(monkeypatch) -> None:
    """gradient (now the final answer) and diversity-archive (now the nearest-member distance) must not reuse
    scores cached under their old meaning; other acquisitions keep their keys."""
    from acqsynth.strategies import filtered

    pool = [Sample(id=f"p{i}", question="q", answer="1") for i in range(3)]

    def path(acquisition: str) -> str:
        c = load_config(RunConfig, None, ["strategy=filtered", f"selection.acquisition={acquisition}"])
        ctx = SimpleNamespace(config=c, task_name="math", generation_seed=1, cache_dir=Path("/c"), round=1, earlier=[])
        return pool_score_path(ctx, pool, ["r"]).name  # type: ignore[arg-type]

    now = {a: path(a) for a in ("gradient", "0.5*gradient + 0.5*loss", "diversity-archive", "loss(answer=own)")}
    monkeypatch.setattr(filtered, "SCORE_VERSIONS", {})
    before = {a: path(a) for a in now}
    assert [a for a in now if now[a] != before[a]] == ["gradient", "0.5*gradient + 0.5*loss", "diversity-archive"]


# ---- the generated pool ---------------------------------------------------------------------------

GEN = ("data.pool_source=generated", "data.pool=10", f"data.warmup={WARM}")


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per generated pool built (the real generation runs; the calls are only counted)."""
    from acqsynth.run import pool as pool_module

    calls: list[int] = []
    real = pool_module.generate_round

    def counting(*a, **kw):
        calls.append(1)
        return real(*a, **kw)

    monkeypatch.setattr(pool_module, "generate_round", counting)
    return calls


def test_a_generated_pool_is_written_once_per_seed_and_every_method_reads_it(world, tmp_path, built) -> None:
    shared = f"cache={tmp_path / 'c'}"
    methods = [("strategy=random",), ("strategy=filtered", "selection.acquisition=loss"),
               ("strategy=filtered-active", "selection.method=quantile", "selection.quantile=2")]
    pools, loaded = {}, []
    for seed in (0, 1):
        for m in methods:
            job = Job(config(world, tmp_path / "unused", *m, *GEN, shared, f"seed={seed}"), tmp_path / "unused",
                      progress=False)
            job.load()
            pools.setdefault(seed, []).append([s.id for s in job.pool()])
            loaded.append(job._setup is not None)
    assert built == [1, 1]  # one pool per seed, whatever the method
    assert loaded == [True, False, False] * 2  # only the first method of a seed loaded the generator
    for same in pools.values():
        assert all(p == same[0] for p in same)
        assert len(same[0]) == 10 and all(i.startswith("gen-") for i in same[0])  # the generator's samples
    assert pools[0][0] != pools[1][0]
    folders = sorted(p for p in (tmp_path / "c" / "pools").iterdir() if p.is_dir())
    assert len(folders) == 2
    record = json.loads((folders[0] / "pool.json").read_text())
    assert record["samples"] == 10 and record["size"] == 10 and 10 <= record["generated"] <= 200
    # a generated sample is a labelled, parsed sample of the task: the scripted generator's problems
    first = rows(folders[0] / "pool.jsonl")[0]
    assert "apples" in first["question"] or "more" in first["question"]


def test_the_pool_design_with_a_generated_pool_from_one_yaml_resumes(world, tmp_path, built) -> None:
    import yaml

    from acqsynth.experiment.grid import run_experiment

    base = {"data": {"name": str(world["data"]), "task": "math", "seeds": None, "eval_n": 6, "warmup": WARM,
                     "pool": 10, "pool_source": "generated"},
            "student": {"model": str(world["model"]), "batch_size": 4},
            "generator": {"model": SCRIPTED, "embedder": None, "max_new_tokens": 64,
                          "hygiene": {"embedding_threshold": None, "decontam_embedding_threshold": None}},
            "selection": {"answer_max_new_tokens": 6},
            "train": {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3},
            "eval": {"max_new_tokens": 6, "loglik": False, "batch_size": 4}}
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(base))
    out = tmp_path / "exp"
    spec = {"name": "generated pool", "base": str(tmp_path / "base.yaml"), "budgets": [4], "seeds": [0, 1],
            "baseline": "random", "goal_methods": [],
            "methods": {"random": {"strategy": "random"},
                        "loss": {"strategy": "filtered", "selection": {"acquisition": "loss"}}}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(spec))
    exp = load_config(ExperimentConfig, tmp_path / "exp.yaml")
    result = run_experiment(exp, out, progress=False)
    assert result["ran"] == 4 and built == [1, 1]
    pools = {}
    for folder in (out / "cache" / "pools").iterdir():
        if folder.is_dir():
            pools[json.loads((folder / "pool.json").read_text())["seed"]] = {r["id"] for r in rows(folder / "pool.jsonl")}
    assert len(pools) == 2
    for method in ("random", "loss"):
        for seed in (0, 1):
            picked = {r["id"] for r in rows(out / "cells" / method / f"b0004-s{seed}" / "round-01" / "data.jsonl")}
            assert len(picked) == 4 and picked <= pools[seed * 1000]  # from its own seed's pool
    again = run_experiment(exp, out, progress=False)
    assert again["ran"] == 0 and built == [1, 1]


def test_a_generated_pool_needs_its_size(world, tmp_path) -> None:
    with pytest.raises(AcqsynthError, match="data.pool_source is 'generated' but data.pool is not set"):
        config(world, tmp_path, "data.pool_source=generated")
    with pytest.raises(AcqsynthError, match="data.pool_source: unknown pool source 'teacher'"):
        config(world, tmp_path, "data.pool_source=teacher", "data.pool=4")


# ---- stratified by a metadata key, in the eval's mix ----------------------------------------------

def test_stratified_takes_the_evaluated_items_mix_of_the_key(world, tmp_path) -> None:
    data = str(world["kinds"])
    out = tmp_path / "run"
    cfg = config(world, out, f"data.name={data}", "data.eval_n=8", "strategy=filtered", "selection.acquisition=random",
                 "selection.method=stratified", "selection.strata=kind", "budget.samples=9")
    run_job(cfg, out, progress=False)
    ev = [s.metadata["kind"] for s in iter_samples(load_data(data, split="eval", task="math"))][:8]
    pool = [s.metadata["kind"] for s in iter_samples(load_data(data, split="pool", task="math"))]
    mix = Counter(ev)
    assert mix == {"a": 4, "b": 2, "c": 2}  # the eval's mix is 2:1:1, the pool's 1:3:2
    scored = rows(out / "round-01" / "pool_scores.jsonl")
    picked = Counter(r["metadata"]["kind"] for r in scored if r["selected"])
    strata = list(dict.fromkeys(pool))
    caps = [pool.count(k) for k in strata]
    expected = allocate(9, [mix[k] for k in strata], caps)
    assert picked == {k: int(n) for k, n in zip(strata, expected, strict=True) if n}
    assert picked == {"a": 5, "b": 2, "c": 2}  # 9 in 2:1:1 by largest remainders
    # within a stratum the best scores (here: the random acquisition's) were taken
    for kind in mix:
        mine = [r for r in scored if r["metadata"]["kind"] == kind]
        kept = sorted((r["random"] for r in mine if r["selected"]), reverse=True)
        assert kept == sorted((r["random"] for r in mine), reverse=True)[: len(kept)]


def test_stratified_needs_a_key_every_candidate_and_item_has(world, tmp_path) -> None:
    with pytest.raises(AcqsynthError, match=r"'stratified' needs selection.strata: the Sample metadata key"):
        config(world, tmp_path, "strategy=filtered", "selection.method=stratified")
    with pytest.raises(AcqsynthError, match=r"selection.strata \('kind'\) only applies to selection.method "
                                            r"'stratified', not 'top-k'"):
        config(world, tmp_path, "strategy=filtered", "selection.strata=kind")
    out = tmp_path / "run"
    cfg = config(world, out, "strategy=filtered", "selection.acquisition=random", "selection.method=stratified",
                 "selection.strata=kind")
    with pytest.raises(AcqsynthError, match=r"selection.strata 'kind': \d+ of \d+ candidates have no metadata key"):
        run_job(cfg, out, progress=False)


# ---- filtered in rounds -----------------------------------------------------------------------------

def test_filtered_active_retrains_rescores_and_never_reselects(world, tmp_path, trainings) -> None:
    out = tmp_path / "run"
    cfg = config(world, out, "strategy=filtered-active", "rounds=2", "data.pool=12", "data.pool_seeded=true",
                 "selection.acquisition=loss(answer=reference)", "train.batch_size=1", "train.learning_rate=1e-2")
    summary = run_job(cfg, out, progress=False)
    assert [r.new_samples for r in summary.rounds] == [0, 3, 3]
    s1, s2 = (rows(out / f"round-{r:02d}" / "pool_scores.jsonl") for r in (1, 2))
    p1, p2 = ([r["id"] for r in rows(out / f"round-{r:02d}" / "data.jsonl")] for r in (1, 2))
    assert set(p1) == {r["id"] for r in s1 if r["selected"]} and set(p2) == {r["id"] for r in s2 if r["selected"]}
    pool = pool_of(world, tmp_path, "data.pool=12", "data.pool_seeded=true")
    assert [r["id"] for r in s1] == pool
    assert [r["id"] for r in s2] == [i for i in pool if i not in p1]  # the rest of the pool, rescored
    assert not set(p1) & set(p2) and summary.unique_ids
    assert trainings == [p1, p1 + p2]  # round 2's student trained on round 1's picks ...
    job = Job(cfg, out, progress=False)
    job.load()
    rest = [s for s in job.pool() if s.id not in p1]
    col = "loss(answer=reference)"
    task = get_task("math")
    retrained = Loss(answer="reference").score(rest, ScoringContext(student=job.student_after(1), task=task))
    untrained = Loss(answer="reference").score(rest, ScoringContext(student=job.student_after(0), task=task))
    np.testing.assert_allclose([r[col] for r in s2], retrained, rtol=1e-5)  # ... and rescored the rest
    assert not np.allclose(retrained, untrained, rtol=1e-3)
    best = sorted(retrained, reverse=True)[:3]
    assert sorted(r[col] for r in s2 if r["selected"]) == pytest.approx(sorted(best), rel=1e-5)
    # round 2's scores are cached under their own key (they depend on what the student trained on)
    assert len(list((out / "cache" / "pool-scores").glob("*.jsonl"))) == 2


def test_filtered_stays_one_round(world, tmp_path) -> None:
    out = tmp_path / "run"
    summary = run_job(config(world, out, "strategy=filtered", "rounds=2", "data.pool=12",
                             "selection.acquisition=random"), out, progress=False)
    assert [r.new_samples for r in summary.rounds] == [0, 6]


# ---- the study's experiment -------------------------------------------------------------------------

def test_the_pool_study_loads_and_expands_without_running(tmp_path) -> None:
    exp = load_config(ExperimentConfig, ROOT / "experiments" / "pool-2d.yaml")
    grid = cells(exp, tmp_path)
    by_budget = Counter(c.budget for c in grid)
    assert by_budget == {512: 14 * 8, 128: 6 * 4, 32: 2 * 8} and len(grid) == 152
    assert {c.seed for c in grid if c.budget == 512} == set(range(8))
    assert {c.seed for c in grid if c.budget == 128} == set(range(4))
    assert exp.baseline == "random" and exp.goal_gain == 0.02
    assert set(exp.goal_methods) == {"loss", "active-loss", "learnability", "diverse-loss"}
    for c in grid:
        d = c.config.data
        assert (d.name, d.pool, d.pool_seeded, d.warmup, d.eval_n) == ("arithmetic-2d", 2048, True, 32, 1000)
        assert c.config.strategy in ("random", "filtered", "filtered-active", "static", "active", "rejection")
        if c.config.strategy in ("static", "active", "rejection"):  # the generative references: 512 (and 32)
            assert c.config.budget.generated == 6 * 512
            assert c.budget == 512 or (c.budget == 32 and c.method in ("static", "grpo-gen"))
    assert exp.contrasts == {"grpo-gen": "static", "active-loss-gen": "static", "rejection-loss": "static"}
    methods = {c.method: c.config for c in grid}
    assert methods["active-loss"].strategy == "filtered-active" and methods["active-loss"].rounds == 2
    assert (methods["eval-mix"].selection.method, methods["eval-mix"].selection.strata) == ("stratified", "operation")
    assert [methods[f"loss-q{i}"].selection.quantile for i in range(1, 5)] == [1, 2, 3, 4]
    assert {c.key for c in grid if c.method.startswith("loss-q")} == {
        f"loss-q{i}/b0512-s{s}" for i in range(1, 5) for s in range(8)}
    assert not (tmp_path / "cells").exists()  # expanding the grid runs nothing
    # the cells finished so far are committed and still match their configs (a later session continues)
    from acqsynth.experiment.grid import load_published

    published = ROOT / "docs" / "results" / "pool-2d"
    if (published / "cells.json").exists():
        done = set(json.loads((published / "cells.json").read_text()))
        pub = load_published(load_config(ExperimentConfig, ROOT / "experiments" / "pool-2d.yaml",
                                         [f"published={published}"]), grid, tmp_path)
        assert done and set(pub.results) == done


def test_the_pilot_loads_and_expands_without_running(tmp_path) -> None:
    """The headroom gate: random at 512 and 1024 over two seeds, answer-only task, warm start."""
    exp = load_config(ExperimentConfig, ROOT / "experiments" / "pilot-2d.yaml")
    grid = cells(exp, tmp_path)
    assert sorted((c.budget, c.seed) for c in grid) == [(512, 0), (512, 1), (1024, 0), (1024, 1)]
    for c in grid:
        d = c.config.data
        assert (c.config.strategy, d.name, d.warmup, d.eval_n) == ("random", "arithmetic-2d", 32, 1000)
        assert d.task is not None and d.task.endswith("arithmetic-answer.yaml")
    assert not (tmp_path / "cells").exists()
    # the committed pilot cells still match their configs (the study base is frozen, not the main job's)
    from acqsynth.experiment.grid import load_published

    published = ROOT / "docs" / "results" / "pilot-2d"
    pub = load_published(load_config(ExperimentConfig, ROOT / "experiments" / "pilot-2d.yaml",
                                     [f"published={published}"]), grid, tmp_path)
    assert {"random/b0512-s0", "random/b0512-s1"} <= set(pub.results)


def test_budget_seeds_are_checked(tmp_path) -> None:
    methods = {"random": {"strategy": "random"}}
    with pytest.raises(AcqsynthError, match="budget_seeds names budgets no method runs at: 64"):
        ExperimentConfig(methods=methods, baseline="random", budgets=[32], budget_seeds={64: [0]})
    with pytest.raises(AcqsynthError, match=r"budget_seeds.32: expected a non-empty list of distinct seeds"):
        ExperimentConfig(methods=methods, baseline="random", budgets=[32], budget_seeds={32: [1, 1]})
    exp = load_config(ExperimentConfig, None, ["methods={random: {strategy: random}}", "baseline=random",
                                               "budgets=[8, 32]", "seeds=[0, 1, 2]", "budget_seeds.32=[5]"])
    assert [(c.budget, c.seed) for c in cells(exp, tmp_path)] == [(8, 0), (8, 1), (8, 2), (32, 5)]


def test_the_grpo_generator_method_names_what_its_config_writes(tmp_path) -> None:
    """pool-2d's grpo-gen uses the checkpoint `acqsynth grpo experiments/grpo-2d.yaml --output runs/grpo-2d`
    writes; that config loads and its reward is the study's acquisition."""
    from acqsynth.strategies.grpo import GRPOSettings

    settings = load_config(GRPOSettings, ROOT / "experiments" / "grpo-2d.yaml")
    assert settings.data == "arithmetic-2d" and settings.reward == "loss(answer=own)"
    assert "--output runs/grpo-2d" in (ROOT / "experiments" / "grpo-2d.yaml").read_text()
    grid = cells(load_config(ExperimentConfig, ROOT / "experiments" / "pool-2d.yaml"), tmp_path)
    grpo = [c for c in grid if c.method == "grpo-gen"]
    assert len(grpo) == 16 and {c.budget for c in grpo} == {32, 512}
    assert settings.prompts == 32  # trained at 32 prompts: the low->high contrast uses it at 512
    assert {c.config.generator.model for c in grpo} == {"runs/grpo-2d/generator"}


def test_the_transfer_study_shares_the_pool_studys_generations(tmp_path) -> None:
    """Student B's cells train on the very samples student A's do: same generator, seed, prompts and
    cache, so the completion keys agree and generation is paid once."""
    pool = load_config(ExperimentConfig, ROOT / "experiments" / "pool-2d.yaml")
    transfer = load_config(ExperimentConfig, ROOT / "experiments" / "transfer-2d.yaml")
    a = {c.key: c.config for c in cells(pool, tmp_path / "pool")}
    b = {c.key: c.config for c in cells(transfer, tmp_path / "transfer")}
    assert sorted(b) == sorted(f"{m}/b0512-s{s}" for m in ("static", "grpo-gen") for s in range(8))
    assert transfer.baseline == "static" and transfer.goal_methods == ["grpo-gen"] and transfer.goal_gain == 0.02
    for key, cell in b.items():
        assert cell.student.model == "runs/student-b/round-01/model" != a[key].student.model
        assert cell.cache == "runs/pool-2d/cache"
        assert to_dict(cell.generator) == to_dict(a[key].generator)
        for name in ("data", "budget", "train", "eval", "seed", "strategy", "rounds"):
            assert to_dict(cell)[name] == to_dict(a[key])[name], name

