"""The experiment report: built from synthetic tidy tables, its numbers checked against numpy by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import t as t_dist
from scipy.stats import ttest_rel

from acqsynth.evaluation.stats import mde
from acqsynth.experiment.report import (
    budget_to_reach,
    describe_relation,
    load_tables,
    spearman,
    write_experiment_report,
)

METHODS = ["static", "uncertainty", "variance"]
BUDGETS = [16, 48]
SEEDS = [0, 1, 2]
N_ITEMS = 20
BEFORE = 0.3
SKILL = {"static": 0.0, "uncertainty": 0.1, "variance": 0.05}


def _cell(method: str, budget: int, seed: int, quantile: float, correct: np.ndarray, forget: float) -> dict:
    acc = float(correct.mean())
    return {
        "method": method, "strategy": method, "budget": budget, "seed": seed, "quantile": quantile,
        "acquisition": None if method == "static" else method, "generator": None, "samples": budget,
        "generated": 2 * budget, "teacher_tokens": 100 * budget, "accuracy": acc, "accuracy_lo": acc - 0.1,
        "accuracy_hi": acc + 0.1, "accuracy_before": BEFORE, "forgetting": forget, "forgetting_before": 0.5,
        "n_eval": N_ITEMS, "wall_s": 12.5,
    }  # fmt: skip


def _items(method: str, budget: int, seed: int, quantile: float, correct: np.ndarray) -> list[dict]:
    return [
        {"method": method, "budget": budget, "seed": seed, "quantile": quantile, "suite": "task",
         "item_id": f"q/{i}", "correct": float(c)}
        for i, c in enumerate(correct)
    ]  # fmt: skip


def make_tables(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """3 methods × 2 budgets × 3 seeds on 20 items, 3 quantile cells × 2 seeds, and some scores."""
    rng = np.random.default_rng(seed)
    results, items, scores = [], [], []
    base = (rng.random(N_ITEMS) < BEFORE).astype(float)
    items += _items("base", 0, 0, np.nan, base)
    for method in METHODS:
        for budget in BUDGETS:
            for s in SEEDS:
                p = BEFORE + SKILL[method] + 0.1 * (budget == 48)
                correct = (rng.random(N_ITEMS) < p).astype(float)
                forget = 0.5 - 0.02 * SKILL[method] * 10 + rng.normal(0, 0.01)
                results.append(_cell(method, budget, s, np.nan, correct, forget))
                items += _items(method, budget, s, np.nan, correct)
    for q in (1.0, 2.0, 3.0):
        for s in (0, 1):
            correct = (rng.random(N_ITEMS) < BEFORE + 0.05 * q).astype(float)
            results.append(_cell("uncertainty", 16, s, q, correct, np.nan))
            items += _items("uncertainty", 16, s, q, correct)
    for method in ("uncertainty", "variance"):
        for r in range(2):
            for _ in range(30):
                score = float(rng.normal())
                scores.append(
                    {"method": method, "budget": 16, "seed": 0, "round": r, "kind": "candidate",
                     "acquisition": method, "score": score, "selected": score > 0.3}
                )  # fmt: skip
    return pd.DataFrame(results), pd.DataFrame(items), pd.DataFrame(scores)


def write_run(run_dir: Path, results, items, scores=None, meta=None) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    results.to_parquet(run_dir / "results.parquet")
    items.to_parquet(run_dir / "items.parquet")
    if scores is not None:
        scores.to_parquet(run_dir / "scores.parquet")
    meta = (
        meta
        if meta is not None
        else {"name": "demo", "baseline": "static", "task": "gsm8k", "student": "tiny"}
    )
    (run_dir / "experiment.json").write_text(json.dumps(meta), encoding="utf-8")
    return run_dir


def table_row(md: str, *first_cells: str) -> list[str]:
    """The cells of the first markdown table row that starts with `first_cells`."""
    for line in md.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells[: len(first_cells)] == list(first_cells):
                return cells
    raise AssertionError(f"no table row starting with {first_cells}")


@pytest.fixture(scope="module")
def full_report(
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[dict[str, Path], pd.DataFrame, pd.DataFrame]:
    results, items, scores = make_tables()
    run = write_run(tmp_path_factory.mktemp("exp"), results, items, scores)
    return write_experiment_report(run), results, items


def test_report_files_exist(full_report):
    paths, _, _ = full_report
    for name in (
        "report.md", "report.html", "plots/accuracy_vs_budget.png", "plots/forgetting.png",
        "plots/scores_uncertainty.png", "plots/scores_variance.png", "plots/utility.png",
    ):  # fmt: skip
        assert name in paths
        assert paths[name].is_file() and paths[name].stat().st_size > 0
    assert "plots/scores_static.png" not in paths


def test_html_is_self_contained(full_report):
    paths, _, _ = full_report
    page = paths["report.html"].read_text(encoding="utf-8")
    assert "http://" not in page and "https://" not in page
    assert re.findall(r'(?:src|href)\s*=\s*"(?!data:)', page) == []
    assert page.count('src="data:image/png;base64,') == 5
    assert "<table>" in page and "<style>" in page


def test_main_table_matches_numpy(full_report):
    paths, results, _ = full_report
    md = paths["report.md"].read_text(encoding="utf-8")
    main = results[results["quantile"].isna()]

    def accs(method: str, budget: int) -> np.ndarray:
        sel = main[(main["method"] == method) & (main["budget"] == budget)].sort_values("seed")
        return sel["accuracy"].to_numpy()

    tcrit = t_dist.ppf(0.975, len(SEEDS) - 1)
    for method in METHODS:
        for budget in BUDGETS:
            x = accs(method, budget)
            half = tcrit * x.std(ddof=1) / np.sqrt(x.size)
            row = table_row(md, method, str(budget))
            assert row[2] == "3" and row[3] == str(budget)  # every cell trained on its whole budget
            lo, hi = max(x.mean() - half, 0.0), min(x.mean() + half, 1.0)  # an accuracy's interval, clipped
            width = f" ± {half:.4f}" if (lo, hi) == (x.mean() - half, x.mean() + half) else ""
            assert row[4].startswith(f"{x.mean():.4f}{width} [{lo:.4f}, {hi:.4f}]")

    sel = main[(main["method"] == "uncertainty") & (main["budget"] == 48)]
    forgetting = (sel["forgetting"] - sel["forgetting_before"]).to_numpy()
    assert table_row(md, "uncertainty", "48")[5].startswith(f"{forgetting.mean():.4f} ± ")
    assert table_row(md, "static", "16")[6:] == ["1600", "12.5"]  # teacher tokens, wall s


def test_comparison_table_shows_the_t_test_mde_and_tost(full_report):
    """Every method against static: the paired t over seed means (as scipy's ttest_rel computes it), its
    MDE from the same se, TOST for the non-significant ones, and the item-level bootstrap and permutation."""
    paths, results, items = full_report
    md = paths["report.md"].read_text(encoding="utf-8")
    start = md.index("## Paired comparisons with static")
    section = md[start:md.index("\n## ", start)]
    assert "**Primary test:** paired t over the per-seed mean accuracies" in section
    main = results[results["quantile"].isna()]

    def accs(method: str, budget: int) -> np.ndarray:
        return main[(main["method"] == method) & (main["budget"] == budget)].sort_values("seed")["accuracy"].to_numpy()

    seen_tost = set()
    for method in ("uncertainty", "variance"):
        for budget in BUDGETS:
            a, b = accs(method, budget), accs("static", budget)
            ref = ttest_rel(a, b)
            ci = ref.confidence_interval(0.95)
            row = table_row(section, method, str(budget))
            d = (a - b).mean()
            assert row[2] == f"{d:.4f} [{ci.low:.4f}, {ci.high:.4f}] (n=3 seeds)"
            assert row[3] == f"{ref.pvalue:.4f} (df 2)"
            se = (a - b).std(ddof=1) / np.sqrt(3)
            assert row[4] == f"{mde(se, 2, exact=True):.4f} (seeds)"
            if ref.pvalue < 0.05:
                assert row[5] == "— (significant)"
            else:
                assert row[5].startswith(("equivalent within ±2 points, TOST p ", "inconclusive (too little data), TOST p "))
                seen_tost.add(row[5].split(",")[0])
            # every seed evaluated every item, so the item-level mean difference equals the seed-level one
            assert row[6].startswith(f"{d:.4f} [") and row[6].endswith("(n=20 items)")
            assert 0 < float(row[7]) <= 1
    assert seen_tost  # this synthetic grid has non-significant comparisons
    with pytest.raises(AssertionError):
        table_row(section, "static", "16")  # the baseline is not compared with itself
    assert "cannot detect the goal" not in md  # no goal in this experiment: nothing to warn about


def test_tost_reads_equivalent_when_the_seeds_agree_closely(tmp_path):
    """Five seeds whose differences stay within 0.2 points: not significant, and equivalent within ±2 points
    (TOST on the primary test's se); the results table alone suffices (no items)."""
    from acqsynth.evaluation.stats import tost

    static = np.array([0.50, 0.52, 0.48, 0.51, 0.49])
    shift = np.array([0.001, -0.002, 0.0, 0.002, -0.001])
    rows = [_cell(m, 16, s, np.nan, np.full(N_ITEMS, acc), 0.5)
            for m, accs in (("static", static), ("m", static + shift)) for s, acc in enumerate(accs)]
    items = pd.DataFrame({c: pd.Series(dtype=float if c == "correct" else object) for c in
                          ["method", "budget", "seed", "quantile", "suite", "item_id", "correct"]})
    md = write_experiment_report(write_run(tmp_path / "eq", pd.DataFrame(rows), items))["report.md"].read_text()
    row = table_row(md[md.index("## Paired comparisons"):], "m", "16")
    se = shift.std(ddof=1) / np.sqrt(5)
    assert row[3] == "1.0000 (df 4)"  # the shifts sum to zero
    assert row[5] == f"equivalent within ±2 points, TOST p {tost(0.0, se, 4, 0.02).p:.4f}"
    assert row[6] == "—" and row[7] == "—"  # no items: no item-level comparison


def test_mde_warning_appears_only_when_the_mde_exceeds_the_goal(tmp_path):
    results, items, _ = make_tables()
    main = results[results["quantile"].isna()]
    meta = {"name": "w", "baseline": "static", "goal": {"methods": ["uncertainty", "variance"], "gain": 0.0}}
    mdes = {}
    for method in ("uncertainty", "variance"):
        for budget in BUDGETS:
            sel = {m: main[(main["method"] == m) & (main["budget"] == budget)].sort_values("seed")["accuracy"]
                   for m in (method, "static")}
            d = sel[method].to_numpy() - sel["static"].to_numpy()
            mdes[method, budget] = mde(d.std(ddof=1) / np.sqrt(3), 2, exact=True)
    lo, hi = min(mdes.values()), max(mdes.values())
    assert lo < hi
    for gain, expected in ((hi + 0.001, []), ((lo + hi) / 2, [k for k, v in mdes.items() if v > (lo + hi) / 2])):
        meta["goal"]["gain"] = gain
        md = write_experiment_report(write_run(tmp_path / f"g{gain}", main, items, meta=meta))["report.md"].read_text()
        lines = [line for line in md.splitlines() if "cannot detect the goal" in line]
        if not expected:
            assert lines == []
            continue
        assert lines[0].startswith(f"**Warning: this design cannot detect the goal gain of {gain:g}")
        assert f"in {len(expected)} of 4 comparisons" in lines[0]
        for method, budget in expected:
            assert f"- {method}, budget {budget}: MDE {mdes[method, budget]:.4f} > {gain:g} (paired t over 3 seeds)" in md


def test_an_accuracy_interval_is_clipped_to_0_1_and_then_shown_without_a_half_width(tmp_path):
    rows, items = [], []
    for s, acc in zip((0, 1), (0.05, 0.40), strict=True):  # 2 seeds: t(0.975, 1) = 12.7 stretches far below 0
        correct = np.zeros(N_ITEMS)
        correct[: int(round(acc * N_ITEMS))] = 1
        rows.append(_cell("static", 16, s, np.nan, correct, np.nan))
        items += _items("static", 16, s, np.nan, correct)
    run = write_run(tmp_path / "run", pd.DataFrame(rows), pd.DataFrame(items))
    md = write_experiment_report(run, tmp_path / "out")["report.md"].read_text(encoding="utf-8")
    hi = 0.225 + t_dist.ppf(0.975, 1) * np.std([0.05, 0.40], ddof=1) / np.sqrt(2)
    assert hi > 1  # both ends clip
    assert table_row(md, "static", "16")[4] == "0.2250 [0.0000, 1.0000] (n=2)"
    assert "an accuracy's clipped to [0, 1]" in md

def test_methods_in_order_and_quantile_cells_separate(full_report):
    paths, _, _ = full_report
    md = paths["report.md"].read_text(encoding="utf-8")
    first = [md.index(f"| {m} | 16 |") for m in METHODS]
    assert first == sorted(first)
    assert "## Utility check" in md and "Spearman" in md
    assert table_row(md, "uncertainty", "16", "1")[3].endswith("(n=2)")


def test_budget_to_reach_interpolates():
    budgets, means = np.array([16, 48]), np.array([0.10, 0.20])
    assert budget_to_reach(budgets, means, 0.15) == pytest.approx(32.0)
    assert budget_to_reach(budgets, means, 0.05) == 16.0
    assert budget_to_reach(budgets, means, 0.25) is None
    # first crossing of a non-monotone curve
    assert budget_to_reach(np.array([16, 32, 64]), np.array([0.1, 0.3, 0.2]), 0.2) == pytest.approx(24.0)


def test_efficiency_table_in_report(tmp_path):
    rows, items = [], []
    for budget, acc in ((16, 0.10), (48, 0.20)):
        for s in SEEDS:
            correct = np.zeros(N_ITEMS)
            correct[: int(round(acc * N_ITEMS))] = 1
            rows.append(_cell("static", budget, s, np.nan, correct, np.nan))
            items += _items("static", budget, s, np.nan, correct)
    meta = {"name": "eff", "baseline": "static", "tau": [0.15, 0.5], "task": "t", "student": "s"}
    run = write_run(tmp_path / "run", pd.DataFrame(rows), pd.DataFrame(items), meta=meta)
    md = write_experiment_report(run, tmp_path / "out")["report.md"].read_text(encoding="utf-8")
    row = table_row(md, "static", "32")
    assert row[2] == "not reached (≤ 48)"
    # the constant accuracies give a zero-width t interval, never a crash
    assert table_row(md, "static", "16")[4].startswith("0.1000 ± 0.0000")
    assert "says nothing about data efficiency" not in md
    # targets below every accuracy of the grid: the table says so instead of passing for a finding
    meta["tau"] = [0.05, 0.08]
    run = write_run(tmp_path / "low", pd.DataFrame(rows), pd.DataFrame(items), meta=meta)
    md = write_experiment_report(run, tmp_path / "low-out")["report.md"].read_text(encoding="utf-8")
    assert table_row(md, "static", "≤ 16 (at the smallest budget)")[2] == "≤ 16 (at the smallest budget)"
    assert "Every method reaches every τ at its smallest budget, so this table says nothing" in md


def test_missing_scores_forgetting_and_quantiles(tmp_path):
    results, items, _ = make_tables(1)
    results = results[results["quantile"].isna()].copy()
    results["forgetting"] = np.nan
    results["forgetting_before"] = np.nan
    # a method with a single seed
    results = results[~((results["method"] == "variance") & (results["seed"] > 0))]
    run = write_run(tmp_path / "run", results, items[items["quantile"].isna()])
    paths = write_experiment_report(run)
    md = paths["report.md"].read_text(encoding="utf-8")
    assert "No forgetting data" in md and "Forgetting plot skipped" in md
    assert "no acquisition scores recorded" in md
    assert "No quantile cells" in md
    assert "forgetting.png" not in "".join(paths) and "utility.png" not in "".join(paths)
    row = table_row(md, "variance", "16")
    assert "n=1, no interval" in row[4]
    # one seed: no seed-to-seed variance, so the primary test, MDE and TOST fall back to that seed's items
    section = md[md.index("## Paired comparisons"):]
    row = table_row(section, "variance", "16")
    static = items[(items["method"] == "static") & (items["budget"] == 16) & (items["seed"] == 0)]
    mine = items[(items["method"] == "variance") & (items["budget"] == 16) & (items["seed"] == 0)]
    a, b = mine.sort_values("item_id")["correct"].to_numpy(), static.sort_values("item_id")["correct"].to_numpy()
    ref = ttest_rel(a, b)
    assert row[2].endswith("(n=20 items, 1 seed)") and row[3] == f"{ref.pvalue:.4f} (df 19)"
    assert row[4] == f"{mde((a - b).std(ddof=1) / np.sqrt(20), 19, exact=True):.4f} (items, 1 seed)"
    assert "nan" not in md.lower()


def test_csv_fallback(tmp_path):
    results, items, scores = make_tables(2)
    run = tmp_path / "run"
    run.mkdir()
    results.to_csv(run / "results.csv", index=False)
    items.to_csv(run / "items.csv", index=False)
    scores.to_csv(run / "scores.csv", index=False)
    tables = load_tables(run)
    assert tables.meta == {} and len(tables.results) == len(results)
    assert tables.items["item_id"].iloc[0] == "q/0"
    md = write_experiment_report(run)["report.md"].read_text(encoding="utf-8")
    assert "Experiment: unnamed" in md and "| uncertainty | 48 |" in md


def test_spearman_reading_is_honest():
    rho, p = spearman(np.array([1, 1, 2, 2, 3, 3]), np.array([0.0, 0.01, 0.05, 0.06, 0.1, 0.11]))
    assert rho == pytest.approx(1.0, abs=0.1) and p < 0.05
    assert describe_relation(rho, p, 6).startswith("higher-score quantiles gave larger gains")
    rho, p = spearman(np.array([1, 2, 3, 1, 2, 3]), np.array([0.1, 0.0, 0.05, 0.02, 0.1, 0.0]))
    assert describe_relation(rho, p, 6).startswith("no clear monotone relation")
    assert describe_relation(*spearman(np.array([1, 2]), np.array([0.1, 0.2])), 2).startswith(
        "no correlation computed"
    )


def test_utility_cells_of_one_method_per_quantile_are_grouped(tmp_path):
    """The runner makes one method per quantile (utility-q1, -q2, -q3) with a shared quantile_group;
    the report must put them on one curve and correlate quantile with gain across them."""
    rng = np.random.default_rng(3)
    rows, items = [], []
    for q in (1, 2, 3):
        for seed in range(3):
            correct = (rng.random(N_ITEMS) < 0.1 + 0.2 * q).astype(float)
            row = _cell(f"utility-q{q}", 16, seed, float(q), correct, 0.5)
            row["quantile_group"] = "rejection by loss, 3 bins"
            rows.append(row)
            items += _items(f"utility-q{q}", 16, seed, float(q), correct)
    run = write_run(tmp_path / "run", pd.DataFrame(rows), pd.DataFrame(items))
    paths = write_experiment_report(run)
    md = paths["report.md"].read_text()
    assert "rejection by loss, 3 bins, all budgets: higher-score quantiles gave larger gains" in md
    assert "no correlation computed" not in md


def test_cells_short_of_their_budget_are_flagged(tmp_path):
    results, items, _ = make_tables()
    main = results[results["quantile"].isna()].copy()
    main.loc[(main["method"] == "static") & (main["budget"] == 16) & (main["seed"] == 1), "samples"] = 9
    md = write_experiment_report(write_run(tmp_path / "run", main, items))["report.md"].read_text()
    assert table_row(md, "static", "16")[3] == "9–16 (short of 16)"


def _goal_tables(forget_a: float | None, seeds: list[int], gains_a: tuple[int, ...] = (9, 10, 11),
                 gains_b: tuple[int, ...] = (0, 1, 2)) -> tuple[pd.DataFrame, pd.DataFrame]:
    """static vs goal methods a and b at budget 16 on 40 items: on seed k, a is right on gains_a[k] more
    items than static and b on gains_b[k] more (other ones), so the gains vary from seed to seed. On the 20
    forgetting items static and b are right on the first half; a on the first `forget_a` share, or (None)
    on a random 9, 11, 10 of them by seed, so its difference straddles zero."""
    rng = np.random.default_rng(3)
    results, items = [], []
    base = (rng.random(40) < 0.3).astype(float)  # the same items right at every seed
    wrong = np.flatnonzero(base == 0)
    for k, s in enumerate(seeds):
        task = {"static": base, "a": base.copy(), "b": base.copy()}
        task["a"][wrong[:gains_a[k]]] = 1.0
        task["b"][wrong[len(wrong) - gains_b[k]:]] = 1.0
        for method, correct in task.items():
            forget = np.zeros(20)
            if method == "a" and forget_a is None:
                forget[rng.permutation(20)[:(9, 11, 10)[k]]] = 1.0
            else:
                forget[: int(20 * (forget_a if method == "a" else 0.5))] = 1.0
            results.append(_cell(method, 16, s, np.nan, correct, float(forget.mean())))
            items += _items(method, 16, s, np.nan, correct)
            items += [{**row, "suite": "forgetting", "item_id": f"f/{i}", "correct": float(forget[i])}
                      for i, row in enumerate(_items(method, 16, s, np.nan, forget))]
    return pd.DataFrame(results), pd.DataFrame(items)


def _verdict(tmp_path: Path, name: str, results, items, gain: float = 0.2, **meta):
    from acqsynth.experiment.report import build_report, goal_verdicts, main_rows, render_markdown

    meta = {"name": "goal", "baseline": "static", "goal": {"methods": ["a", "b"], "gain": gain}, **meta}
    tables = load_tables(write_run(tmp_path / name, results, items, meta=meta))
    verdicts = goal_verdicts(tables, main_rows(tables, "static"), "static")
    return verdicts, render_markdown(build_report(tables, tmp_path / name)[0])


FORGETS = "no more forgetting (interval reaches zero or above)"


def test_goal_verdict_picks_the_best_and_judges_it_by_the_primary_test(tmp_path):
    results, items = _goal_tables(None, [0, 1, 2])
    [v], md = _verdict(tmp_path, "met", results, items)
    assert v.best.method == "a" and v.paired_seeds == 3
    c = v.best.primary
    assert c.basis == "seeds" and c.test.diff == pytest.approx(0.25) and c.test.lo > 0
    acc = {m: results[results["method"] == m].sort_values("seed")["accuracy"].to_numpy() for m in ("static", "a", "b")}
    p_a, p_b = ttest_rel(acc["a"], acc["static"]).pvalue, ttest_rel(acc["b"], acc["static"]).pvalue
    assert c.test.p == pytest.approx(p_a, rel=1e-9) and p_a < p_b
    assert v.holm_p == pytest.approx({"a": 2 * p_a, "b": max(2 * p_a, p_b)})  # Holm by hand: m = 2
    f = v.forgetting_diff["a"]
    assert f.basis == "seeds" and f.test.lo < 0 < f.test.hi  # a random 9-11 of 20 against 10: no evidence
    assert v.checks == {"gain ≥ 0.2": True, "paired interval above zero": True, "Holm p < 0.05": True, FORGETS: True}
    assert v.state == "met"
    assert "budget 16: best a, Δ 0.2500" in md and "→ **met**" in md and "(provisional" not in md
    assert "cannot detect the goal" not in md  # MDE about 0.08 against a goal of 0.2

    # a forgets more: all its forgetting items wrong against half right for static
    [v], _ = _verdict(tmp_path, "forgets", *_goal_tables(0.0, [0, 1, 2]))
    assert v.forgetting_diff["a"].test.hi < 0 and v.state == "not met"
    assert v.checks == {"gain ≥ 0.2": True, "paired interval above zero": True, "Holm p < 0.05": True, FORGETS: False}

    # a gain of 0, 4 and 8 items by seed: the item-level test sees it, the seeds' spread swamps it, and the
    # design could not have detected the goal (MDE above it), which the Markdown says
    [v], md = _verdict(tmp_path, "few", *_goal_tables(0.5, [0, 1, 2], gains_a=(0, 4, 8)), gain=0.05)
    assert v.best.item_p < 0.05 and v.best.primary.test.p > 0.05 and v.state == "not met"
    assert v.checks["gain ≥ 0.05"] and not v.checks["paired interval above zero"] and not v.checks["Holm p < 0.05"]
    assert v.best.primary.mde > 0.05 and f"the design cannot detect the goal here (MDE {v.best.primary.mde:.4f} > 0.05)" in md
    assert "**Warning: this design cannot detect the goal gain of 0.05" in md
    assert "inconclusive (too little data)" in table_row(md, "16", "**a**")[8]

    # a higher bar, and two seeds only: not met, and provisional
    [v], md = _verdict(tmp_path, "two", *_goal_tables(0.5, [0, 1]), gain=0.3)
    assert "gain ≥ 0.3: no" in md and "→ **not met** (provisional: 2 paired seed(s))" in md

    # one seed: the primary test is the paired t over that seed's items
    [v], md = _verdict(tmp_path, "one", *_goal_tables(0.5, [0]), gain=0.2)
    task = items[(items["suite"] == "task") & (items["seed"] == 0)]
    a, b = (task[task["method"] == m].sort_values("item_id")["correct"].to_numpy() for m in ("a", "static"))
    assert v.best.primary.basis == "items" and v.paired_seeds == 1
    assert v.best.primary.test.p == pytest.approx(ttest_rel(a, b).pvalue, rel=1e-9)
    assert "(n=40 items, 1 seed)" in md and "(provisional: 1 paired seed(s))" in md

    # a goal method due at this budget but not run yet counts in Holm's family with p = 1
    [v], _ = _verdict(tmp_path, "due", results, items, goal={"methods": ["a", "b", "c"], "gain": 0.2},
                      budgets=[16], method_budgets={})
    assert v.holm_p["c"] == 1.0 and v.holm_p["a"] == pytest.approx(3 * p_a)

    # no forgetting suite: that check does not apply; no goal in experiment.json: no section
    [v], _ = _verdict(tmp_path, "noforget", results, items[items["suite"] == "task"])
    assert FORGETS not in v.checks and v.state == "met"
    _, md = _verdict(tmp_path, "none", results, items, goal=None)
    assert "## Goal" not in md


def test_goal_projection_says_what_the_planned_seeds_could_detect(tmp_path):
    from acqsynth.evaluation.stats import paired_mde, pairs_needed, sd_upper
    from acqsynth.experiment.report import goal_projections, main_rows

    results, items = _goal_tables(0.5, [0, 1, 2], gains_a=(0, 4, 8))
    meta = {"seeds": list(range(8)), "budget_seeds": {"32": [0, 1]}}
    [v], md = _verdict(tmp_path, "plan", results, items, gain=0.05, **meta)
    tables = load_tables(tmp_path / "plan")
    projections = {p.method: p for p in goal_projections(tables.meta, [v], main_rows(tables, "static"), 0.05)}
    acc = {m: results[results["method"] == m].sort_values("seed")["accuracy"].to_numpy() for m in ("static", "a")}
    sd = float(np.std(acc["a"] - acc["static"], ddof=1))  # gains of 0, 4, 8 items in 40: sd 0.1
    assert sd == pytest.approx(0.1)
    p = projections["a"]
    assert (p.seeds, p.planned, p.holm_alpha) == (3, 8, pytest.approx(0.025))  # family a, b: 0.05 / 2
    assert p.sd == pytest.approx(sd) and p.sd_hi == pytest.approx(sd_upper(sd, 2)) and p.sd_hi > 4 * sd
    assert p.mde == pytest.approx(paired_mde(sd, 8)) and p.mde_holm == pytest.approx(paired_mde(sd, 8, 0.025))
    assert p.mde < p.mde_holm < p.mde_holm_hi
    assert p.needed == pairs_needed(sd, 0.05, 0.025) and paired_mde(sd, p.needed, 0.025) <= 0.05
    assert paired_mde(sd, p.needed - 1, 0.025) > 0.05
    row = table_row(md, "16", "a", "3")
    points = lambda x: f"{100 * x:.2f}".rstrip("0").rstrip(".")  # noqa: E731
    assert row[3] == f"10 ({points(p.sd_hi)})" and row[5] == points(p.mde) and row[7] == points(p.mde_holm_hi)
    assert row[4] == "8" and row[8] == str(p.needed)
    # b's gains (0, 1, 2 items) spread less: fewer seeds would do
    assert projections["b"].needed < p.needed
    # no plan in experiment.json: no projection
    [v], md = _verdict(tmp_path, "noplan", results, items, gain=0.05)
    assert "What the planned seeds could detect" not in md


def test_contrasts_compare_two_methods_other_than_the_baseline_with_holm(tmp_path):
    from acqsynth.experiment.report import build_report, contrast_rows, render_markdown

    results, items = _goal_tables(None, [0, 1, 2])
    meta = {"name": "contrasts", "baseline": "static", "contrasts": {"a": "b", "b": "static"}}
    tables = load_tables(write_run(tmp_path / "c", results, items, meta=meta))
    found = contrast_rows(tables)
    assert [(c.row.method, c.reference, c.row.budget) for c in found] == [("a", "b", 16), ("b", "static", 16)]
    acc = {m: results[results["method"] == m].sort_values("seed")["accuracy"].to_numpy() for m in ("static", "a", "b")}
    p_ab, p_b = ttest_rel(acc["a"], acc["b"]).pvalue, ttest_rel(acc["b"], acc["static"]).pvalue
    ab = found[0].row.primary
    assert ab.basis == "seeds" and ab.test.diff == pytest.approx(np.mean(acc["a"] - acc["b"]))
    assert ab.test.p == pytest.approx(p_ab, rel=1e-9)
    lo, hi = sorted([p_ab, p_b])
    holm = {p_ab: min(1, 2 * p_ab) if p_ab == lo else max(min(1, 2 * lo), hi),
            p_b: min(1, 2 * p_b) if p_b == lo else max(min(1, 2 * lo), hi)}
    assert [c.holm_p for c in found] == pytest.approx([holm[p_ab], holm[p_b]])
    md = render_markdown(build_report(tables, tmp_path / "c")[0])
    assert "## Contrasts" in md and "`a` − `b`" in md
    assert table_row(md, "a", "b", "16")[3] == "paired t over 3 seeds"

    # a contrast whose methods never ran at a common budget says so; none configured: no section
    meta["contrasts"] = {"a": "missing"}
    md = render_markdown(build_report(load_tables(write_run(tmp_path / "d", results, items, meta=meta)), tmp_path / "d")[0])
    assert "No budget has cells of both methods of a contrast yet." in md
    md = render_markdown(build_report(load_tables(write_run(tmp_path / "e", results, items,
                                                            meta={"baseline": "static"})), tmp_path / "e")[0])
    assert "## Contrasts" not in md


def test_per_seed_table_lists_every_seed_and_the_teacher_yield(full_report):
    paths, results, _ = full_report
    md = paths["report.md"].read_text(encoding="utf-8")
    section = md[md.index("## Accuracy per seed") :]
    main = results[results["quantile"].isna()]
    for method in METHODS:
        for budget in BUDGETS:
            sel = main[(main["method"] == method) & (main["budget"] == budget)].sort_values("seed")
            row = table_row(section, method, str(budget))
            assert row[2:5] == [f"{a:.4f}" for a in sel["accuracy"]]
            assert row[5] == f"{sel['accuracy'].mean():.4f}"
            assert row[6] == "2.00"  # _cell spends 2 completions per training sample


def test_per_seed_table_with_a_missing_seed_real_data_and_an_empty_cell(tmp_path):
    results, items, _ = make_tables()
    main = results[results["quantile"].isna()]
    main = main[~((main["method"] == "variance") & (main["budget"] == 48) & (main["seed"] == 1))].copy()
    real = (main["method"] == "uncertainty") & (main["budget"] == 48)
    main.loc[real, "generated"] = 0  # real data: no teacher completions
    empty = (main["method"] == "variance") & (main["budget"] == 16)
    main.loc[empty, ["samples", "generated"]] = 0  # cells whose rounds found nothing
    md = write_experiment_report(write_run(tmp_path / "r", main, items))["report.md"].read_text(encoding="utf-8")
    section = md[md.index("## Accuracy per seed") :]
    row = table_row(section, "variance", "48")
    kept = main[(main["method"] == "variance") & (main["budget"] == 48)].sort_values("seed")["accuracy"]
    assert row[3] == "" and row[2] == f"{kept.iloc[0]:.4f}" and row[5] == f"{kept.mean():.4f}"
    assert table_row(section, "uncertainty", "48")[6] == "—"
    assert table_row(section, "variance", "16")[6] == "—"


def test_a_warm_started_grid_says_what_before_means(tmp_path):
    results, items, scores = make_tables()
    warmed = {0: 0.191, 1: 0.206, 2: 0.2}
    results["accuracy_before"] = results["seed"].map(warmed)
    meta = {"name": "demo", "baseline": "static", "task": "arithmetic-2d", "student": "tiny", "warmup": 32}
    out = write_experiment_report(write_run(tmp_path / "warm", results, items, scores, meta))
    md = out["report.md"].read_text()
    assert "untrained accuracy" not in md
    assert ("before training: the student warm-started on the same 32 samples in every cell of a seed" in md
            and "mean over seeds (seed 0: 0.1910; seed 1: 0.2060; seed 2: 0.2000)" in md)
    assert "accuracy 0.1990, mean" in md  # (0.191 + 0.206 + 0.2) / 3, not the first row's
    plain = write_experiment_report(write_run(tmp_path / "plain", *make_tables()))["report.md"].read_text()
    assert f"untrained accuracy: {BEFORE:.4f}" in plain
