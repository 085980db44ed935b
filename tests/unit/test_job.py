"""`acqsynth run` end to end on a tiny random student and the scripted generator: every strategy,
the budget, resuming, and the run directory's contents."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scripted_generator import SCRIPTED, write_problems
from tiny import make_tiny_model

from acqsynth.config import load_config
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.run.config import RunConfig
from acqsynth.run.job import run_job, samples_this_round
from acqsynth.run.summary import RunSummary


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("job")
    data = write_problems(root / "apples.jsonl")
    return {"root": root, "data": data, "model": make_tiny_model(root / "tiny")}


def config(world: dict[str, Path], out: Path, *overrides: str) -> RunConfig:
    base = [
        f"output={out}", f"data.name={world['data']}", "data.task=math", "data.seeds=null", "data.eval_n=6",
        f"student.model={world['model']}", "student.batch_size=4", f"generator.model={SCRIPTED}",
        "generator.embedder=null", "generator.hygiene.embedding_threshold=null",
        "generator.hygiene.decontam_embedding_threshold=null", "generator.max_new_tokens=64",
        "selection.answer_max_new_tokens=6", "budget.samples=6", "budget.generated=40",
        "train.epochs=1", "train.batch_size=4", "train.learning_rate=1e-3", "eval.max_new_tokens=6",
        "eval.loglik=false", "eval.batch_size=4",
    ]
    return load_config(RunConfig, None, [*base, *overrides])


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_samples_this_round_spreads_the_budget() -> None:
    assert [samples_this_round(10, used, left) for used, left in [(0, 3), (4, 2), (7, 1), (10, 1)]] == [4, 3, 3, 0]


def test_active_loop_end_to_end(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run_job(config(world, out, "strategy=active", "rounds=2"), out, progress=False)
    assert summary.samples == 6 and summary.unique_ids
    assert summary.generated <= 40
    assert [r.round for r in summary.rounds] == [0, 1, 2]
    assert [r.new_samples for r in summary.rounds] == [0, 3, 3]
    for r in (1, 2):
        d = out / f"round-{r:02d}"
        seeds = rows(d / "seed_scores.jsonl")
        picked = [s for s in seeds if s["selected"]]
        assert len(picked) == 3
        # the selected seeds are the three highest-scoring by the student's loss on its own answer
        scores = np.array([s["loss"] for s in seeds])  # loss(answer=own) is written as column "loss"
        assert sorted(s["loss"] for s in picked) == sorted(np.sort(scores)[-3:].tolist())
        # every new sample was written from a selected seed
        picked_ids = {s["id"] for s in picked}
        for s in rows(d / "data.jsonl"):
            meta = s["metadata"] if isinstance(s["metadata"], dict) else json.loads(s["metadata"])
            assert meta["seed_id"] in picked_ids
        assert (d / "adapter" / "adapter_model.safetensors").exists()
        assert (d / "round.json").exists() and (d / "eval.jsonl").exists()
    data = rows(out / "data.jsonl")
    assert len(data) == 6 and len({r["id"] for r in data}) == 6
    # round 2 trains on round 1's samples too
    assert rows(out / "round-02" / "data.jsonl")[0]["id"] not in {r["id"] for r in rows(out / "round-01" / "data.jsonl")}
    assert (out / "report.md").read_text().startswith("# active:")
    assert (out / "accuracy.png").stat().st_size > 1000
    assert (out / "config.yaml").exists()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["accuracy_after"]["n"] == 6
    # metrics.json is the typed summary's dict, its keys in the order they always had
    assert list(metrics) == [
        "strategy", "student", "generator", "transfer", "data", "budget", "samples", "unique_ids", "generated",
        "teacher_tokens", "accuracy_before", "accuracy_after", "forgetting_before", "forgetting_after",
        "stop_reason", "wall_s_this_invocation", "seeds", "rounds",
    ]
    assert json.loads(json.dumps(summary.to_dict())) == metrics
    # without a warm start (data.warmup 0) round 0 is the untrained student and records no warm-up
    assert all("warmup" not in r for r in metrics["rounds"]) and not (out / "round-00" / "warmup.jsonl").exists()
    assert RunSummary.from_dict(metrics).to_dict() == metrics
    # every seed the run used: per round, selection (seed + r), generation (1000 seed + r) and training
    assert metrics["seeds"] == {"run": 0, "selection": [1, 2], "generation": [1, 2], "train": [0, 0],
                                "train_from": "run", "eval": 0}
    assert json.loads((out / "round-02" / "round.json").read_text())["seeds"] == {
        "selection": 2, "generation": 2, "train": 0}


def test_resume_redoes_only_the_unfinished_round(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = config(world, out, "strategy=active", "rounds=2")
    first = run_job(cfg, out, progress=False)
    # as if the process died in round 2 after generating, before the round was recorded
    (out / "round-02" / "round.json").unlink()
    (out / "data.jsonl").unlink()
    second = run_job(cfg, out, progress=False)
    assert [r["id"] for r in rows(out / "data.jsonl")] == [s for s in _ids(first, out)]
    assert second.samples == 6 and second.unique_ids
    stats = json.loads((out / "round-02" / "generation" / "stats.json").read_text())
    usage = next(iter(stats["models"].values()))
    assert usage["calls"] == usage["cached"] > 0  # the redone round paid for no completion twice
    assert second.generated == first.generated


def _ids(summary: RunSummary, out: Path) -> list[str]:
    return [r["id"] for rnd in (1, 2) for r in rows(out / f"round-{rnd:02d}" / "data.jsonl")]


def test_resume_with_another_config_is_refused(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_job(config(world, out, "strategy=static"), out, progress=False)
    with pytest.raises(AcqsynthError, match=r"different config \(differs in: budget\)"):
        run_job(config(world, out, "strategy=static", "budget.samples=7"), out, progress=False)


def test_static_random_and_rejection_hold_the_budget(world: dict[str, Path], tmp_path: Path) -> None:
    static = run_job(config(world, tmp_path / "s", "strategy=static"), tmp_path / "s", progress=False)
    assert static.samples == 6 and len(static.rounds) == 2

    rnd = run_job(config(world, tmp_path / "r", "strategy=random"), tmp_path / "r", progress=False)
    pool = set(load_data(str(world["data"]), split="pool", task="math")["id"])
    assert rnd.samples == 6 and rnd.generated == 0
    assert {r["id"] for r in rows(tmp_path / "r" / "data.jsonl")} <= pool

    rej = run_job(config(world, tmp_path / "j", "strategy=rejection", "oversample=3", "selection.acquisition=loss"),
                  tmp_path / "j", progress=False)
    cands = rows(tmp_path / "j" / "round-01" / "candidate_scores.jsonl")
    assert len(cands) == 18 and sum(c["selected"] for c in cands) == 6
    best = sorted((c["loss"] for c in cands), reverse=True)[:6]
    assert sorted(c["loss"] for c in cands if c["selected"]) == sorted(best)
    assert rej.samples == 6 and rej.generated >= 18  # every candidate counts against the budget


def test_generation_budget_stops_the_run_early(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run_job(config(world, out, "strategy=active", "rounds=2", "budget.generated=3"), out, progress=False)
    assert summary.generated == 3
    assert summary.samples < 6
    assert summary.stop_reason == "budget: generated"
    assert len(rows(out / "data.jsonl")) == summary.samples


def test_full_finetune_saves_the_model(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_job(config(world, out, "strategy=static", "train.method=full", "train.learning_rate=1e-4"), out,
            progress=False)
    assert (out / "round-01" / "model" / "config.json").exists()
    shutil.rmtree(out / "round-01" / "trainer", ignore_errors=True)


def test_mistakes_strategy_writes_from_the_students_wrong_answers(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run_job(config(world, out, "strategy=mistakes", "rounds=2", "generator.template=math-mistakes"), out,
                      progress=False)
    assert summary.samples == 6 and [r.new_samples for r in summary.rounds] == [0, 3, 3]
    for r in (1, 2):
        graded = rows(out / f"round-{r:02d}" / "mistakes.jsonl")
        wrong = {g["id"] for g in graded if not g["correct"]}
        assert wrong, "a tiny random student gets the seeds wrong"
        for s in rows(out / f"round-{r:02d}" / "data.jsonl"):
            meta = s["metadata"] if isinstance(s["metadata"], dict) else json.loads(s["metadata"])
            assert meta["seed_id"] in wrong


def test_mistakes_template_shows_the_students_answer() -> None:
    from acqsynth.generation.prompts import PromptBuilder
    from acqsynth.samples import Sample
    from acqsynth.strategies.mistakes import mistakes_template

    assert mistakes_template(None, "math") == "math-mistakes"
    assert mistakes_template("arithmetic", "math") == "arithmetic-mistakes"
    with pytest.raises(AcqsynthError, match="no built-in template for 'mcqa'"):
        mistakes_template(None, "mcqa")
    seed = Sample(id="s", question="Calculate 2 + 3 =", answer="5", metadata={"student_answer": "#### 7"})
    text = "\n".join(m["content"] for m in PromptBuilder("math", "arithmetic-mistakes")(seed))
    assert 'answered that exercise wrongly: "#### 7"' in text and "Calculate 2 + 3 =" in text


def test_filtered_keeps_the_top_of_the_real_pool(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = run_job(config(world, out, "strategy=filtered", "data.pool=12", "selection.acquisition=loss"), out,
                      progress=False)
    scored = rows(out / "round-01" / "pool_scores.jsonl")
    pool = load_data(str(world["data"]), split="pool", task="math")["id"][:12]
    assert [s["id"] for s in scored] == pool
    best = sorted((s["loss"] for s in scored), reverse=True)[:6]
    assert sorted(s["loss"] for s in scored if s["selected"]) == sorted(best)
    assert summary.samples == 6 and summary.generated == 0 and summary.generator is None
    assert {r["id"] for r in rows(out / "data.jsonl")} == {s["id"] for s in scored if s["selected"]}


def test_quantile_selection_trains_on_one_score_bin(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "run"
    run_job(config(world, out, "strategy=rejection", "oversample=4", "selection.acquisition=loss",
                   "selection.method=quantile", "selection.quantile=1", "selection.quantiles=4"), out, progress=False)
    cands = rows(out / "round-01" / "candidate_scores.jsonl")
    losses = np.sort([c["loss"] for c in cands])
    lowest = losses[: len(cands) // 4]
    picked = [c["loss"] for c in cands if c["selected"]]
    assert len(picked) == min(6, len(lowest))
    assert max(picked) <= lowest.max()


def test_forgetting_suite_before_and_after(world: dict[str, Path], tmp_path: Path) -> None:
    from acqsynth.evaluation.forgetting import FORGETTING_SOURCES

    out = tmp_path / "run"
    summary = run_job(config(world, out, "strategy=random", "data.forgetting=2"), out, progress=False)
    n = 2 * len(FORGETTING_SOURCES)
    before, after = rows(out / "round-00" / "forgetting.jsonl"), rows(out / "forgetting.jsonl")
    assert len(before) == len(after) == n and [r["id"] for r in before] == [r["id"] for r in after]
    assert summary.forgetting_before["n"] == summary.forgetting_after["n"] == n
    assert summary.forgetting_after["mean"] == pytest.approx(np.mean([r["correct"] for r in after]))
    assert all(0 < r["chance"] < 1 for r in after)  # cloze-scored: each row knows its chance level
    marker = json.loads((out / "forgetting.json").read_text())
    assert marker["after_round"] == 1
    # a rerun loads the finished run, including the forgetting score, without evaluating again
    (out / "forgetting.jsonl").unlink()
    again = run_job(config(world, out, "strategy=random", "data.forgetting=2"), out, progress=False)
    assert again.forgetting_after == summary.forgetting_after and not (out / "forgetting.jsonl").exists()


def test_filtered_runs_that_differ_in_budget_score_the_pool_once(world: dict[str, Path], tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    shared = f"cache={tmp_path / 'shared'}"
    a, b = tmp_path / "a", tmp_path / "b"
    run_job(config(world, a, "strategy=filtered", "data.pool=12", "selection.acquisition=loss", shared), a,
            progress=False)
    capsys.readouterr()
    run_job(config(world, b, "strategy=filtered", "data.pool=12", "selection.acquisition=loss", shared,
                   "budget.samples=4"), b, progress=False)
    assert "pool scores from" in capsys.readouterr().err
    first, second = rows(a / "round-01" / "pool_scores.jsonl"), rows(b / "round-01" / "pool_scores.jsonl")
    assert [r["loss"] for r in first] == [r["loss"] for r in second]
    best4 = {r["id"] for r in sorted(first, key=lambda r: -r["loss"])[:4]}
    assert {r["id"] for r in second if r["selected"]} == best4


def _adapter(run: Path, r: int = 1) -> dict:
    from safetensors.torch import load_file

    return load_file(run / f"round-{r:02d}" / "adapter" / "adapter_model.safetensors")


def _same(a: dict, b: dict) -> bool:
    import torch

    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_run_seed_drives_training_unless_train_seed_is_set(world: dict[str, Path], tmp_path: Path) -> None:
    derived, pinned_same, pinned_other, four = (tmp_path / n for n in ("derived", "same", "other", "four"))
    first = run_job(config(world, derived, "strategy=random", "seed=3"), derived, progress=False)
    assert first.seeds == {"run": 3, "selection": [4], "generation": [3001], "train": [3],
                           "train_from": "run", "eval": 0}
    assert json.loads((derived / "round-01" / "round.json").read_text())["train"]["seed"] == 3
    assert json.loads((derived / "round-01" / "adapter" / "acqsynth_train.json").read_text())["seed"] == 3
    assert load_config(RunConfig, derived / "config.yaml").train.seed is None  # the config says "derived"
    # deriving the training seed from seed 3 trains exactly as train.seed=3 does ...
    same = run_job(config(world, pinned_same, "strategy=random", "seed=3", "train.seed=3"), pinned_same,
                   progress=False)
    assert same.seeds["train"] == [3] and same.seeds["train_from"] == "train.seed"
    assert _same(_adapter(derived), _adapter(pinned_same))
    # ... and an explicit train.seed wins: the same data (seed 3), another training
    other = run_job(config(world, pinned_other, "strategy=random", "seed=3", "train.seed=7"), pinned_other,
                    progress=False)
    assert other.seeds["train"] == [7] and other.seeds["selection"] == [4]
    assert [r["id"] for r in rows(pinned_other / "data.jsonl")] == [r["id"] for r in rows(derived / "data.jsonl")]
    assert not _same(_adapter(derived), _adapter(pinned_other))
    # another run seed: other data and another training seed
    run_job(config(world, four, "strategy=random", "seed=4"), four, progress=False)
    assert json.loads((four / "metrics.json").read_text())["seeds"]["train"] == [4]
    assert not _same(_adapter(derived), _adapter(four))


def test_a_run_started_with_a_training_seed_keeps_it_when_resumed(world: dict[str, Path], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A run from before run seeds drove training saved train.seed: 0 (then the default). Resumed with a
    config that leaves train.seed unset, it must go on training with 0, not switch to its run seed."""
    out = tmp_path / "run"
    run_job(config(world, out, "strategy=active", "rounds=2", "seed=3", "train.seed=0"), out, progress=False)
    before = _adapter(out, 2)
    # as such a run looks when killed in round 2: round 1's record has no seeds, config.yaml says 0
    (out / "round-02" / "round.json").unlink()
    (out / "metrics.json").unlink()
    r1 = json.loads((out / "round-01" / "round.json").read_text())
    del r1["seeds"]
    (out / "round-01" / "round.json").write_text(json.dumps(r1))
    capsys.readouterr()
    resumed = run_job(config(world, out, "strategy=active", "rounds=2", "seed=3"), out, progress=False)
    assert "resuming with train.seed 0, the training seed this run started with" in capsys.readouterr().err
    assert resumed.seeds == {"run": 3, "selection": [4, 5], "generation": [3001, 3002], "train": [0, 0],
                             "train_from": "train.seed", "eval": 0}
    assert _same(before, _adapter(out, 2))  # round 2 trained again exactly as it first did
    assert load_config(RunConfig, out / "config.yaml").train.seed == 0
    with pytest.raises(AcqsynthError, match=r"different config \(differs in: train\)"):
        run_job(config(world, out, "strategy=active", "rounds=2", "seed=3", "train.seed=5"), out, progress=False)


def test_resume_compares_training_seeds_resolved(tmp_path: Path) -> None:
    """A run saved with train.seed unset (derived) trains with its seed: resuming it with that seed set
    explicitly is the same run, with another seed a different one; unset stays unset."""
    from acqsynth.config import save_config
    from acqsynth.run.job import _check_resume

    save_config(load_config(RunConfig, None, ["seed=3"]), tmp_path / "config.yaml")
    assert _check_resume(tmp_path, load_config(RunConfig, None, ["seed=3"])).train.seed is None
    assert _check_resume(tmp_path, load_config(RunConfig, None, ["seed=3", "train.seed=3"])).train_seed == 3
    with pytest.raises(AcqsynthError, match=r"differs in: train\)"):
        _check_resume(tmp_path, load_config(RunConfig, None, ["seed=3", "train.seed=0"]))
    with pytest.raises(AcqsynthError, match=r"differs in: seed, train\)"):
        _check_resume(tmp_path, load_config(RunConfig, None, ["seed=4"]))
