"""The Sample record round-trips through Dataset, JSONL and Parquet without loss; bad files fail clearly."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample, iter_samples, read_samples, to_dataset, write_samples

text = st.text(max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
samples = st.builds(
    Sample,
    id=st.text(min_size=1, max_size=20),
    question=text,
    answer=text,
    reasoning=st.none() | text,
    choices=st.none() | st.lists(text, max_size=5),
    tests=st.none() | text,
    entry_point=st.none() | text,
    source=text,
    metadata=st.dictionaries(st.text(max_size=8), json_values, max_size=4),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(samples, min_size=1, max_size=6))
def test_round_trip_through_all_formats(tmp_path, items):
    ds = to_dataset(items)
    assert list(iter_samples(ds)) == items
    for name in ("s.jsonl", "s.parquet"):
        path = write_samples(ds, tmp_path / name)
        assert list(iter_samples(read_samples(path))) == items


def test_extra_columns_survive_round_trip(tmp_path):
    ds = to_dataset([Sample(id="1", question="q", answer="a"), Sample(id="2", question="r", answer="b")])
    ds = ds.add_column("score", [0.5, 1.5]).add_column("prediction", ["x", None])
    for name in ("s.jsonl", "s.parquet"):
        back = read_samples(write_samples(ds, tmp_path / name))
        assert back["score"] == [0.5, 1.5] and back["prediction"] == ["x", None]


def test_empty_samples_give_typed_empty_dataset():
    ds = to_dataset([])
    assert len(ds) == 0 and "question" in ds.column_names


def test_malformed_jsonl_line_is_named(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = json.dumps({"id": "1", "question": "q", "answer": "a"})
    path.write_text(f"{good}\n\n{good}\n{{not json\n")
    with pytest.raises(AcqsynthError, match=r"bad\.jsonl:4: malformed JSON"):
        read_samples(path)


def test_missing_field_is_named_with_line(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "q", "answer": "a"}) + "\n" + json.dumps({"id": "2", "question": "q"}) + "\n")
    with pytest.raises(AcqsynthError, match=r"m\.jsonl:2: missing required field\(s\) answer"):
        read_samples(path)


def test_empty_file_is_an_error(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text("\n")
    with pytest.raises(AcqsynthError, match="holds no samples"):
        read_samples(path)
    assert len(read_samples(path, allow_empty=True)) == 0


def test_bad_metadata_and_corrupt_parquet(tmp_path):
    path = tmp_path / "meta.jsonl"
    path.write_text(json.dumps({"id": "1", "question": "q", "answer": "a", "metadata": "{oops"}) + "\n")
    with pytest.raises(AcqsynthError, match=r"meta\.jsonl:1: field 'metadata' is not valid JSON"):
        read_samples(path)
    pq = tmp_path / "x.parquet"
    pq.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(AcqsynthError, match=r"x\.parquet: cannot read Parquet"):
        read_samples(pq)


def test_write_is_atomic_and_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "keep.jsonl"
    ds = to_dataset([Sample(id="1", question="q", answer="a")])
    write_samples(ds, path)
    before = path.read_text()
    with pytest.raises(AcqsynthError, match="unsupported file type"):
        write_samples(ds, tmp_path / "keep.csv")
    unserialisable = to_dataset([Sample(id="1", question="q", answer="a", metadata={"k": 1})])
    unserialisable = unserialisable.map(lambda r: {"metadata": "{broken"})
    with pytest.raises(json.JSONDecodeError):
        write_samples(unserialisable, path)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_atomic_writes_give_files_the_usual_permissions(tmp_path: Path) -> None:
    """Atomic writes go through mkstemp (mode 0600); the result must get the mode open() would give."""
    from acqsynth.samples import atomic_write_text

    mask = os.umask(0o022)
    try:
        assert atomic_write_text(tmp_path / "a.json", "{}").stat().st_mode & 0o777 == 0o644
        os.umask(0o002)
        assert atomic_write_text(tmp_path / "b.json", "{}").stat().st_mode & 0o777 == 0o664
    finally:
        os.umask(mask)
