"""GRPO through `accelerate launch --num_processes 2` on CPU (gloo): the distributed path of TRL and
of our reward and saving code is exercised, not just the single-process one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import make_tiny_model

pytestmark = pytest.mark.integration


def test_grpo_under_accelerate_with_two_cpu_processes(tmp_path: Path) -> None:
    model = make_tiny_model(tmp_path / "tiny")
    out = tmp_path / "out"
    accelerate = Path(sys.executable).with_name("accelerate")
    # `--multi_gpu` picks accelerate's torchrun launcher, which spawns the processes; without a GPU they
    # train on CPU and talk over gloo (`--cpu` would run a single process).
    cmd = [
        str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
        "--dynamo_backend", "no", "-m", "acqsynth.cli", "grpo", "--quiet", f"generator={model}", f"student={model}",
        "data=gsm8k", "prompts=8", "reward=confidence", "group_size=2", "prompts_per_step=2", "max_steps=2",
        "max_completion_length=12", "answer_max_new_tokens=6", "beta=0.01", "embedder=null", f"output={out}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "true"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 2
    # both processes' completions are scored, only the main process writes files
    rows = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 4  # 2 steps x (2 prompts x 2 completions) on the main process
    assert proc.stdout.count("GRPO: 2 steps") == 1  # one report, from the main process
    assert (out / "generator" / "config.json").exists()
