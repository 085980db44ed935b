"""`acqsynth experiment` end to end on a tiny random student and the scripted generator: the grid,
resuming, the tidy tables, worker processes that split the cells, and the report files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from scripted_generator import SCRIPTED, write_problems
from tiny import make_tiny_model

from acqsynth.config import load_config
from acqsynth.errors import AcqsynthError
from acqsynth.experiment.grid import ExperimentConfig, cells, run_experiment


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("experiment")
    data = write_problems(root / "apples.jsonl")
    model = make_tiny_model(root / "tiny")
    base = {
        "data": {"name": str(data), "task": "math", "seeds": None, "eval_n": 6},
        "student": {"model": str(model), "batch_size": 4},
        "generator": {"model": SCRIPTED, "embedder": None, "max_new_tokens": 64,
                      "hygiene": {"embedding_threshold": None, "decontam_embedding_threshold": None}},
        "selection": {"answer_max_new_tokens": 6},
        "train": {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3},
        "eval": {"max_new_tokens": 6, "loglik": False, "batch_size": 4},
    }
    (root / "base.yaml").write_text(yaml.safe_dump(base))
    return {"root": root, "base": root / "base.yaml"}


def experiment(world: dict[str, Path], out: Path, **extra: object) -> ExperimentConfig:
    spec = {
        "name": "tiny", "base": str(world["base"]), "budgets": [4], "seeds": [0],
        "methods": {"static": {"strategy": "static"}, "random": {"strategy": "random"}},
        "generated_per_sample": 5, "output": str(out), **extra,
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    return load_config(ExperimentConfig, path)


def test_two_cells_end_to_end_then_resume(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "exp"
    exp = experiment(world, out)
    result = run_experiment(exp, out, progress=False)
    assert result["cells"] == result["done"] == result["ran"] == 2 and not result["missing"]

    results = pd.read_parquet(out / "results.parquet")
    assert sorted(results["method"]) == ["random", "static"]
    assert set(results["budget"]) == {4} and set(results["samples"]) == {4}
    static = results[results["method"] == "static"].iloc[0]
    assert static["generated"] <= 20 and results[results["method"] == "random"].iloc[0]["generated"] == 0
    # the table holds exactly what each cell's run directory measured
    for _, row in results.iterrows():
        metrics = json.loads((out / "cells" / row["method"] / "b0004-s0" / "metrics.json").read_text())
        assert row["accuracy"] == metrics["accuracy_after"]["mean"]
        assert row["accuracy_before"] == metrics["accuracy_before"]["mean"]
    items = pd.read_parquet(out / "items.parquet")
    assert len(items[(items["method"] == "base") & (items["suite"] == "task")]) == 6
    for method in ("static", "random"):
        mine = items[(items["method"] == method) & (items["suite"] == "task")]
        acc = results[results["method"] == method].iloc[0]["accuracy"]
        assert len(mine) == 6 and mine["correct"].mean() == pytest.approx(acc)
    assert (out / "results.csv").exists() and (out / "experiment.json").exists()
    # the untrained student was evaluated once and shared
    assert len(list((out / "base").iterdir())) == 1
    r0 = [json.loads((out / "cells" / m / "b0004-s0" / "round-00" / "round.json").read_text()) for m in ("static", "random")]
    assert r0[0] == r0[1]

    again = run_experiment(exp, out, progress=False)
    assert again["ran"] == 0 and again["done"] == 2

    with pytest.raises(AcqsynthError, match=r"changes 2 cell\(s\) already started: random/b0004-s0 \(budget\)"):
        run_experiment(experiment(world, out, generated_per_sample=3), out, progress=False)
    # a new seed only adds cells; the finished ones are kept; `only` runs some of them now
    with pytest.raises(AcqsynthError, match=r"only: no cell key matches \['nope/\*'\]; keys look like"):
        run_experiment(experiment(world, out, only=["nope/*"]), out, progress=False, config_path="tiny.yaml",
                       overrides=['only=["nope/*"]', "workers=1", "seeds=[0]"])
    commands = json.loads((out / "experiment.json").read_text())["commands"]  # scheduling is not recorded
    assert commands == [f"acqsynth experiment tiny.yaml seeds=[0] --output {out}", f"acqsynth report {out}"]
    some = run_experiment(experiment(world, out, seeds=[0, 1], only=["random/b*-s1"]), out, progress=False)
    assert some["cells"] == 4 and some["ran"] == 1 and some["missing"] == ["static/b0004-s1"]
    more = run_experiment(experiment(world, out, seeds=[0, 1], methods={"random": {"strategy": "random"}},
                                     baseline="random"), out,
                          progress=False)
    assert more["cells"] == 2 and more["ran"] == 0 and more["done"] == 2


def test_report_from_the_tables(world: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from acqsynth.experiment.report import write_experiment_report

    out = tmp_path / "exp"
    run_experiment(experiment(world, out), out, progress=False)
    paths = write_experiment_report(out, tmp_path / "report")
    assert paths["report.md"].read_text().strip() and paths["report.html"].read_text().startswith("<!DOCTYPE html>")
    assert (tmp_path / "report" / "plots" / "accuracy_vs_budget.png").stat().st_size > 1000

    from acqsynth.cli.commands import main

    assert main(["report", str(out)]) == 0 and (out / "report.html").exists()
    cell = out / "cells" / "static" / "b0004-s0"
    (cell / "report.md").unlink()
    assert main(["report", str(cell)]) == 0 and (cell / "report.md").read_text().startswith("# static:")
    assert main(["report", str(tmp_path / "report")]) == 2
    assert "holds neither an experiment (results.parquet) nor a run (metrics.json)" in capsys.readouterr().err


def test_bad_experiment_configs_name_the_problem(world: dict[str, Path], tmp_path: Path) -> None:
    def bad(methods: dict, **extra: object) -> None:
        out = tmp_path / f"e{len(list(tmp_path.iterdir()))}"
        cells(experiment(world, out, methods=methods, baseline="x", **extra), out)

    with pytest.raises(AcqsynthError, match="unknown config key 'methods.x.selection.acqusition'"):
        bad({"x": {"selection.acqusition": "loss"}})
    with pytest.raises(AcqsynthError, match="methods.x: strategy 'nope' is unknown"):
        bad({"x": {"strategy": "nope"}})
    with pytest.raises(AcqsynthError, match=r"methods.x: expected a mapping of run-config keys .* got 'static'"):
        bad({"x": "static"})
    with pytest.raises(AcqsynthError, match=r"methods.x.budget: expected a mapping such as \{generated: 320\}"):
        bad({"x": {"budget": 100}})
    with pytest.raises(AcqsynthError, match=r"selection.method 'quantile' needs selection.quantile in 1..4"):
        bad({"x": {"strategy": "rejection", "selection.method": "quantile"}})
    with pytest.raises(AcqsynthError, match=r"baseline 'static' is not one of the methods \(x\)"):
        cells(experiment(world, tmp_path / "f", methods={"x": {}}), tmp_path / "f")
    with pytest.raises(AcqsynthError, match="method_budgets names methods that are not in methods: y"):
        bad({"x": {}}, method_budgets={"y": [4]})
    with pytest.raises(AcqsynthError, match="seeds must be a non-empty list of distinct"):
        experiment(world, tmp_path / "c", seeds=[1, 1])
    with pytest.raises(AcqsynthError, match=r"contrasts.x: 'y' is not one of the methods \(x\)"):
        bad({"x": {}}, contrasts={"x": "y"})
    with pytest.raises(AcqsynthError, match="contrasts.x: a method cannot be contrasted with itself"):
        bad({"x": {}}, contrasts={"x": "x"})


def test_each_cells_seed_drives_its_training(world: dict[str, Path], tmp_path: Path) -> None:
    grid = cells(experiment(world, tmp_path / "e", seeds=[0, 3]), tmp_path / "e")
    assert sorted((c.seed, c.config.seed, c.config.train.seed, c.config.train_seed) for c in grid) == [
        (0, 0, None, 0), (0, 0, None, 0), (3, 3, None, 3), (3, 3, None, 3)]
    assert {c.seed: c.config.round_seeds(1) for c in grid}[3] == {"selection": 4, "generation": 3001, "train": 3}
    pinned = cells(experiment(world, tmp_path / "p", seeds=[0, 3], overrides={"train.seed": 5}), tmp_path / "p")
    assert {c.config.train_seed for c in pinned} == {5}


def test_cells_that_ran_with_a_fixed_training_seed_keep_it(world: dict[str, Path], tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Before run seeds drove training, every cell ran with train.seed 0. Such cells, published or
    started in the output directory, still count as the grid's (they keep the training seed they ran
    with, and cells.json says so); a grid that pins another training seed refuses them."""
    import shutil

    out = tmp_path / "exp"
    exp = experiment(world, out, seeds=[0, 1], methods={"random": {"strategy": "random"}}, baseline="random")
    run_experiment(exp, out, progress=False)
    pub = tmp_path / "pub"
    pub.mkdir()
    for name in ("results.parquet", "items.parquet", "scores.parquet", "experiment.json"):
        shutil.copy(out / name, pub / name)
    configs = json.loads((out / "cells.json").read_text())
    assert {k: v["train"]["seed"] for k, v in configs.items()} == {"random/b0004-s0": None, "random/b0004-s1": None}
    for v in configs.values():  # as the committed study's cells.json has them
        v["train"]["seed"] = 0
    (pub / "cells.json").write_text(json.dumps(configs))

    fresh = tmp_path / "fresh"
    capsys.readouterr()
    again = run_experiment(experiment(world, fresh, seeds=[0, 1], methods={"random": {"strategy": "random"}},
                                      baseline="random", published=str(pub)), fresh, progress=False)
    assert again["ran"] == 0 and again["done"] == 2 and not (fresh / "cells").exists()
    assert "1 cell(s) keep the training seed they started with, not their own seed" in capsys.readouterr().err
    assert {k: v["train"]["seed"] for k, v in json.loads((fresh / "cells.json").read_text()).items()} == {
        "random/b0004-s0": 0, "random/b0004-s1": 0}
    with pytest.raises(AcqsynthError, match=r"published: the config changes 2 finished cell\(s\).*\(train\)"):
        run_experiment(experiment(world, tmp_path / "g", seeds=[0, 1], methods={"random": {"strategy": "random"}},
                                  baseline="random", overrides={"train.seed": 1}, published=str(pub)),
                       tmp_path / "g", progress=False)

    # a cell started (here: finished) in the output directory with train.seed 0 is kept the same way
    saved = out / "cells" / "random" / "b0004-s1" / "config.yaml"
    saved.write_text(saved.read_text().replace("seed: null", "seed: 0"))
    assert yaml.safe_load(saved.read_text())["train"]["seed"] == 0
    kept = run_experiment(exp, out, progress=False)
    assert kept["ran"] == 0 and kept["done"] == 2
    assert json.loads((out / "cells.json").read_text())["random/b0004-s1"]["train"]["seed"] == 0
    with pytest.raises(AcqsynthError, match=r"changes 2 cell\(s\) already started: random/b0004-s0 \(train\); "
                                            r"random/b0004-s1 \(train\)"):
        run_experiment(experiment(world, out, seeds=[0, 1], methods={"random": {"strategy": "random"}},
                                  baseline="random", overrides={"train.seed": 1}), out, progress=False)


def test_the_committed_study_still_loads_as_published(tmp_path: Path) -> None:
    """docs/results/cpu-study ran with train.seed 0 in all 69 cells, and experiments/cpu-study.yaml pins
    `train.seed: 0` to say so: its grid still carries every cell (none is refused or rerun), each cell's
    config trains with seed 0, so no cell keeps a training seed its config does not name."""
    from acqsynth.experiment.grid import _fixed_train_seeds, load_published

    repo = Path(__file__).resolve().parents[2]
    study, published = repo / "experiments" / "cpu-study.yaml", repo / "docs" / "results" / "cpu-study"
    if not study.exists() or not (published / "cells.json").exists():
        pytest.skip("the committed study is not in this checkout")
    exp = load_config(ExperimentConfig, study, [f"published={published}"])
    grid = cells(exp, tmp_path)
    pub = load_published(exp, grid, tmp_path)
    assert set(pub.results) == {c.key for c in grid} and len(grid) == 69
    assert {v["train"]["seed"] for v in pub.configs.values()} == {0}
    assert {c.config.train.seed for c in grid} == {0} and {c.seed for c in grid} == {0, 1, 2}
    assert _fixed_train_seeds(grid, pub.configs) == []


def test_worker_processes_split_the_cells(world: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "exp"
    experiment(world, out, seeds=[0, 1], workers=2)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "acqsynth.cli", "experiment", str(tmp_path / "exp.yaml"), "--quiet"],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    started = [line for line in proc.stderr.splitlines() if "[acqsynth experiment] cell " in line and "/4:" in line]
    # every cell was run by exactly one of the two processes
    assert sorted(line.split(": ", 1)[1] for line in started) == sorted(
        f"{m}/b0004-s{s}" for m in ("static", "random") for s in (0, 1))
    assert len(pd.read_parquet(out / "results.parquet")) == 4
    assert "report:" in proc.stdout


def test_published_tables_continue_a_grid_without_its_cells(world: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    out = tmp_path / "exp"
    run_experiment(experiment(world, out), out, progress=False)
    pub = tmp_path / "pub"  # what a repository commits: the tables, not the cell directories
    pub.mkdir()
    for name in ("results.parquet", "results.csv", "items.parquet", "items.csv", "scores.parquet", "scores.csv",
                 "cells.json", "experiment.json"):
        shutil.copy(out / name, pub / name)
    assert sorted(json.loads((pub / "cells.json").read_text())) == ["random/b0004-s0", "static/b0004-s0"]

    fresh = tmp_path / "fresh"  # a fresh clone: the seed-0 cells ran elsewhere
    result = run_experiment(experiment(world, fresh, seeds=[0, 1], published=str(pub)), fresh, progress=False,
                            config_path="tiny.yaml", overrides=["seeds=[0,1]", f"published={pub}"])
    assert result["cells"] == result["done"] == 4 and result["ran"] == 2 and not result["missing"]
    assert sorted(p.name for p in (fresh / "cells" / "static").iterdir() if p.is_dir()) == ["b0004-s1"]
    key = ["method", "budget", "seed"]
    old = pd.read_parquet(pub / "results.parquet").sort_values(key).reset_index(drop=True)
    new = pd.read_parquet(fresh / "results.parquet")
    assert len(new) == 4
    carried = new[new["seed"] == 0].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(carried, old, check_dtype=False)
    old_items, new_items = pd.read_parquet(pub / "items.parquet"), pd.read_parquet(fresh / "items.parquet")
    cols = ["method", "budget", "seed", "suite", "item_id", "correct"]
    assert len(new_items[new_items["method"] == "base"]) == len(old_items[old_items["method"] == "base"]) == 6
    for method in ("static", "random"):
        mine = new_items[(new_items["method"] == method) & (new_items["seed"] == 0)][cols].reset_index(drop=True)
        theirs = old_items[old_items["method"] == method][cols].reset_index(drop=True)
        pd.testing.assert_frame_equal(mine, theirs, check_dtype=False)
        assert len(new_items[(new_items["method"] == method) & (new_items["seed"] == 1)]) == 6
    assert len(json.loads((fresh / "cells.json").read_text())) == 4
    for method in ("static", "random"):  # the cell's seed reached its training
        seeds = json.loads((fresh / "cells" / method / "b0004-s1" / "metrics.json").read_text())["seeds"]
        assert seeds["run"] == 1 and seeds["train"] == [1] and seeds["train_from"] == "run"
    commands = json.loads((fresh / "experiment.json").read_text())["commands"]  # a rerun from scratch
    assert commands[0] == f"acqsynth experiment tiny.yaml seeds=[0,1] --output {fresh}"
    # once carried, the rows stay: a rerun there without published= reruns nothing and keeps them
    again = run_experiment(experiment(world, fresh, seeds=[0, 1]), fresh, progress=False)
    assert again["ran"] == 0 and again["done"] == 4
    pd.testing.assert_frame_equal(pd.read_parquet(fresh / "results.parquet"), new)
    # cells finished in the output directory itself win over their published rows
    mine = run_experiment(experiment(world, out, published=str(pub)), out, progress=False)
    assert mine["ran"] == 0 and len(pd.read_parquet(out / "results.parquet")) == 2

    for name in ("results.parquet", "items.parquet", "scores.parquet"):  # CSV alone is enough
        (pub / name).unlink()
    other = tmp_path / "other"
    again = run_experiment(experiment(world, other, published=str(pub)), other, progress=False)
    assert again["ran"] == 0 and again["done"] == 2 and not (other / "cells").exists()
    pd.testing.assert_frame_equal(pd.read_parquet(other / "results.parquet").sort_values(key).reset_index(drop=True),
                                  old, check_dtype=False)
    every = pd.read_parquet(other / "items.parquet")  # the base items too, though no cell ran here
    order = ["method", "seed", "suite", "item_id"]
    pd.testing.assert_frame_equal(every[cols].sort_values(order).reset_index(drop=True),
                                  old_items[cols].sort_values(order).reset_index(drop=True), check_dtype=False)

    with pytest.raises(AcqsynthError, match=r"published: the config changes 2 finished cell\(s\) of .*"
                                            r"random/b0004-s0 \(budget\)"):
        run_experiment(experiment(world, tmp_path / "g", generated_per_sample=3, published=str(pub)),
                       tmp_path / "g", progress=False)
    twice = pd.read_csv(pub / "results.csv")
    pd.concat([twice, twice.iloc[:1]]).to_csv(pub / "results.csv", index=False)
    with pytest.raises(AcqsynthError, match=r"holds 1 cell\(s\) more than once: random/b0004-s0"):
        run_experiment(experiment(world, tmp_path / "j", published=str(pub)), tmp_path / "j", progress=False)
    twice.to_csv(pub / "results.csv", index=False)
    (pub / "cells.json").unlink()
    with pytest.raises(AcqsynthError, match=r"cells.json is missing, so 2 cell\(s\) of .* cannot be checked"):
        run_experiment(experiment(world, tmp_path / "h", published=str(pub)), tmp_path / "h", progress=False)
    with pytest.raises(AcqsynthError, match=r"published: no results.parquet or results.csv in .*nothing"):
        run_experiment(experiment(world, tmp_path / "i", published=str(tmp_path / "nothing")), tmp_path / "i",
                       progress=False)


def test_a_grid_needing_an_uninstalled_model_is_refused_before_any_cell(
    world: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acqsynth.models import aliases

    present = aliases.alias_files
    monkeypatch.setattr(aliases, "alias_files", lambda name: None if name == "qwen2.5-coder-0.5b-instruct" else present(name))
    out = tmp_path / "exp"
    methods = {
        "static": {"strategy": "static"},
        "qwen": {"strategy": "static", "generator.model": "llamacpp:qwen2.5-coder-0.5b-instruct"},
        "random": {"strategy": "random", "generator.model": "qwen2.5-coder-0.5b-instruct"},  # loads no generator
    }
    exp = experiment(world, out, methods=methods, seeds=[0, 1])
    with pytest.raises(AcqsynthError, match=r"not installed: qwen2\.5-coder-0\.5b-instruct \(needed by 2 cell\(s\): "
                       r"qwen/b0004-s0, qwen/b0004-s1\): run `acqsynth models install qwen2.5-coder-0.5b-instruct`"):
        run_experiment(exp, out, progress=False)
    assert not (out / "cells").exists()  # nothing ran
    # a cell that loads the missing alias twice (student and generator) is named once
    twice = {"static": {"strategy": "static", "student.model": "qwen2.5-coder-0.5b-instruct",
                        "generator.model": "llamacpp:qwen2.5-coder-0.5b-instruct"}}  # fmt: skip
    with pytest.raises(AcqsynthError, match=r"\(needed by 1 cell\(s\): static/b0004-s0\)"):
        run_experiment(experiment(world, out, methods=twice), out, progress=False)
    # leaving those cells out runs the rest
    exp = experiment(world, out, methods=methods, seeds=[0], only=["static/*", "random/*"])
    assert run_experiment(exp, out, progress=False)["ran"] == 2
