"""Per-item analysis: which evaluation items a method wins or loses against the baseline, and where.

A mean accuracy hides where a gain comes from. Here each item is compared across the seeds both
methods ran: a method *wins* an item when it answered it right in more of those seeds than the
baseline did. Where the data set is a built-in with strata (its `unit_key`, e.g. arithmetic-2d's
operation × operand size), the difference is also broken down by stratum, each with its paired
interval over seeds (over items when there is one seed) and Holm-adjusted p over the strata.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import pandas as pd

from acqsynth.evaluation.stats import PairedT, holm, paired_t


@dataclass(frozen=True)
class ItemTally:
    """How one method's items compare with the baseline's over their common seeds."""

    seeds: int
    items: int
    won: int
    """Items the method answered right in more seeds than the baseline."""
    lost: int
    """Items the baseline answered right in more seeds."""
    tied_solved: int
    """Items both answered right in the same, non-zero number of seeds."""
    never: int
    """Items neither answered right in any seed."""


@dataclass(frozen=True)
class GroupDifference:
    """Accuracy of method and baseline on one group of items, and their paired difference."""

    group: str
    items: int
    baseline: float
    method: float
    test: PairedT
    """Over seeds (per-seed group means), or over the group's items with one seed."""
    p_holm: float
    """`test.p` Holm-adjusted over the groups of the same comparison."""


def align(method: pd.DataFrame, baseline: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """The two seeds × item_id matrices on their common seeds and the items both observed in every one."""
    seeds = sorted(set(method.index) & set(baseline.index))
    cols = sorted(set(method.columns) & set(baseline.columns), key=str)
    if not seeds or not cols:
        return None
    a, b = method.loc[seeds, cols], baseline.loc[seeds, cols]
    keep = a.notna().all(axis=0) & b.notna().all(axis=0)
    if not keep.any():
        return None
    return a.loc[:, keep].astype(float), b.loc[:, keep].astype(float)


def tally(method: pd.DataFrame, baseline: pd.DataFrame) -> ItemTally:
    """Won / lost / tied / never-solved items of two aligned seeds × items matrices (see `align`)."""
    a, b = method.sum(axis=0).to_numpy(), baseline.sum(axis=0).to_numpy()
    return ItemTally(seeds=len(method.index), items=a.size, won=int((a > b).sum()), lost=int((a < b).sum()),
                     tied_solved=int(((a == b) & (a > 0)).sum()), never=int(((a == 0) & (b == 0)).sum()))


def _group_columns(columns: pd.Index, groups: pd.Series) -> list[tuple[str, pd.Index]]:
    """Each group's name and its item columns (`groups`: item_id → group), sorted by name; items without a
    group are left out."""
    found = groups.reindex(columns)
    return [(str(name), found.index[found == name]) for name in sorted(found.dropna().unique(), key=str)]


def group_accuracy(matrix: pd.DataFrame, groups: pd.Series) -> dict[str, float]:
    """Accuracy per group of a seeds × items matrix, over all its seeds and the group's items: the baseline's
    own row, the same whichever methods are compared with it."""
    return {name: float(matrix[cols].to_numpy().mean()) for name, cols in _group_columns(matrix.columns, groups)}


def group_differences(method: pd.DataFrame, baseline: pd.DataFrame, groups: pd.Series,
                      level: float = 0.95) -> list[GroupDifference]:
    """Per group of items (`groups`: item_id → group), the method's accuracy minus the baseline's, for two
    aligned matrices; items without a group are left out. Sorted by group name."""
    out: list[tuple[str, int, float, float, PairedT]] = []
    for name, cols in _group_columns(method.columns, groups):
        a, b = method[cols].to_numpy(), baseline[cols].to_numpy()
        if a.shape[0] > 1:
            test = paired_t(a.mean(axis=1), b.mean(axis=1), level)
        else:
            test = paired_t(a[0], b[0], level)
        out.append((str(name), len(cols), float(b.mean()), float(a.mean()), test))
    adjusted = holm([t.p if math.isfinite(t.p) else 1.0 for *_, t in out])
    return [GroupDifference(g, n, base, mine, t, p) for (g, n, base, mine, t), p in zip(out, adjusted, strict=True)]


def builtin_groups(data_name: str) -> tuple[str, pd.Series] | None:
    """(unit name, item_id → unit) of a built-in data set with strata or subjects; None for any other
    data set (a file, a hub id, a built-in without units). Read offline from the built-in's own loader."""
    from acqsynth.data.builtin import BUILTINS, load_full

    b = BUILTINS.get(data_name.split(":", 1)[0])
    if b is None or b.unit_key is None:
        return None
    full = load_full(b.name)
    units = [json.loads(m).get(b.unit_key) for m in full["metadata"][:]]
    return b.unit_key, pd.Series(units, index=full["id"][:], dtype=object)


def _mix(rows: pd.DataFrame, groups: pd.Series, distinct: bool) -> pd.Series | None:
    """Share of each group among `rows`' items per seed (each item once with `distinct`), mean over seeds;
    None when the rows carry no item ids (tables written before they did)."""
    if "item_id" not in rows or rows["item_id"].isna().all():
        return None
    rows = rows.dropna(subset=["item_id"])
    per_seed = []
    for _, g in rows.groupby("seed"):
        ids = g["item_id"].astype(str)
        per_seed.append(groups.reindex(pd.unique(ids) if distinct else ids).value_counts(normalize=True))
    return pd.concat(per_seed, axis=1).fillna(0.0).mean(axis=1) if per_seed else None


def selected_mix(scores: pd.DataFrame, method: str, budget: int, groups: pd.Series) -> pd.Series | None:
    """Share of each group among the rows `method` selected at `budget` (every round), mean over seeds."""
    rows = scores[(scores["method"] == method) & (scores["budget"] == budget) & scores["selected"].astype(bool)]
    return _mix(rows, groups, distinct=False)


def candidate_mix(scores: pd.DataFrame, budget: int, groups: pd.Series) -> pd.Series | None:
    """Share of each group among the distinct rows scored at `budget` (the candidates), mean over seeds."""
    return _mix(scores[scores["budget"] == budget], groups, distinct=True)
