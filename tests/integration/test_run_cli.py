"""`acqsynth run` through the CLI: SIGKILL in the middle of a round and rerun (tiny student, scripted
generator), and the real main job on the embedded SmolLM2 at a small size."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from scripted_generator import SCRIPTED, write_problems
from tiny import make_tiny_model

from acqsynth.cli.commands import main

pytestmark = pytest.mark.integration


def _world(tmp: Path) -> list[str]:
    data = write_problems(tmp / "apples.jsonl")
    model = make_tiny_model(tmp / "tiny")
    return [
        "strategy=active", f"data.name={data}", "data.task=math", "data.seeds=null", "data.eval_n=6",
        "data.warmup=0", "data.pool=null", f"student.model={model}",
        f"generator.model={SCRIPTED}", "generator.embedder=null", "generator.hygiene.embedding_threshold=null",
        "generator.hygiene.decontam_embedding_threshold=null", "generator.batch_size=2", "generator.template=null",
        "generator.label.method=keep",
        "selection.answer_max_new_tokens=6", "budget.samples=12", "budget.generated=60", "rounds=3",
        "train.epochs=1", "train.batch_size=4", "eval.max_new_tokens=6", "eval.loglik=false",
    ]


def _cli(items: list[str], env: dict[str, str]) -> subprocess.Popen:
    code = "import sys; from acqsynth.cli.commands import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, "run", "--quiet", *items], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _ids(out: Path) -> list[str]:
    return [json.loads(line)["id"] for line in (out / "data.jsonl").read_text().splitlines()]


def test_sigkill_in_a_round_then_rerun_keeps_the_budget_exactly(tmp_path: Path) -> None:
    items = _world(tmp_path)
    env = {**os.environ, "ACQSYNTH_TEST_GEN_SLEEP": "0.1", "PYTHONPATH": str(Path(__file__).parents[1])}
    ref = _cli([*items, f"output={tmp_path / 'ref'}"], env)
    assert ref.wait(timeout=600) == 0, ref.stdout.read()

    out = tmp_path / "killed"
    proc = _cli([*items, f"output={out}"], env)
    # kill once round 2 has started generating (its cache has grown past round 1's completions)
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "round-02" / "generation" / "stats.json").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (out / "round-02" / "round.json").exists(), "the kill came too late to test a resume"
    assert (out / "round-01" / "round.json").exists()

    rerun = _cli([*items, f"output={out}"], env)
    assert rerun.wait(timeout=600) == 0, rerun.stdout.read()
    ids = _ids(out)
    assert len(ids) == 12 and len(set(ids)) == 12  # exactly the budget, no duplicates
    assert ids == _ids(tmp_path / "ref")  # the same data as an uninterrupted run
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"] == 12 and metrics["generated"] <= 60
    ref_metrics = json.loads((tmp_path / "ref" / "metrics.json").read_text())
    assert metrics["generated"] == ref_metrics["generated"]  # the redone round is counted once
    stats = json.loads((out / "round-02" / "generation" / "stats.json").read_text())
    assert next(iter(stats["models"].values()))["cached"] > 0  # the redone round replayed from the cache


def test_run_errors_name_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "budget.sampels=3", "--output", str(tmp_path / "x")]) == 2
    assert "unknown config key 'budget.sampels'" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "missing.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["run", "rounds=2", "not-an-override"]) == 2
    assert "is not a key=value override" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # nothing was started


def test_main_job_on_the_embedded_default_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The embedded default config on SmolLM2, shrunk (fewer warm-up rows, candidates, samples and
    evaluation items): the warmed student scores the pool and trains on its choice."""
    out = tmp_path / "main"
    code = main(["run", "--quiet", f"output={out}", "budget.samples=4", "data.warmup=4", "data.pool=12",
                 "data.eval_n=8", "train.epochs=1"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "accuracy before" in printed and "run directory" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["strategy"], metrics["student"], metrics["data"]) == ("filtered", "smollm2-135m-instruct", "arithmetic-2d")
    assert metrics["samples"] == 4 and metrics["unique_ids"] and metrics["warmup"]["samples"] == 4
    scored = [json.loads(line) for line in (out / "round-01" / "pool_scores.jsonl").read_text().splitlines()]
    assert len(scored) == 12 and sum(r["selected"] for r in scored) == 4
    picked = sorted((r for r in scored if r["selected"]), key=lambda r: r["selection_rank"])
    assert [r["learnability"] for r in picked] == sorted((r["learnability"] for r in scored), reverse=True)[:4]
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows[4:]] == [r["id"] for r in picked]  # the warm-up first, then the choice
    assert (out / "round-01" / "adapter" / "adapter_model.safetensors").exists()
    assert (out / "report.md").exists() and (out / "accuracy.png").exists()


def test_main_job_with_generated_data_small(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The default with strategy=active (the README's synthetic variant), shrunk: the student ranks
    seeds, SmolLM2 writes one exercise per chosen seed, labelled by computing it."""
    out = tmp_path / "active"
    code = main(["run", "--quiet", f"output={out}", "strategy=active", "budget.samples=4", "budget.generated=40",
                 "data.warmup=4", "data.seeds=8", "data.eval_n=8", "train.epochs=1", "generator.batch_size=8"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["strategy"] == "active" and 1 <= metrics["samples"] <= 4 and metrics["unique_ids"]
    rows = [json.loads(line) for line in (out / "data.jsonl").read_text().splitlines()]
    metas = [s["metadata"] if isinstance(s["metadata"], dict) else json.loads(s["metadata"]) for s in rows]
    assert [bool(m.get("warmup")) for m in metas[:4]] == [True] * 4  # the warm-up first, then the generated
    for meta in metas[4:]:
        assert meta["label_method"] == "compute"  # labels are the exact values of the expressions
    assert (out / "round-01" / "adapter" / "adapter_model.safetensors").exists()
