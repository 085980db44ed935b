"""Every built-in dataset, loaded for real from the packaged files: schema, splits, counts, answers,
and reference code solutions passing their own tests."""

from __future__ import annotations

import json
import operator
import re
import subprocess
import sys

import pytest

from acqsynth.data import BUILTINS, list_builtins, load_data, split_counts
from acqsynth.errors import AcqsynthError
from acqsynth.samples import SAMPLE_FEATURES

pytestmark = pytest.mark.integration

NAMES = list(BUILTINS)
DOCUMENTED_COUNTS = {  # docs/data.md; seed, pool, eval, all
    "gsm8k": (132, 687, 500, 1319),
    "math500": (50, 250, 200, 500),
    "arithmetic": (300, 2200, 500, 3000),
    "arithmetic-2d": (200, 5372, 1000, 6572),
    "medmcqa": (300, 3379, 500, 4179),
    "medqa": (127, 646, 500, 1273),
    "mmlu": (1576, 8035, 6101, 15712),
    "arc-easy": (295, 2151, 500, 2946),
    "arc-challenge": (147, 824, 500, 1471),
    "sciq": (100, 500, 400, 1000),
    "humaneval": (16, 82, 66, 164),
    "mbpp": (50, 250, 200, 500),
}


def test_builtins_are_described() -> None:
    assert [b.name for b in list_builtins()] == NAMES == list(DOCUMENTED_COUNTS)
    for b in list_builtins():
        assert b.task in ("math", "math-answer", "mcqa", "code") and b.description and b.source and b.license


@pytest.mark.parametrize("name", NAMES)
def test_splits_are_disjoint_cover_all_match_the_docs_and_repeat(name: str) -> None:
    ids = {s: load_data(name, split=s)["id"][:] for s in ("seed", "pool", "eval", "all")}
    assert len(set(ids["all"])) == len(ids["all"])
    parts = [set(ids[s]) for s in ("seed", "pool", "eval")]
    assert sum(len(p) for p in parts) == len(ids["all"]) and set.union(*parts) == set(ids["all"])
    counts = split_counts(name)
    assert tuple(counts[s] for s in ("seed", "pool", "eval", "all")) == DOCUMENTED_COUNTS[name]
    assert {s: len(v) for s, v in ids.items()} == counts
    assert load_data(name, split="eval")["id"][:] == ids["eval"], "same call, same ids in the same order"


@pytest.mark.parametrize("name", NAMES)
def test_rows_have_the_sample_schema_and_the_task_form(name: str) -> None:
    b = BUILTINS[name]
    ds = load_data(name)
    assert ds.features == SAMPLE_FEATURES
    rows = ds.to_list()
    assert all(r["id"].startswith(f"{name}/") and r["source"] == name and r["question"].strip() for r in rows)
    assert all(isinstance(json.loads(r["metadata"]), dict) for r in rows)
    if b.task == "mcqa":
        for r in rows:
            assert len(r["choices"]) >= 2 and all(c.strip() for c in r["choices"]), r["id"]
            assert re.fullmatch(r"[A-Z]", r["answer"]) and ord(r["answer"]) - 65 < len(r["choices"]), r["id"]
        assert len({r["answer"] for r in rows}) >= 3, "answers are spread over letters"
    elif b.task == "code":
        assert all(r["tests"] and r["entry_point"] and r["choices"] is None for r in rows)
        assert all(re.search(rf"def {re.escape(r['entry_point'])}\s*\(", r["answer"]) for r in rows)
    else:
        assert all(r["answer"].strip() and r["choices"] is None for r in rows)


def test_gsm8k_answers_are_plain_numbers_without_marker() -> None:
    rows = load_data("gsm8k").to_list()
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", r["answer"]) for r in rows)
    assert all("####" not in r["reasoning"] and "<<" not in r["reasoning"] for r in rows)
    first = next(r for r in rows if r["id"] == "gsm8k/0")
    assert first["answer"] == "18" and "16 - 3 - 4 = 9" in first["reasoning"]


def test_math500_and_arithmetic_answers() -> None:
    math = {r["id"]: r for r in load_data("math500").to_list()}
    assert math["math500/0"]["answer"] == r"\left( 3, \frac{\pi}{2} \right)"
    assert all(json.loads(r["metadata"])["subject"] for r in math.values())
    for r in load_data("arithmetic", split="seed").to_list():
        a, op, b = r["question"].removeprefix("Calculate ").removesuffix(" =").split()
        ops = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
        assert float(r["answer"]) == ops[op](int(a), int(b)), r


def test_mmlu_subjects() -> None:
    subjects = {json.loads(m)["subject"] for m in load_data("mmlu")["metadata"][:]}
    assert len(subjects) == 57
    anatomy = load_data("mmlu:anatomy", split="eval")
    assert set(anatomy["id"][:]) == {i for i in load_data("mmlu", split="eval")["id"][:] if i.startswith("mmlu/anatomy/")}
    assert sum(split_counts("mmlu:anatomy")[s] for s in ("seed", "pool", "eval")) == split_counts("mmlu:anatomy")["all"]
    with pytest.raises(AcqsynthError, match=r"unknown mmlu subject 'anatomyy'.*Did you mean 'anatomy'.*virology"):
        load_data("mmlu:anatomyy")
    with pytest.raises(AcqsynthError, match=r"'gsm8k' has no parts"):
        load_data("gsm8k:main")


def _passes(row: dict, timeout: float = 20.0) -> tuple[bool, str]:
    """Run a reference solution against its tests in a fresh interpreter (a stand-in for the sandbox)."""
    program = f"{row['answer']}\n\n{row['tests']}\n"
    if re.search(r"^def check\(", row["tests"], re.M):
        program += f"\ncheck({row['entry_point']})\n"
    proc = subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, text=True, timeout=timeout)
    return proc.returncode == 0, proc.stderr[-500:]


@pytest.mark.parametrize("name", ["humaneval", "mbpp"])
def test_reference_solutions_pass_their_own_tests(name: str) -> None:
    for row in load_data(name, split="eval").select(range(3)).to_list():
        ok, err = _passes(row)
        assert ok, f"{row['id']}: {err}"


def test_a_wrong_solution_fails_its_tests() -> None:
    row = load_data("humaneval", split="seed")[0]
    body = row["question"] + "    return None\n"
    ok, _ = _passes({**row, "answer": body})
    assert not ok
