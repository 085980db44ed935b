"""`acqsynth generate` end to end on the bundled GSM8K seeds with a scripted generator (a stand-in
for a model; the pipeline is under test): outputs, clear errors, and SIGKILL midway then resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from acqsynth.cli.commands import main
from acqsynth.samples import read_samples

pytestmark = pytest.mark.integration
SCRIPTED = str(Path(__file__).parents[1] / "scripted_generator.py") + ":make"


def args(out: Path, *extra: str) -> list[str]:
    return ["generate", "--generator", SCRIPTED, "--data", "gsm8k", "--seeds", "20", "--num-samples", "30",
            "--batch-size", "2", "--no-embedding-hygiene", "--quiet", "--output", str(out), *extra]


def test_generate_writes_samples_rejections_and_stats(tmp_path, capsys):
    assert main(args(tmp_path / "out", "--label", "self-consistency", "--answer-model", SCRIPTED, "--k", "4")) == 0
    out = capsys.readouterr().out
    assert "accepted 30 of" in out and "unclosed tag <reasoning>" in out
    samples = read_samples(tmp_path / "out" / "samples.jsonl")
    stats = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert len(samples) == 30 and stats["accepted"] == 30 and stats["label"]["agreement_mean"] == 0.75
    assert {json.loads(m)["seed_id"].split("/")[0] for m in samples["metadata"]} == {"gsm8k"}
    assert stats["hygiene_removed"] and stats["cache"]["generator_misses"] == stats["generated"]
    assert json.loads((tmp_path / "out" / "config.json").read_text())["decontaminate"] == ["eval:gsm8k@eval"]


def test_generate_errors_are_clear(tmp_path, capsys):
    assert main(args(tmp_path / "o", "--label", "self-consistency")) == 2
    assert "needs --answer-model" in capsys.readouterr().err
    assert main(["generate", "--generator", SCRIPTED, "--task", "poetry", "--output", str(tmp_path / "p")]) == 2
    assert "unknown task 'poetry'" in capsys.readouterr().err.lower()
    assert main(["generate", "--generator", "nope.py:make", "--data", "gsm8k", "--output", str(tmp_path / "q")]) == 2
    assert "no such generator file" in capsys.readouterr().err


def _cli(out: Path, env: dict[str, str]) -> subprocess.Popen:
    code = "import sys; from acqsynth.cli.commands import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.Popen([sys.executable, "-c", code, *args(out)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_sigkill_midway_then_rerun_finishes_exactly_with_no_duplicates(tmp_path):
    env = {**os.environ, "ACQSYNTH_TEST_GEN_SLEEP": "0.05"}
    ref = _cli(tmp_path / "ref", env)
    assert ref.wait(timeout=300) == 0, ref.stdout.read()
    killed = tmp_path / "killed"
    proc = _cli(killed, env)
    deadline = time.time() + 120
    while time.time() < deadline:  # kill once some, but not all, samples are accepted
        stats = killed / "stats.json"
        if stats.exists() and 8 <= json.loads(stats.read_text())["accepted"] < 30:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = json.loads((killed / "stats.json").read_text())
    assert partial["accepted"] < 30 and partial["stop_reason"] == "running"
    rerun = _cli(killed, env)
    output = rerun.communicate(timeout=300)[0]
    assert rerun.returncode == 0, output
    stats = json.loads((killed / "stats.json").read_text())
    samples = read_samples(killed / "samples.jsonl")
    assert len(samples) == 30 and len(set(samples["id"])) == 30 and len(set(samples["question"])) == 30
    assert stats["cache"]["generator_hits"] >= partial["generated"] > 0
    assert f"from the cache: {stats['cache']['generator_hits']} generator prompts" in output
    for name in ("samples.jsonl", "rejected.jsonl"):  # identical to the uninterrupted run
        assert (killed / name).read_text() == (tmp_path / "ref" / name).read_text()
    lines = (killed / "cache" / "generator.jsonl").read_text().splitlines()
    assert len(lines) == len({json.loads(line)["key"] for line in lines})  # no torn or doubled records
