"""experiments/lm_eval_generate_agreement.py, without lm-eval: the local task it writes is valid YAML with
lm-eval's GSM8K patterns intact, the user message is the task's, and the comparison counts what it says."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml

from acqsynth.tasks import get_task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def script():  # noqa: ANN201 - a module
    path = ROOT / "experiments" / "lm_eval_generate_agreement.py"
    spec = importlib.util.spec_from_file_location("lm_eval_generate_agreement", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_the_task_yaml_keeps_lm_evals_gsm8k_patterns(script) -> None:  # noqa: ANN001
    task = yaml.safe_load(script.TASK_YAML.format(task="t", path="/x/items.jsonl", max_new_tokens=32))
    assert task["output_type"] == "generate_until"
    assert task["doc_to_text"] == "{{prompt}}" and task["doc_to_target"] == "{{answer}}"
    assert task["generation_kwargs"] == {"until": [], "do_sample": False, "temperature": 0.0, "max_gen_toks": 32}
    strict, flexible = (f["filter"][0]["regex_pattern"] for f in task["filter_list"])
    assert re.findall(strict, "#### -12.5") == ["-12.5"] and re.findall(strict, "12") == []
    assert [m for g in re.findall(flexible, "I think 3 then 41") for m in g if m][-1] == "41"
    ignore = task["metric_list"][0]["regexes_to_ignore"]
    assert ignore == [",", "\\$", "(?s).*#### ", "\\.$"]
    stripped = "#### 1,234."
    for pattern in ignore:
        stripped = re.sub(pattern, "", stripped)
    assert stripped == "1234"


def test_the_user_message_is_the_tasks_instruction_filled(script) -> None:  # noqa: ANN001
    task = get_task(ROOT / "experiments" / "tasks" / "arithmetic-answer.yaml")
    message = script.user_message(task, {"id": "a", "question": "Calculate 2 + 3 =", "answer": "5"})
    assert message == 'Calculate 2 + 3 =\n\nGive only the final answer, as "#### <answer>".'


def test_compare_counts_accuracy_identity_and_agreement(script) -> None:  # noqa: ANN001
    task = get_task(ROOT / "experiments" / "tasks" / "arithmetic-answer.yaml")
    rows = [
        {"id": "a", "question": "Calculate 2 + 3 =", "answer": "5", "prediction": "#### 5", "correct": True},
        {"id": "b", "question": "Calculate 2 * 3 =", "answer": "6", "prediction": "#### 7", "correct": False},
        {"id": "c", "question": "Calculate 9 / 2 =", "answer": "4.5", "prediction": "#### 4.50", "correct": True},
        {"id": "d", "question": "Calculate 1 + 1 =", "answer": "2", "prediction": "#### 2", "correct": True},
    ]
    theirs = {  # "c": the same text, but lm-eval's string match fails 4.50 where acqsynth's numeric one passes
        "a": {"text": "#### 5", "strict-match": True, "flexible-extract": True},
        "b": {"text": "#### 6", "strict-match": True, "flexible-extract": True},
        "c": {"text": "#### 4.50", "strict-match": False, "flexible-extract": False},
    }  # "d" was not answered (a --limit run): left out of every figure
    got = script.compare(rows, theirs, task)
    assert got["n"] == 3
    assert got["acqsynth"] == pytest.approx(2 / 3) and got["lm_eval_strict"] == pytest.approx(2 / 3)
    assert got["lm_eval_text_acqsynth_grader"] == pytest.approx(1.0)  # b's "#### 6" is right by acqsynth's grader
    assert got["same_text"] == pytest.approx(2 / 3)
    assert got["agree_strict"] == pytest.approx(1 / 3)
    assert got["agree_regraded"] == pytest.approx(2 / 3)
    assert [d["id"] for d in got["disagreements"]] == ["b", "c"]


def test_the_default_round_is_the_cells_last_with_an_adapter(script, tmp_path: Path) -> None:  # noqa: ANN001
    for name in ("round-00", "round-01", "round-02"):
        (tmp_path / name / "adapter").mkdir(parents=True)
    for name in ("round-00", "round-01"):  # round-02 saved no adapter (a cell stopped early)
        (tmp_path / name / "adapter" / "adapter_config.json").write_text("{}")
    assert script.last_round(tmp_path) == 1
    with pytest.raises(SystemExit, match="no round with an adapter"):
        script.last_round(tmp_path / "round-02")
