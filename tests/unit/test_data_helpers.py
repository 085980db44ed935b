"""The small pieces under the built-in loaders: boxed answers, option order, cleaning, oe-eval request
files, hub-id parsing and the atomic dataset cache."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import datasets
import pytest

from acqsynth.data.cache import cached_dataset
from acqsynth.data.clean import clean
from acqsynth.data.external import parse_hub_spec
from acqsynth.data.math_loaders import last_boxed
from acqsynth.data.mcqa_loaders import shuffled_options
from acqsynth.data.package_files import package_dir, read_request_docs
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample


def test_last_boxed_matches_nested_braces_and_takes_the_last() -> None:
    assert last_boxed(r"so $\boxed{\frac{1}{2}}$.") == r"\frac{1}{2}"
    assert last_boxed(r"$\boxed{15\frac{39}{40}}$, or $\boxed{\frac{639}{40}}$") == r"\frac{639}{40}"
    assert last_boxed(r"\fbox{7}") == "7"
    assert last_boxed("no box here") is None
    assert last_boxed(r"\boxed{unclosed") is None


def test_shuffled_options_are_a_fixed_permutation() -> None:
    opts = ["right", "w1", "w2", "w3"]
    a = shuffled_options("sciq/1", opts)
    assert sorted(a) == sorted(opts) and a == shuffled_options("sciq/1", opts)
    positions = {shuffled_options(f"sciq/{i}", opts).index("right") for i in range(40)}
    assert positions == {0, 1, 2, 3}, "the correct option does not always land on one letter"


def test_clean_drops_repeats_and_ambiguous_keys() -> None:
    a = Sample(id="1", question="q", answer="A", choices=["x", "y"])
    repeat = Sample(id="2", question="q ", answer="A", choices=["x", "y "])
    other_answer = Sample(id="3", question="q", answer="B", choices=["x", "y"])
    ambiguous = Sample(id="4", question="r", answer="B", choices=["x", "y", "y"])
    kept, dropped = clean([a, repeat, other_answer, ambiguous])
    assert [s.id for s in kept] == ["1", "3"]
    assert dropped == {"duplicate": 1, "ambiguous answer": 1}


def test_request_docs_deduplicate_and_skip_unconditional_copies(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl.gz"
    lines = [
        {"doc_id": 1, "doc": {"q": "b"}, "request": 0},
        {"doc_id": 0, "doc": {"q": "a"}, "request": 0},
        {"doc_id": 0, "doc": {"q": "a"}, "request": 1},
        {"doc_id": 1_000_000, "doc": {"q": "a"}, "request": 0},
    ]
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps(x) + "\n" for x in lines)
    assert read_request_docs(path) == [{"q": "a"}, {"q": "b"}]
    with gzip.open(path, "wt") as f:
        f.write('{"doc": {}}\n')
    with pytest.raises(AcqsynthError, match=r"requests\.jsonl\.gz:1: not an oe-eval request line"):
        read_request_docs(path)


def test_missing_package_says_how_to_install() -> None:
    with pytest.raises(AcqsynthError, match=r"package 'no-such-dist'.*pip install --no-deps no-such-dist"):
        package_dir("no_such_module_xyz", "no-such-dist")


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("openai/gsm8k", ("openai/gsm8k", None, None)),
        ("openai/gsm8k:main", ("openai/gsm8k", "main", None)),
        ("openai/gsm8k:main@test", ("openai/gsm8k", "main", "test")),
        ("cais/mmlu@validation", ("cais/mmlu", None, "validation")),
        ("data/x.jsonl", None),
        ("a/b/c", None),
        ("gsm8k", None),
    ],
)
def test_parse_hub_spec(spec: str, parsed: tuple[str, str | None, str | None] | None) -> None:
    assert parse_hub_spec(spec) == parsed


def test_cached_dataset_builds_once_and_leaves_no_temp_files(tmp_path: Path) -> None:
    calls = []

    def build() -> datasets.Dataset:
        calls.append(1)
        return datasets.Dataset.from_dict({"x": [1, 2, 3]})

    target = tmp_path / "cache" / "thing"
    first = cached_dataset(target, build)
    second = cached_dataset(target, build)
    assert first["x"][:] == second["x"][:] == [1, 2, 3]
    assert len(calls) == 1
    assert [p.name for p in target.parent.iterdir()] == ["thing"]
    (target / "state.json").write_text("{broken")
    assert cached_dataset(target, build)["x"][:] == [1, 2, 3] and len(calls) == 2, "an unreadable cache is rebuilt"
