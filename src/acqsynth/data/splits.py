"""Deterministic, disjoint `seed` / `pool` / `eval` splits carved from one set of samples.

Why: the built-in sources have no train splits (GSM8K, MedMCQA, ... ship only test or validation),
and user data rarely comes split at all. Every split is made here by one rule, so the same ids
always land in the same split whatever the file order, machine or Python hash seed:

1. sort the samples of a *split unit* by `sha256(id)` (ties, impossible in practice, by id);
2. the first `eval_size(n)` ids are `eval`, the next `seed_size(n)` are `seed`, the rest `pool`.

A split unit is a whole dataset, except where a dataset names a `unit_key` (MMLU: one unit per
subject, so `mmlu:anatomy` splits exactly like the anatomy rows of `mmlu`). A dataset may instead
fix the eval and seed rows of every unit (`per_unit`), for a stratified eval (`arithmetic-2d`: 125
per stratum). Rows of a split come back in hash order, so the first `n` rows of any split are an
unbiased sample of it; `all` keeps the source order. With `per_unit`, hash order would not do that:
a small unit's fixed share reaches further into hash order than a large unit's, so the first rows
would hold mostly large units. There the `eval` and `seed` rows come round-robin instead (every
unit's first row in hash order, then every unit's second, ...; within a round in hash order), so the
first `n` rows keep the split's mix of units as closely as `n` allows; `pool` stays in hash order.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

from acqsynth.errors import AcqsynthError, unknown_name

SPLITS: tuple[str, ...] = ("seed", "pool", "eval", "all")
EVAL_FRACTION, EVAL_MAX = 0.4, 500
SEED_FRACTION, SEED_MAX = 0.1, 300


def check_split(split: str) -> str:
    """`split` itself if it is a known split name, else an error listing the valid ones."""
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    return split


def eval_size(n: int) -> int:
    """Rows of a unit of `n` samples that go to `eval`: 40 %, at most 500."""
    return min(EVAL_MAX, math.floor(n * EVAL_FRACTION + 0.5))


def seed_size(n: int) -> int:
    """Rows of a unit of `n` samples that go to `seed`: 10 %, at most 300."""
    return min(SEED_MAX, math.floor(n * SEED_FRACTION + 0.5))


def id_hash(sample_id: str) -> str:
    """The sort key of one sample id: its sha256 hex digest (stable across runs and machines)."""
    return hashlib.sha256(sample_id.encode("utf-8")).hexdigest()


def assign_splits(
    ids: Sequence[str], units: Sequence[str] | None = None, per_unit: tuple[int, int] | None = None
) -> dict[str, list[int]]:
    """Row indices of each split (`seed`, `pool`, `eval` in hash order; `all` in source order).

    `units` gives each row's split unit (e.g. its MMLU subject); None means one unit for all rows.
    `per_unit` = (eval rows, seed rows) of every unit, in place of `eval_size` / `seed_size`.
    """
    if units is None:
        units = [""] * len(ids)
    by_unit: dict[str, list[int]] = {}
    for i, unit in enumerate(units):
        by_unit.setdefault(unit, []).append(i)
    keys = [id_hash(i) for i in ids]
    out: dict[str, list[int]] = {"seed": [], "pool": [], "eval": []}
    rank: dict[int, int] = {}
    """A row's position in its unit's share of its split (the round-robin of `per_unit` splits)."""
    for rows in by_unit.values():
        rows = sorted(rows, key=lambda r: (keys[r], ids[r]))
        n_eval, n_seed = per_unit or (eval_size(len(rows)), seed_size(len(rows)))
        if n_eval + n_seed > len(rows):
            raise AcqsynthError(f"a split unit of {len(rows)} rows cannot give {n_eval} eval + {n_seed} seed rows")
        out["eval"] += rows[:n_eval]
        out["seed"] += rows[n_eval : n_eval + n_seed]
        out["pool"] += rows[n_eval + n_seed :]
        rank.update({r: k for share in (rows[:n_eval], rows[n_eval : n_eval + n_seed]) for k, r in enumerate(share)})
    for name in out:
        if per_unit is not None and name != "pool":
            out[name].sort(key=lambda r: (rank[r], keys[r], ids[r]))
        else:
            out[name].sort(key=lambda r: (keys[r], ids[r]))
    out["all"] = list(range(len(ids)))
    return out
