"""Per-item analysis: item tallies, per-stratum differences and the report section, against hand
computations on small matrices and the real arithmetic-2d strata."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import ttest_rel
from test_experiment_report import _cell, _items, table_row, write_run

from acqsynth.experiment.per_item import align, builtin_groups, group_differences, tally
from acqsynth.experiment.report import write_experiment_report


def _matrix(rows: list[list[float]], items: list[str], seeds: list[int]) -> pd.DataFrame:
    return pd.DataFrame(rows, index=seeds, columns=items)


def test_tally_counts_wins_losses_ties_and_never_solved_items() -> None:
    items = ["a", "b", "c", "d", "e"]
    method = _matrix([[1, 0, 1, 0, 1], [1, 0, 0, 0, 1]], items, [0, 1])
    base = _matrix([[0, 1, 1, 0, 1], [0, 1, 0, 0, 0]], items, [0, 1])
    t = tally(*align(method, base))
    # a: 2 vs 0 won; b: 0 vs 2 lost; c: 1 vs 1 tied; d: never; e: 2 vs 1 won
    assert (t.seeds, t.items, t.won, t.lost, t.tied_solved, t.never) == (2, 5, 2, 1, 1, 1)


def test_align_keeps_common_seeds_and_fully_observed_items() -> None:
    method = _matrix([[1, 0, 1], [1, np.nan, 0], [0, 0, 0]], ["a", "b", "c"], [0, 1, 2])
    base = _matrix([[0, 1, 1, 1], [0, 1, 0, 1]], ["a", "b", "c", "d"], [0, 1])
    a, b = align(method, base)
    assert list(a.index) == [0, 1] and list(a.columns) == ["a", "c"] and list(b.columns) == ["a", "c"]
    assert align(method, _matrix([[1]], ["z"], [0])) is None


def test_group_differences_are_paired_over_seeds_per_group_and_holm_adjusted() -> None:
    rng = np.random.default_rng(0)
    items = [f"i{k}" for k in range(12)]
    groups = pd.Series(["x"] * 6 + ["y"] * 6, index=items)
    method = pd.DataFrame(rng.integers(0, 2, (4, 12)).astype(float), index=range(4), columns=items)
    base = pd.DataFrame(rng.integers(0, 2, (4, 12)).astype(float), index=range(4), columns=items)
    out = group_differences(method, base, groups)
    assert [g.group for g in out] == ["x", "y"]
    for g, cols in zip(out, (items[:6], items[6:]), strict=True):
        a, b = method[cols].mean(axis=1), base[cols].mean(axis=1)
        assert g.items == 6 and np.isclose(g.method, method[cols].to_numpy().mean())
        assert np.isclose(g.test.diff, (a - b).mean())
        assert np.isclose(g.test.p, ttest_rel(a, b).pvalue)
    ps = sorted(g.test.p for g in out)
    assert np.isclose(min(g.p_holm for g in out), min(1.0, 2 * ps[0]))  # Holm: the smallest p times 2


def test_one_seed_compares_the_groups_items() -> None:
    items = ["a", "b", "c", "d"]
    method, base = _matrix([[1, 1, 1, 0]], items, [0]), _matrix([[0, 1, 0, 0]], items, [0])
    (g,) = group_differences(method, base, pd.Series(["x"] * 4, index=items))
    assert g.test.n == 4 and np.isclose(g.test.diff, 0.5)


def test_builtin_groups_are_the_datasets_strata() -> None:
    unit, groups = builtin_groups("arithmetic-2d")
    assert unit == "stratum" and len(groups) == 6572
    assert groups["arithmetic-2d/12-plus-1"] == "plus-1d" and groups["arithmetic-2d/13-times-25"] == "times-2d"
    assert builtin_groups("arithmetic-2d:plus-2d")[1]["arithmetic-2d/40-div-20"] == "div-2d"
    assert builtin_groups("gsm8k") is None  # a built-in without units
    assert builtin_groups("data/mine.jsonl") is None


def test_report_has_the_per_item_tally_and_the_strata_table(tmp_path) -> None:
    _, groups = builtin_groups("arithmetic-2d")
    ids = [i for s in ("plus-1d", "times-2d") for i in groups.index[groups == s][:20]]
    rng = np.random.default_rng(1)
    results, rows = [], []
    for method, p_plus in (("random", 0.5), ("loss", 0.9)):
        for seed in (0, 1, 2):
            correct = np.array([rng.random() < (p_plus if groups[i] == "plus-1d" else 0.2) for i in ids], float)
            results.append(_cell(method, 64, seed, np.nan, correct, np.nan))
            rows += [{**r, "item_id": i} for r, i in zip(_items(method, 64, seed, np.nan, correct), ids, strict=True)]
    run = write_run(tmp_path / "exp", pd.DataFrame(results), pd.DataFrame(rows),
                    meta={"name": "t", "baseline": "random", "task": "arithmetic-2d", "student": "tiny"})
    made = write_experiment_report(run)
    md = (run / "report.md").read_text()
    items = pd.DataFrame(rows)
    pivot = {m: items[items.method == m].pivot_table(index="seed", columns="item_id", values="correct")
             for m in ("loss", "random")}
    t = tally(*align(pivot["loss"], pivot["random"]))
    assert table_row(md, "loss", "3", str(len(ids))) == ["loss", "3", str(len(ids)), str(t.won), str(t.lost),
                                                         f"{t.won - t.lost:+d}", str(t.tied_solved), str(t.never)]
    header = table_row(md, "stratum")
    assert header == ["stratum", "plus-1d", "times-2d"]
    plus = [i for i in ids if groups[i] == "plus-1d"]
    diff = 100 * (pivot["loss"][plus].to_numpy().mean() - pivot["random"][plus].to_numpy().mean())
    assert f"| loss | {diff:+.1f} [" in md
    assert "plots/per_stratum_b0064.png" in made and made["plots/per_stratum_b0064.png"].exists()


def test_the_baselines_stratum_row_is_over_all_its_seeds_whichever_method_comes_first(tmp_path) -> None:
    """A method with one seed listed before one with three must not make the baseline's row seed 0's."""
    _, groups = builtin_groups("arithmetic-2d")
    ids = [i for s in ("plus-1d", "times-2d") for i in groups.index[groups == s][:20]]
    rng = np.random.default_rng(2)
    results, rows = [], []
    for method, seeds in (("random", (0, 1, 2)), ("loss", (0,)), ("diverse", (0, 1, 2))):
        for seed in seeds:
            correct = (rng.random(len(ids)) < 0.2 + 0.3 * seed).astype(float)  # seeds differ a lot
            results.append(_cell(method, 64, seed, np.nan, correct, np.nan))
            rows += [{**r, "item_id": i} for r, i in zip(_items(method, 64, seed, np.nan, correct), ids, strict=True)]
    run = write_run(tmp_path / "exp", pd.DataFrame(results), pd.DataFrame(rows),
                    meta={"name": "t", "baseline": "random", "task": "arithmetic-2d", "student": "tiny"})
    write_experiment_report(run)
    md = (run / "report.md").read_text()
    items = pd.DataFrame(rows)
    base = items[items.method == "random"].pivot_table(index="seed", columns="item_id", values="correct")
    expected = [f"{100 * base[[i for i in ids if groups[i] == s]].to_numpy().mean():.2f}".rstrip("0").rstrip(".")
                for s in ("plus-1d", "times-2d")]
    seed0 = [f"{100 * base.loc[0, [i for i in ids if groups[i] == s]].mean():.2f}".rstrip("0").rstrip(".")
             for s in ("plus-1d", "times-2d")]
    assert seed0 != expected  # what the row showed when the one-seed method came first
    assert table_row(md, "random (accuracy, 3 seeds)") == ["random (accuracy, 3 seeds)", *expected]


def test_selected_and_candidate_mixes_are_shares_per_group_mean_over_seeds() -> None:
    from acqsynth.experiment.per_item import candidate_mix, selected_mix

    groups = pd.Series({"a1": "x", "a2": "x", "b1": "y", "b2": "y"})
    rows = [("m", 8, 0, "a1", True), ("m", 8, 0, "a2", True), ("m", 8, 0, "b1", False), ("m", 8, 0, "b2", True),
            ("m", 8, 1, "a1", True), ("m", 8, 1, "b1", True), ("m", 8, 1, "b2", False), ("m", 8, 1, "a2", False)]
    scores = pd.DataFrame(rows, columns=["method", "budget", "seed", "item_id", "selected"])
    mix = selected_mix(scores, "m", 8, groups)
    assert mix["x"] == pytest.approx((2 / 3 + 1 / 2) / 2) and mix["y"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert candidate_mix(scores, 8, groups).to_dict() == {"x": 0.5, "y": 0.5}
    assert selected_mix(scores.assign(item_id=None), "m", 8, groups) is None  # tables written before item ids
