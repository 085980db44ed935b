"""Crash consistency of the three long-running commands, through the real CLI in subprocesses.

`acqsynth generate`, `acqsynth run` and `acqsynth experiment` are SIGKILLed (the whole process group)
at many points -- once at a random moment of an uninterrupted run's duration, then each time a
progress file shows the next stage was reached, after a seeded random delay -- and rerun until they
finish: 9 + 7 + 7 kill points. The final outputs must equal an uninterrupted run's: nothing lost,
nothing doubled. Among the kills of `generate` and `run` is one Ctrl-C (SIGINT to the process group,
as a terminal sends it): the command must stop within seconds with status 130, leave no torn file,
and print the command that resumes it.

Tiny random student, scripted generator (a deterministic stand-in for a model), one torch thread.
"""

from __future__ import annotations

import json
import os
import random
import re
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from scripted_generator import SCRIPTED, write_problems

pytestmark = pytest.mark.integration

TESTS = Path(__file__).parents[1]
GENERATOR = str(TESTS / "scripted_generator.py") + ":make"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "ACQSYNTH_TEST_GEN_SLEEP": "0.02",
       "PYTHONPATH": os.pathsep.join([str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])])}
MAX_ATTEMPTS = 15
"""A rerun loop gives up after this many starts, so a resume bug cannot hang the suite."""
WAIT_S = 180.0
"""The longest wait for one stage of a run, or for a run to finish."""
VOLATILE = {"wall_s", "wall_s_this_invocation", "seconds", "tokens_per_s", "rows_per_s", "cached",
            "fresh_completion_tokens", "cache", "saved"}
"""Fields that measure time, or what came from the cache in the last invocation, or name the
run directory: they legitimately differ between a resumed run and an uninterrupted one."""


# ---------------------------------------------------------------- running the CLI
@dataclass
class Point:
    """An interruption: once `reached(started)` holds (`started`: when this start began, epoch seconds),
    wait a random time between `low` and `high` seconds, then send `sig` (SIGKILL to the process group;
    SIGINT to it is Ctrl-C in a terminal)."""

    reached: Callable[[float], bool]
    high: float
    low: float = 0.0
    sig: signal.Signals = signal.SIGKILL


class Launcher:
    """Starts `python -m acqsynth.cli ...` in its own session (own process group), logs each start to a
    file, and kills whatever is still running at teardown (only the processes it started)."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen] = []

    def start(self, args: list[str], name: str) -> tuple[subprocess.Popen, Path]:
        log = self.logs / f"{name}-{len(self.procs):02d}.log"
        with log.open("w") as f:
            proc = subprocess.Popen([sys.executable, "-m", "acqsynth.cli", *args], env=ENV, stdout=f,
                                    stderr=subprocess.STDOUT, start_new_session=True,
                                    preexec_fn=_default_sigint)
        self.procs.append(proc)
        return proc, log

    def finish(self, args: list[str], name: str) -> float:
        """Run to the end; return the wall time."""
        t0 = time.perf_counter()
        proc, log = self.start(args, name)
        rc = proc.wait(timeout=WAIT_S * 2)
        assert rc == 0, log.read_text()[-4000:]
        return time.perf_counter() - t0

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def _default_sigint() -> None:
    """The child takes Ctrl-C as a terminal's foreground job would, even when the test runner
    was started with SIGINT ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    lau = Launcher(tmp_path_factory.mktemp("logs"))
    yield lau
    lau.close()


def _wait(reached: Callable[[float], bool], started: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while not reached(started) and proc.poll() is None:
        assert time.monotonic() < deadline, "the run never reached the kill point"
        time.sleep(0.01)


def crash_until_done(launcher: Launcher, args: list[str], out: Path, points: list[Point], name: str,
                     seed: int) -> int:
    """Start `args` once per point and interrupt it there, then run it to the end; return how many
    SIGKILLs landed (the process was still running). Every SIGINT point must land (see
    `check_ctrl_c`). Bounded by MAX_ATTEMPTS starts."""
    rng = random.Random(seed)
    landed = interrupted = 0
    for attempt in range(MAX_ATTEMPTS):
        point = points[attempt] if attempt < len(points) else None
        began = time.time()
        proc, log = launcher.start(args, name)
        if point is not None:
            _wait(point.reached, began, proc)
            time.sleep(rng.uniform(point.low, point.high))
            if proc.poll() is None:
                if point.sig == signal.SIGINT:
                    check_ctrl_c(proc, log, args, out, began)
                    interrupted += 1
                else:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=60)
                    landed += 1
                continue
        rc = proc.wait(timeout=WAIT_S * 2)
        assert rc == 0, log.read_text()[-4000:]
        print(f"{name}: {landed} SIGKILLs and {interrupted} Ctrl-C landed in {attempt + 1} starts")
        assert interrupted == sum(p.sig == signal.SIGINT for p in points), "the run ended before its Ctrl-C"
        return landed
    raise AssertionError(f"{name} did not finish in {MAX_ATTEMPTS} starts")


def check_ctrl_c(proc: subprocess.Popen, log: Path, args: list[str], out: Path, began: float) -> None:
    """Ctrl-C (SIGINT to the process group, as a terminal sends it): the run stops within seconds with
    exit status 130, says how to resume, and leaves no torn or temporary file of its own."""
    os.killpg(proc.pid, signal.SIGINT)
    t0 = time.monotonic()
    rc = proc.wait(timeout=60)
    text = log.read_text()
    assert rc == 130, text[-4000:]
    assert time.monotonic() - t0 < 10, "Ctrl-C took too long to stop the run"
    assert "acqsynth: interrupted" in text and "rerun the same command to resume" in text, text[-2000:]
    assert f"\n  acqsynth {shlex.join(args)}\n" in text, text[-2000:]
    assert "Traceback" not in text, text[-4000:]
    no_torn_files(out, began)


def random_point(rng: random.Random, total_s: float) -> Point:
    """A SIGKILL at a random moment of an uninterrupted run's duration (from the start)."""
    t = rng.uniform(0.15, 0.9) * total_s
    return Point(lambda started: True, t, t)


# ---------------------------------------------------------------- reading and comparing outputs
def exists(root: Path, pattern: str, fresh: bool = False) -> Callable[[float], bool]:
    """Whether a file matching `pattern` (a glob under `root`) exists yet; with `fresh`, one written since
    the start (the file an earlier start left does not count: the new process may not be in `main` yet)."""
    return lambda started: any(not fresh or p.stat().st_mtime >= started for p in root.glob(pattern))


def json_field_at_least(path: Path, key: str, n: int) -> Callable[[float], bool]:
    """Whether the JSON file at `path`, rewritten since the start, has `key` >= `n` (a file left by an
    earlier start does not count: the new process may not even have reached `main` yet)."""
    def reached(started: float) -> bool:
        try:
            return path.stat().st_mtime >= started and json.loads(path.read_text())[key] >= n
        except (OSError, ValueError, KeyError):
            return False
    return reached


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def steady(obj: Any) -> Any:
    """`obj` without VOLATILE fields, at any depth."""
    if isinstance(obj, dict):
        return {k: steady(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [steady(v) for v in obj]
    return obj


def same_cache(a: Path, b: Path) -> None:
    """The completion caches hold the same records, each exactly once, none torn."""
    for name in sorted(p.name for p in a.glob("*.jsonl")):
        keys = [json.loads(line)["key"] for line in lines(b / name)]
        assert len(keys) == len(set(keys)), f"{name}: a completion was cached twice"
        assert set(keys) == {json.loads(line)["key"] for line in lines(a / name)}, f"{name}: other completions"


def no_torn_files(root: Path, since: float) -> None:
    """Every JSON and JSONL file under `root` parses whole, and no temporary file made after `since`
    (by the interrupted process; a SIGKILLed one may leave its own) is left."""
    for p in root.rglob("*"):
        assert not (p.name.endswith(".tmp") and p.stat().st_mtime >= since), f"left behind: {p}"
        if p.suffix == ".json":
            json.loads(p.read_text())
        elif p.suffix == ".jsonl":
            text = p.read_text()
            assert not text or text.endswith("\n"), f"torn last line in {p}"
            for line in text.splitlines():
                json.loads(line)


def same_generate(a: Path, b: Path) -> None:
    ref, got = json.loads((a / "stats.json").read_text()), json.loads((b / "stats.json").read_text())
    assert lines(b / "samples.jsonl") == lines(a / "samples.jsonl")
    ids = [json.loads(line)["id"] for line in lines(b / "samples.jsonl")]
    assert len(ids) == len(set(ids)) == ref["accepted"], "a sample was lost or doubled"
    assert Counter(lines(b / "rejected.jsonl")) == Counter(lines(a / "rejected.jsonl"))
    assert lines(b / "rejected.jsonl") == lines(a / "rejected.jsonl")
    assert steady(got) == steady(ref)
    assert got["cache"]["generator_hits"] > 0, "the rerun replayed nothing from the cache"
    assert got["cache"]["generator_hits"] + got["cache"]["generator_misses"] == ref["cache"]["generator_misses"]
    same_cache(a / "cache", b / "cache")


def same_run(a: Path, b: Path, cache: bool = True) -> None:
    """Equal data, per-round outputs (scores, samples, evaluations, the trained adapters byte for
    byte) and metrics apart from timings; and the completion cache, unless it is shared elsewhere."""
    assert lines(b / "data.jsonl") == lines(a / "data.jsonl")
    ids = [json.loads(line)["id"] for line in lines(b / "data.jsonl")]
    assert len(ids) == len(set(ids)), "a training sample was doubled"
    ref, got = json.loads((a / "metrics.json").read_text()), json.loads((b / "metrics.json").read_text())
    assert got["accuracy_after"] == ref["accuracy_after"] and got["accuracy_before"] == ref["accuracy_before"]
    assert steady(got) == steady(ref)
    rounds = sorted(p.name for p in a.glob("round-*"))
    assert rounds == sorted(p.name for p in b.glob("round-*"))
    for r in rounds:
        for name in ("data.jsonl", "eval.jsonl", "seed_scores.jsonl", "generation/samples.jsonl",
                     "generation/rejected.jsonl", "adapter/adapter_model.safetensors"):
            if (a / r / name).exists():
                assert (b / r / name).read_bytes() == (a / r / name).read_bytes(), f"{r}/{name} differs"
    if cache:
        same_cache(a / "cache", b / "cache")


# ---------------------------------------------------------------- generate
def generate_args(out: Path) -> list[str]:
    return ["generate", "--generator", GENERATOR, "--data", "gsm8k", "--seeds", "20", "--num-samples", "30",
            "--batch-size", "2", "--label", "self-consistency", "--answer-model", GENERATOR, "--k", "4",
            "--no-embedding-hygiene", "--quiet", "--output", str(out)]


@pytest.mark.timeout(600)
def test_generate_killed_and_interrupted_at_many_points_resumes_to_the_same_output(
    launcher: Launcher, tmp_path: Path
) -> None:
    ref, out = tmp_path / "ref", tmp_path / "killed"
    wall = launcher.finish(generate_args(ref), "generate-ref")
    rng = random.Random(11)
    stats = out / "stats.json"
    k = sorted(rng.sample(range(1, 27), 8))
    points = [random_point(rng, wall)] + [Point(json_field_at_least(stats, "accepted", n), 0.15) for n in k[:4]]
    points.append(Point(json_field_at_least(stats, "accepted", k[4]), 0.0, sig=signal.SIGINT))
    points += [Point(json_field_at_least(stats, "accepted", n), 0.15) for n in k[4:]]
    landed = crash_until_done(launcher, generate_args(out), out, points, "generate", seed=1)
    assert landed >= 8, f"only {landed} of 9 SIGKILLs landed"
    same_generate(ref, out)


# ---------------------------------------------------------------- run
def run_args(data: Path, tiny: Path, out: Path) -> list[str]:
    """Two rounds of the active loop: score the seeds, generate, train a LoRA adapter, evaluate."""
    return [
        "run", "--quiet", "strategy=active", f"data.name={data}", "data.task=math", "data.seeds=null",
        "data.eval_n=6", "data.warmup=0", "data.pool=null",
        f"student.model={tiny}", f"generator.model={SCRIPTED}", "generator.embedder=null",
        "generator.hygiene.embedding_threshold=null", "generator.hygiene.decontam_embedding_threshold=null",
        "generator.batch_size=2", "generator.template=null", "generator.label.method=keep",
        "selection.answer_max_new_tokens=6", "budget.samples=8", "budget.generated=40", "rounds=2",
        "train.epochs=1", "train.batch_size=4", "train.learning_rate=1e-3", "eval.max_new_tokens=6",
        "eval.loglik=false", f"output={out}",
    ]


@pytest.mark.timeout(900)
def test_run_killed_and_interrupted_at_many_points_resumes_to_the_same_output(
    launcher: Launcher, tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = write_problems(tmp_path / "apples.jsonl")
    ref, out = tmp_path / "ref", tmp_path / "killed"
    wall = launcher.finish(run_args(data, tiny_model_dir, ref), "run-ref")
    points = [
        random_point(random.Random(12), wall),
        Point(exists(out, "round-00/round.json"), 0.3),  # round 1 starting: the student scores the seeds
        Point(exists(out, "round-01/generation/stats.json"), 0.2),  # generating
        Point(exists(out, "round-01/data.jsonl", fresh=True), 0.0, sig=signal.SIGINT),  # Ctrl-C while training
        Point(exists(out, "round-01/data.jsonl", fresh=True), 0.5),  # training (round 1 is redone)
        Point(exists(out, "round-01/adapter"), 0.1),  # adapter saved, evaluating
        Point(exists(out, "round-02/data.jsonl"), 0.3),  # round 2 training
        Point(exists(out, "round-02/round.json"), 0.1),  # the final data, report and metrics
    ]
    landed = crash_until_done(launcher, run_args(data, tiny_model_dir, out), out, points, "run", seed=2)
    assert landed >= 6, f"only {landed} of 7 SIGKILLs landed"
    same_run(ref, out)


# ---------------------------------------------------------------- experiment
def experiment_args(tmp: Path, tiny: Path, out: Path) -> list[str]:
    """A grid of two cells: `active` (two rounds of generation) and `random` (real pool data)."""
    data = write_problems(tmp / "apples.jsonl")
    base = {
        "data": {"name": str(data), "task": "math", "seeds": None, "eval_n": 6},
        "student": {"model": str(tiny), "batch_size": 4},
        "generator": {"model": SCRIPTED, "embedder": None, "max_new_tokens": 64, "batch_size": 2,
                      "hygiene": {"embedding_threshold": None, "decontam_embedding_threshold": None}},
        "selection": {"answer_max_new_tokens": 6},
        "train": {"epochs": 1, "batch_size": 4, "learning_rate": 1e-3},
        "eval": {"max_new_tokens": 6, "loglik": False, "batch_size": 4},
    }
    (tmp / "base.yaml").write_text(yaml.safe_dump(base))
    spec = {"name": "crash", "base": str(tmp / "base.yaml"), "budgets": [4], "seeds": [0], "baseline": "random",
            "generated_per_sample": 5,
            "methods": {"active": {"strategy": "active", "rounds": 2}, "random": {"strategy": "random"}}}
    (tmp / "experiment.yaml").write_text(yaml.safe_dump(spec))
    return ["experiment", str(tmp / "experiment.yaml"), "--quiet", "--output", str(out)]


def same_experiment(a: Path, b: Path) -> None:
    """Equal tables (results apart from timings, items, scores), cells and shared cache."""
    ref, got = pd.read_csv(a / "results.csv"), pd.read_csv(b / "results.csv")
    pd.testing.assert_frame_equal(got.drop(columns="wall_s"), ref.drop(columns="wall_s"))
    for table in ("items", "scores"):
        pd.testing.assert_frame_equal(pd.read_parquet(b / f"{table}.parquet"), pd.read_parquet(a / f"{table}.parquet"))
    for cell in ("active/b0004-s0", "random/b0004-s0"):
        same_run(a / "cells" / cell, b / "cells" / cell, cache=False)  # the cells share the experiment's cache
    same_cache(a / "cache", b / "cache")
    assert (b / "report.md").exists() and (b / "report.html").exists()


@pytest.mark.timeout(900)
def test_experiment_killed_at_many_points_resumes_to_the_same_tables(
    launcher: Launcher, tiny_model_dir: Path, tmp_path: Path
) -> None:
    ref, out = tmp_path / "ref", tmp_path / "killed"
    wall = launcher.finish(experiment_args(tmp_path, tiny_model_dir, ref), "experiment-ref")
    active, rand = out / "cells" / "active" / "b0004-s0", out / "cells" / "random" / "b0004-s0"
    points = [
        random_point(random.Random(13), wall),
        Point(exists(out, "base/*/round-00/round.json"), 0.3),  # handing the shared base evaluation to the cell
        Point(exists(active, "round-01/generation/stats.json"), 0.3),
        Point(exists(active, "round-01/round.json"), 0.3),
        Point(exists(active, "round-02/adapter"), 0.2),
        Point(exists(active, "metrics.json"), 0.5),  # the second cell
        Point(exists(rand, "metrics.json"), 0.3),  # collecting the tables, writing the report
    ]
    landed = crash_until_done(launcher, experiment_args(tmp_path, tiny_model_dir, out), out, points, "experiment",
                              seed=3)
    assert landed >= 6, f"only {landed} of 7 SIGKILLs landed"
    same_experiment(ref, out)


def test_ctrl_c_hint_names_the_timestamped_directory_a_rerun_needs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without an output directory a run goes to runs/run-TIMESTAMP: the hint must name it, or the
    rerun would start afresh in a new one."""
    import acqsynth.run.job
    from acqsynth.cli.commands import main

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(acqsynth.run.job, "run_job", interrupted)
    monkeypatch.chdir(tmp_path)
    assert main(["run", "rounds=1"]) == 130
    assert re.search(r"\n  acqsynth run rounds=1 --output runs/run-\d{8}-\d{6}\n", capsys.readouterr().err)
