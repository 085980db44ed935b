"""The seed/pool/eval split rule: sizes, determinism, disjointness, per-unit consistency."""

from __future__ import annotations

import hashlib
import random

import pytest

from acqsynth.data import load_data, split_counts
from acqsynth.data.splits import assign_splits, check_split, eval_size, seed_size
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample, to_dataset, write_samples


@pytest.mark.parametrize(
    ("n", "n_eval", "n_seed"),
    [(0, 0, 0), (3, 1, 0), (10, 4, 1), (164, 66, 16), (500, 200, 50), (1319, 500, 132), (5000, 500, 300)],
)
def test_sizes_follow_the_documented_rule(n: int, n_eval: int, n_seed: int) -> None:
    assert (eval_size(n), seed_size(n)) == (n_eval, n_seed)


def test_splits_are_disjoint_and_cover_everything() -> None:
    ids = [f"x/{i}" for i in range(1000)]
    s = assign_splits(ids)
    parts = [set(s[k]) for k in ("seed", "pool", "eval")]
    assert sum(len(p) for p in parts) == 1000
    assert set.union(*parts) == set(range(1000)) == set(s["all"])
    assert (len(s["eval"]), len(s["seed"]), len(s["pool"])) == (400, 100, 500)


def test_assignment_depends_on_ids_not_order() -> None:
    ids = [f"item-{i}" for i in range(300)]
    shuffled = ids[:]
    random.Random(7).shuffle(shuffled)
    a, b = assign_splits(ids), assign_splits(shuffled)
    for split in ("seed", "pool", "eval"):
        assert [ids[i] for i in a[split]] == [shuffled[i] for i in b[split]]


def test_assignment_is_fixed_across_runs() -> None:
    """The documented rule restated (sort by sha256 of the id, then eval, seed, pool), and pinned:
    changing the hash or the rule must be a visible, deliberate change."""
    ids = [f"q{i}" for i in range(10)]
    by_hash = sorted(range(10), key=lambda i: hashlib.sha256(ids[i].encode()).hexdigest())
    s = assign_splits(ids)
    assert s["eval"] == by_hash[:4] and s["seed"] == by_hash[4:5] and s["pool"] == by_hash[5:]
    assert {k: sorted(v) for k, v in s.items() if k != "all"} == {"eval": [0, 4, 5, 7], "seed": [9], "pool": [1, 2, 3, 6, 8]}


def test_units_split_separately_and_subsets_agree() -> None:
    ids = [f"u{i % 3}/{i}" for i in range(90)]
    units = [f"u{i % 3}" for i in range(90)]
    whole = assign_splits(ids, units)
    for u in ("u0", "u1", "u2"):
        rows = [i for i in range(90) if units[i] == u]
        alone = assign_splits([ids[i] for i in rows])
        for split in ("seed", "pool", "eval"):
            assert [ids[rows[i]] for i in alone[split]] == [ids[i] for i in whole[split] if units[i] == u]


def test_unknown_split_is_rejected_with_the_valid_names() -> None:
    with pytest.raises(AcqsynthError, match=r"unknown split 'train'.*eval.*pool.*seed"):
        check_split("train")


def test_user_file_splits_are_deterministic_and_disjoint(tmp_path) -> None:
    path = tmp_path / "d.jsonl"
    write_samples(to_dataset(Sample(id=f"d/{i}", question=f"q{i}", answer=str(i)) for i in range(50)), path)
    got = {s: load_data(str(path), split=s)["id"] for s in ("seed", "pool", "eval", "all")}
    assert got["eval"] == load_data(str(path), split="eval")["id"]
    assert not set(got["seed"]) & set(got["pool"]) and not set(got["seed"]) & set(got["eval"])
    assert not set(got["pool"]) & set(got["eval"])
    assert set(got["seed"]) | set(got["pool"]) | set(got["eval"]) == set(got["all"])
    assert split_counts(str(path)) == {"seed": 5, "pool": 25, "eval": 20, "all": 50}
    with pytest.raises(AcqsynthError, match="unknown split 'test'"):
        load_data(str(path), split="test")
