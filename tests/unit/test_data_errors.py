"""Every kind of bad input gives one AcqsynthError that names the file, line, field or name at fault."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def test_unknown_dataset_name_lists_the_builtins() -> None:
    with pytest.raises(AcqsynthError, match=r"unknown dataset 'gsm8'\. Did you mean 'gsm8k'\?.*medmcqa.*mmlu"):
        load_data("gsm8")


def test_unknown_split() -> None:
    with pytest.raises(AcqsynthError, match=r"unknown split 'train'.*Valid splits: all, eval, pool, seed"):
        load_data("gsm8k", split="train")


def test_missing_file_and_unsupported_type(tmp_path: Path) -> None:
    with pytest.raises(AcqsynthError, match=r"nope\.jsonl: no such file"):
        load_data(str(tmp_path / "nope.jsonl"))
    (tmp_path / "d.xlsx").write_text("a,b\n")
    with pytest.raises(AcqsynthError, match=r"d\.xlsx: unsupported file type '\.xlsx'; use .jsonl, .json, .parquet, .csv"):
        load_data(str(tmp_path / "d.xlsx"))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no header row"),
        ("question,answer\nq1,1\nq2,2,extra\n", r"d\.csv:3: 3 cells but the header names 2 columns"),
        ("question,answer\n\nq1\n", r"d\.csv:3: 1 cells but the header names 2 columns"),
        ("question,,answer\n", r"d\.csv:1: column 2 of the header has no name"),
        ("question,answer,question\n", r"d\.csv:1: column name 'question' appears twice"),
        ('question,answer\n"q1,1\n', r"d\.csv:\d+: not valid CSV"),
        ("question,answer\n,1\n", r"d\.csv:2: .*question"),
    ],
)
def test_bad_csv_names_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "d.csv"
    path.write_text(content)
    with pytest.raises(AcqsynthError, match=message):
        load_data(str(path), task="math")


def test_malformed_jsonl_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "1", "question": "q", "answer": "a"}\n{"id": "2", "question": \n')
    with pytest.raises(AcqsynthError, match=r"bad\.jsonl:2: malformed JSON"):
        load_data(str(path))


def test_empty_dataset(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(AcqsynthError, match=r"empty\.jsonl: the dataset holds no samples"):
        load_data(str(tmp_path / "empty.jsonl"))


def test_mapping_to_a_missing_column_names_it_and_lists_the_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "solution": "s"}])
    with pytest.raises(AcqsynthError, match=r"m\.jsonl: mapping question='prob' names column 'prob'.*available columns: problem, solution"):
        load_data(path, mapping={"question": "prob", "answer": "solution"})
    with pytest.raises(AcqsynthError, match=r"names column 'opz'.*available columns: problem, solution"):
        load_data(path, mapping={"question": "problem", "answer": "solution", "choices": "problem,opz"})


def test_mapping_to_an_unknown_sample_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(AcqsynthError, match=r"unknown Sample field 'qestion'.*Did you mean 'question'"):
        load_data(path, mapping={"qestion": "question"})


def test_no_column_for_a_required_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [{"problem": "p", "answer": "a"}])
    with pytest.raises(AcqsynthError, match=r"no column for required field 'question'; available columns: problem, answer.*--map question="):
        load_data(path)


def test_missing_required_value_names_line_and_field(tmp_path: Path) -> None:
    rows = [{"id": "1", "question": "q", "answer": "a"}, {"id": "2", "question": "q2"}, {"id": "3", "question": "", "answer": "c"}]
    with pytest.raises(AcqsynthError, match=r"m\.jsonl:2: missing required field 'answer' \(column 'answer'\)"):
        load_data(write_jsonl(tmp_path / "m.jsonl", rows))
    with pytest.raises(AcqsynthError, match=r"n\.jsonl:3: missing required field 'question' \(column 'problem'\)"):
        rows = [{"id": "1", "problem": "q", "answer": "a"}, {"id": "2", "problem": "q", "answer": "b"}, {"id": "3", "problem": " ", "answer": "c"}]
        load_data(write_jsonl(tmp_path / "n.jsonl", rows), mapping={"question": "problem"})


def test_task_specific_required_fields(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "t.jsonl", [{"question": "q", "answer": "a"}])
    with pytest.raises(AcqsynthError, match=r"no column for required field 'choices' \(task 'mcqa' needs it\)"):
        load_data(path, task="mcqa")
    with pytest.raises(AcqsynthError, match=r"no column for required field 'tests' \(task 'code' needs it\)"):
        load_data(path, task="code")


def test_bad_mcq_answers_name_the_line(tmp_path: Path) -> None:
    rows = [{"question": "q", "choices": ["x", "y"], "answer": 0}, {"question": "r", "choices": ["x", "y"], "answer": 2}]
    with pytest.raises(AcqsynthError, match=r"o\.jsonl:2: answer index 2 is out of range for 2 choices"):
        load_data(write_jsonl(tmp_path / "o.jsonl", rows))
    rows = [{"question": "q", "choices": ["x", "y"], "answer": "w"}]
    with pytest.raises(AcqsynthError, match=r"w\.jsonl:1: answer 'w' is not a letter A-B"):
        load_data(write_jsonl(tmp_path / "w.jsonl", rows))
    rows = [{"question": "q", "choices": ["x"], "answer": "A"}]
    with pytest.raises(AcqsynthError, match=r"one\.jsonl:1: a multiple-choice question needs at least 2 choices"):
        load_data(write_jsonl(tmp_path / "one.jsonl", rows))
    rows = [{"question": "q", "choices": "x or y", "answer": "A"}]
    with pytest.raises(AcqsynthError, match=r"s\.jsonl:1: field 'choices' \(column 'choices'\) must be a list"):
        load_data(write_jsonl(tmp_path / "s.jsonl", rows))
    rows = [{"question": "q", "a": "x", "b": None, "c": "z", "answer": 0}]
    with pytest.raises(AcqsynthError, match=r"gap\.jsonl:1: choice column 'b' is empty"):
        load_data(write_jsonl(tmp_path / "gap.jsonl", rows), mapping={"choices": "a,b,c"})


def test_duplicate_ids_name_both_lines(tmp_path: Path) -> None:
    rows = [{"id": "x", "question": "q", "answer": "a"}, {"id": "y", "question": "q", "answer": "a"}, {"id": "x", "question": "r", "answer": "b"}]
    with pytest.raises(AcqsynthError, match=r"d\.jsonl:3: duplicate id 'x' \(first at .*d\.jsonl:1\)"):
        load_data(write_jsonl(tmp_path / "d.jsonl", rows))


def test_wrong_field_types(tmp_path: Path) -> None:
    rows = [{"question": ["not", "text"], "answer": "a"}]
    with pytest.raises(AcqsynthError, match=r"l\.jsonl:1: field 'question' must be text or a number, got list"):
        load_data(write_jsonl(tmp_path / "l.jsonl", rows))
    rows = [{"question": "q", "answer": "a", "metadata": "{broken"}]
    with pytest.raises(AcqsynthError, match=r"meta\.jsonl:1: field 'metadata' is not valid JSON"):
        load_data(write_jsonl(tmp_path / "meta.jsonl", rows))


def test_builtins_reject_a_mapping_and_a_mismatched_task() -> None:
    with pytest.raises(AcqsynthError, match=r"built-in dataset 'gsm8k' is already in Sample form"):
        load_data("gsm8k", mapping={"question": "problem"})
    with pytest.raises(AcqsynthError, match=r"'gsm8k' is a math dataset; it cannot be used as task 'mcqa'"):
        load_data("gsm8k", task="mcqa")


def test_save_to_disk_dict_without_a_default_split(tmp_path: Path) -> None:
    import datasets

    part = datasets.Dataset.from_dict({"question": ["q"], "answer": ["a"]})
    datasets.DatasetDict({"a": part, "b": part}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(AcqsynthError, match=r"dd: holds splits a, b; choose one with '.*dd@<split>'"):
        load_data(str(tmp_path / "dd"))
    with pytest.raises(AcqsynthError, match=r"dd: no split 'c'; it has a, b"):
        load_data(f"{tmp_path / 'dd'}@c")
