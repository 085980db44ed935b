"""bench/device_check.py, the GPU device check, runs on this CPU with tiny shapes: a real SFT step, a
real GRPO step (group 4) and batched generation, one JSON line of positive figures; and it needs
nothing of acqsynth (a GPU machine may have only torch, transformers, TRL and peft)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "device_check.py"


def test_the_device_check_runs_tiny_on_cpu(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(SCRIPT), "--tiny"], capture_output=True, text=True, timeout=600,
                          cwd=tmp_path, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert figures["device"] == "cpu" and figures["grpo_group"] == 4
    for key in ("sft_s_per_step", "sft_tokens_per_s", "grpo_s_per_step", "generate_tokens_per_s", "sft_peak_gib"):
        assert figures[key] > 0, key


def test_the_device_check_imports_only_what_a_bare_gpu_machine_has() -> None:
    tree = ast.parse(SCRIPT.read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    third_party = names - set(sys.stdlib_module_names) - {"__future__"}
    assert third_party <= {"torch", "transformers", "trl", "peft", "datasets", "tokenizers"}, third_party
