"""Loading user data: field mapping, choices from several columns, answer index -> letter, sources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from acqsynth.data import load_data
from acqsynth.samples import SAMPLE_COLUMNS, Sample, iter_samples, to_dataset, write_samples


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> str:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return str(path)


MEDMCQA_LIKE = [
    {"id": "m1", "question": "Q one?", "opa": "a1", "opb": "b1", "opc": "c1", "opd": "d1", "cop": 2, "exp": "because"},
    {"id": "m2", "question": "Q two?", "opa": "a2", "opb": "b2", "opc": "c2", "opd": "d2", "cop": 0, "exp": None},
]
CHOICE_MAP = {"choices": "opa,opb,opc,opd", "answer": "cop", "reasoning": "exp"}


def test_choices_from_several_columns_and_index_to_letter(tmp_path: Path) -> None:
    ds = load_data(write_jsonl(tmp_path / "m.jsonl", MEDMCQA_LIKE), mapping=CHOICE_MAP, task="mcqa")
    first, second = list(iter_samples(ds))
    assert first.choices == ["a1", "b1", "c1", "d1"] and first.answer == "C" and first.reasoning == "because"
    assert second.answer == "A" and second.reasoning is None
    assert first.id == "m1" and first.source == "m.jsonl"


def test_csv_and_tsv_files_with_choices_in_columns(tmp_path: Path) -> None:
    csv_path = tmp_path / "m.csv"
    csv_path.write_text('id,question,opa,opb,opc,opd,cop,exp\r\nm1,"Q one, with a comma?",a1,b1,c1,d1,2,because\r\n'
                        '\r\nm2,"Q ""two""\non two lines?",a2,b2,c2,d2,0,\r\n', encoding="utf-8")
    first, second = list(iter_samples(load_data(str(csv_path), mapping=CHOICE_MAP, task="mcqa")))
    assert first.question == "Q one, with a comma?" and first.choices == ["a1", "b1", "c1", "d1"]
    assert first.answer == "C" and first.reasoning == "because" and first.source == "m.csv"
    assert second.question == 'Q "two"\non two lines?' and second.answer == "A" and second.reasoning == ""
    tsv_path = tmp_path / "g.tsv"
    tsv_path.write_text("problem\tsolution\nWhat is 6 * 7?\t42\n")
    (s,) = iter_samples(load_data(str(tsv_path), mapping={"question": "problem", "answer": "solution"}, task="math"))
    assert (s.question, s.answer) == ("What is 6 * 7?", "42")


def test_parquet_with_a_list_column_and_renamed_fields(tmp_path: Path) -> None:
    rows = [{"problem": "2+2?", "options": ["3", "4"], "label": 1, "level": 3}]
    ds = load_data(write_parquet(tmp_path / "p.parquet", rows), mapping={"question": "problem", "choices": "options", "answer": "label"})
    (s,) = iter_samples(ds)
    assert (s.question, s.choices, s.answer) == ("2+2?", ["3", "4"], "B")
    assert s.metadata == {"level": 3}, "unmapped columns are kept in metadata"
    assert ds.column_names == list(SAMPLE_COLUMNS)


def test_mcq_answer_as_letter_lowercase_or_choice_text(tmp_path: Path) -> None:
    rows = [
        {"id": "1", "question": "q", "choices": ["x", "y", "z"], "answer": "b"},
        {"id": "2", "question": "q", "choices": ["x", "y", "z"], "answer": "z"},
        {"id": "3", "question": "q", "choices": {"text": ["x", "y"], "label": ["A", "B"]}, "answer": "A"},
    ]
    ds = load_data(write_jsonl(tmp_path / "c.jsonl", rows))
    assert ds["answer"][:] == ["B", "C", "A"]


def test_trailing_empty_choice_columns_are_dropped(tmp_path: Path) -> None:
    rows = [{"id": "1", "question": "q", "a": "x", "b": "y", "c": None, "ans": 1}]
    ds = load_data(write_jsonl(tmp_path / "t.jsonl", rows), mapping={"choices": "a,b,c", "answer": "ans"})
    assert ds[0]["choices"] == ["x", "y"] and ds[0]["answer"] == "B"


def test_math_numbers_become_text_and_missing_ids_are_derived(tmp_path: Path) -> None:
    rows = [{"problem": "1+1", "result": 2}, {"problem": "half of 1", "result": 0.5}, {"problem": "1+1", "result": 2}]
    path = write_jsonl(tmp_path / "n.jsonl", rows)
    ds = load_data(path, mapping={"question": "problem", "answer": "result"}, task="math")
    assert ds["answer"][:] == ["2", "0.5", "2"]
    ids = ds["id"][:]
    assert len(set(ids)) == 3 and ids[2] == ids[0] + "-2", "repeated rows get numbered ids"
    again = load_data(write_jsonl(tmp_path / "r.jsonl", rows[1::-1]), mapping={"question": "problem", "answer": "result"})
    assert again["id"][:] == ids[1::-1], "derived ids do not depend on file order"


def test_code_tests_from_a_list_of_asserts(tmp_path: Path) -> None:
    rows = [{"task_id": 7, "text": "add", "code": "def add(a, b):\n    return a + b\n", "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]}]
    mapping = {"id": "task_id", "question": "text", "answer": "code", "tests": "test_list"}
    (s,) = iter_samples(load_data(write_jsonl(tmp_path / "code.jsonl", rows), mapping=mapping, task="code"))
    assert s.id == "7" and s.tests == "assert add(1, 2) == 3\nassert add(0, 0) == 0"


def test_sample_schema_file_needs_no_mapping_and_keeps_extra_columns(tmp_path: Path) -> None:
    ds = to_dataset([Sample(id="a", question="q", answer="1", metadata={"k": 1}), Sample(id="b", question="r", answer="2")])
    path = tmp_path / "s.jsonl"
    write_samples(ds.add_column("score", [0.5, 0.25]), path)
    got = load_data(str(path))
    assert got.column_names == [*SAMPLE_COLUMNS, "score"]
    assert got["score"][:] == [0.5, 0.25] and json.loads(got[0]["metadata"]) == {"k": 1}


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"id": 1, "question": "q", "answer": "x"}]))
    assert load_data(str(path))["id"][:] == ["1"]


def test_save_to_disk_directory_and_datasetdict_split(tmp_path: Path) -> None:
    rows = {"id": ["1", "2"], "question": ["q1", "q2"], "answer": ["a", "b"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "one"))
    assert load_data(str(tmp_path / "one"))["id"][:] == ["1", "2"]
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows), "test": datasets.Dataset.from_dict({k: v[:1] for k, v in rows.items()})})
    dd.save_to_disk(str(tmp_path / "dict"))
    assert len(load_data(str(tmp_path / "dict"))) == 2, "train is the default split"
    assert len(load_data(f"{tmp_path / 'dict'}@test")) == 1
