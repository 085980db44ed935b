"""The experiment report: methods × budgets × seeds, from three tidy tables alone.

An `acqsynth experiment` trains one small student per cell (method, budget, seed[, quantile]) and
evaluates it. This module reads the tables the runner writes (results, items, scores, plus the
optional experiment.json) and writes `report.md`, a self-contained `report.html` and `plots/*.png`.
It needs no cell directories, so a committed copy of the tables reproduces the report.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from acqsynth.evaluation.stats import (
    Estimate,
    PairedT,
    Tost,
    holm,
    item_mde,
    mde,
    paired_bootstrap,
    paired_mde,
    paired_t,
    pairs_needed,
    permutation_test,
    sd_upper,
    t_interval,
    tost,
)
from acqsynth.experiment.per_item import (
    align,
    builtin_groups,
    candidate_mix,
    group_accuracy,
    group_differences,
    selected_mix,
    tally,
)

LEVEL = 0.95
POWER = 0.8
"""Power at which the minimum detectable effect (MDE) of every comparison is stated."""
EQUIVALENCE_MARGIN = 0.02
"""±2 accuracy points: the TOST margin within which a non-significant difference counts as none."""
PLOTS = "plots"
ITEM_COLUMNS = ["method", "budget", "seed", "quantile", "suite", "item_id", "correct"]
SCORE_COLUMNS = ["method", "budget", "seed", "round", "kind", "acquisition", "score", "selected", "item_id"]


# --- loading -------------------------------------------------------------------------------------


@dataclass
class Tables:
    """The experiment's tidy tables and its metadata (experiment.json, empty when absent)."""

    results: pd.DataFrame
    items: pd.DataFrame
    scores: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)


def _read_table(run_dir: Path, stem: str, columns: list[str] | None) -> pd.DataFrame:
    """`<stem>.parquet`, else `<stem>.csv`; an empty frame with `columns` when optional and absent."""
    parquet, csv = run_dir / f"{stem}.parquet", run_dir / f"{stem}.csv"
    if parquet.exists():
        return pd.read_parquet(parquet)
    if csv.exists():
        return pd.read_csv(csv, dtype={"item_id": str, "method": str})
    if columns is None:
        raise FileNotFoundError(f"no {stem}.parquet or {stem}.csv in {run_dir}")
    return pd.DataFrame(columns=columns)


def load_tables(run_dir: Path) -> Tables:
    """Read results (required), items and scores (optional) and experiment.json (optional)."""
    run_dir = Path(run_dir)
    meta_path = run_dir / "experiment.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    results = _read_table(run_dir, "results", None)
    if "quantile" not in results.columns:
        results["quantile"] = np.nan
    items = _read_table(run_dir, "items", ITEM_COLUMNS)
    if "quantile" not in items.columns:
        items["quantile"] = np.nan
    return Tables(results, items, _read_table(run_dir, "scores", SCORE_COLUMNS), meta)


# --- formatting ----------------------------------------------------------------------------------


def _finite(x: Any) -> bool:
    """True for a real, finite number (not None, NaN or inf)."""
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _num(x: Any, digits: int = 4) -> str:
    """A number with `digits` decimals, or '—' when missing."""
    return f"{float(x):.{digits}f}" if _finite(x) else "—"


def _est(e: Estimate | None, symmetric: bool = True, unit: str = "") -> str:
    """`mean ± half [lo, hi] (n=…)`; just the mean when the interval is undefined (one seed)."""
    if e is None or not _finite(e.mean):
        return "—"
    n = f"n={e.n}{' ' + unit if unit else ''}"
    if not (_finite(e.lo) and _finite(e.hi)):
        return f"{e.mean:.4f} ({n}, no interval)"
    symmetric = symmetric and math.isclose(e.mean - e.lo, e.hi - e.mean, rel_tol=1e-6, abs_tol=1e-12)  # not once clipped
    half = f" ± {(e.hi - e.lo) / 2:.4f}" if symmetric else ""
    return f"{e.mean:.4f}{half} [{e.lo:.4f}, {e.hi:.4f}] ({n})"


def _budget(x: float) -> str:
    """A budget (sample count) to one decimal, without the '.0' when whole (interpolation rounds off)."""
    return f"{float(x):.1f}".removesuffix(".0")


def _t(values: Any, within: tuple[float, float] | None = None) -> Estimate | None:
    """Student-t interval over the finite values, clipped to `within` (an accuracy's [0, 1]: with 2 seeds the
    t interval can reach below 0); None when there are none."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if not x.size:
        return None
    e = t_interval(x, level=LEVEL)
    if within is None or not (_finite(e.lo) and _finite(e.hi)):
        return e
    return replace(e, lo=max(e.lo, within[0]), hi=min(e.hi, within[1]))


# --- document model (rendered to markdown and HTML) -----------------------------------------------


@dataclass
class Doc:
    """A flat list of blocks: ('h1'|'h2'|'p'|'ul'|'table'|'img'|'pre', payload)."""

    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, kind: str, payload: Any) -> None:
        self.blocks.append((kind, payload))

    def table(self, headers: list[str], rows: list[list[str]]) -> None:
        self.add("table", (headers, rows))


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(doc: Doc) -> str:
    """The document as GitHub-flavoured markdown; images by their relative path."""
    out: list[str] = []
    for kind, payload in doc.blocks:
        if kind == "h1":
            out += [f"# {payload}", ""]
        elif kind == "h2":
            out += [f"## {payload}", ""]
        elif kind == "p":
            out += [payload, ""]
        elif kind == "ul":
            out += [f"- {item}" for item in payload] + [""]
        elif kind == "pre":
            out += ["```", *payload, "```", ""]
        elif kind == "img":
            alt, rel, _ = payload
            out += [f"![{alt}]({rel})", ""]
        elif kind == "table":
            headers, rows = payload
            out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("")
    return "\n".join(out)


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0;font-size:0.9em}"
    "th,td{border:1px solid #ccc;padding:0.3em 0.6em;text-align:left}th{background:#f0f0f0}"
    "img{max-width:100%;display:block;margin:1em 0}pre{background:#f6f6f6;padding:0.8em;overflow-x:auto}"
    "code{font-family:monospace}"
)


def _inline_html(text: str) -> str:
    """Escape text, then turn markdown **bold** and `code` into tags."""
    s = html.escape(str(text))
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def render_html(doc: Doc, title: str) -> str:
    """The document as one self-contained HTML page: inline CSS, images as base64 data URIs."""
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
    ]
    for kind, payload in doc.blocks:
        if kind in ("h1", "h2", "p"):
            out.append(f"<{kind}>{_inline_html(payload)}</{kind}>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in payload) + "</ul>")
        elif kind == "pre":
            out.append("<pre><code>" + html.escape("\n".join(payload)) + "</code></pre>")
        elif kind == "img":
            alt, _, path = payload
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            out.append(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')
        elif kind == "table":
            headers, rows = payload
            head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out)


# --- selections and statistics --------------------------------------------------------------------


def _methods(results: pd.DataFrame) -> list[str]:
    """Methods in order of first appearance."""
    return list(dict.fromkeys(results["method"].astype(str)))


def _main_cells(results: pd.DataFrame) -> pd.DataFrame:
    """The cells that trained on the method's full selection (no acquisition-score quantile)."""
    return results[results["quantile"].isna()]


def _quantile_cells(results: pd.DataFrame) -> pd.DataFrame:
    return results[results["quantile"].notna()]


def untrained_accuracy(tables: Tables) -> float:
    """Accuracy before training: results' accuracy_before (with a warm start, which differs by seed,
    its mean over seeds), else the 'base' items' mean."""
    if "accuracy_before" in tables.results.columns:
        per_seed = _before_per_seed(tables.results)
        if len(per_seed):
            return float(per_seed.mean())
    it = tables.items
    base = it[(it["method"] == "base") & (it["suite"] == "task")] if len(it) else it
    return float(base["correct"].mean()) if len(base) else float("nan")


def _before_per_seed(results: pd.DataFrame) -> pd.Series:
    """Each seed's accuracy before training (its first cell's `accuracy_before`), indexed by seed."""
    vals = pd.to_numeric(results["accuracy_before"], errors="coerce")
    return vals.groupby(results["seed"].to_numpy()).first().dropna()


def _warmup(tables: Tables) -> int:
    """Warm-up samples every cell trained on before round 0 (experiment.json `warmup`; 0 = none)."""
    return int(tables.meta.get("warmup") or 0)


def _per_seed(cells: pd.DataFrame, column: str) -> pd.Series:
    """One value per seed (the mean if a seed repeats), indexed by seed."""
    vals = pd.to_numeric(cells[column], errors="coerce")
    return vals.groupby(cells["seed"].to_numpy()).mean()


def forgetting_change(cells: pd.DataFrame) -> pd.Series:
    """After − before on the forgetting suite, per seed; empty when the cells have no forgetting data."""
    if not {"forgetting", "forgetting_before"} <= set(cells.columns):
        return pd.Series(dtype=float)
    delta = pd.to_numeric(cells["forgetting"], errors="coerce") - pd.to_numeric(
        cells["forgetting_before"], errors="coerce"
    )
    return delta.groupby(cells["seed"].to_numpy()).mean().dropna()


def item_matrix(items: pd.DataFrame, method: str, budget: int, suite: str = "task") -> pd.DataFrame:
    """Seeds × item_id correctness on one suite (task or forgetting) for one (method, budget),
    non-quantile cells."""
    if not len(items):
        return pd.DataFrame()
    sel = items[
        (items["method"] == method)
        & (items["budget"] == budget)
        & items["quantile"].isna()
        & (items["suite"] == suite)
    ]
    if not len(sel):
        return pd.DataFrame()
    return sel.pivot_table(index="seed", columns="item_id", values="correct", aggfunc="mean")


def paired_items(a: pd.DataFrame, b: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
    """Align two seeds × items matrices on their common seeds and fully observed common items."""
    pair = align(a, b)
    return None if pair is None else (pair[0].to_numpy(dtype=float), pair[1].to_numpy(dtype=float))


@dataclass
class Comparison:
    """The primary paired test of one (method, budget) against the baseline, and what it could detect.

    Interval, p, MDE and TOST all rest on one standard error: the paired t's over per-seed means
    (basis "seeds"), or, with a single paired seed, over that seed's items (basis "items")."""

    basis: str
    test: PairedT
    mde: float
    """Minimum detectable effect at POWER, two-sided at 1 - LEVEL, exact noncentral t (NaN when the se is
    undefined)."""
    tost: Tost | None = None
    """Equivalence within ±EQUIVALENCE_MARGIN; set only for a comparison that is not significant."""

    @property
    def significant(self) -> bool:
        return bool(self.test.p < 1 - LEVEL)

    @property
    def label(self) -> str:
        """Which test this is, in words: "paired t over 3 seeds" or "paired t over 200 items (1 seed)"."""
        if self.basis == "seeds":
            return f"paired t over {self.test.n} seeds"
        return f"paired t over {self.test.n} items (1 seed)"


def paired_comparison(
    a_seeds: pd.Series, b_seeds: pd.Series, a_items: pd.DataFrame, b_items: pd.DataFrame
) -> Comparison | None:
    """The primary test of a against b: the paired t over the seeds both have (values per seed, indexed by
    seed); with one common seed, the paired t over that seed's items (seeds × items matrices) instead, since
    one seed has no seed-to-seed variance. MDE from the same se; TOST when not significant. None without
    a common seed."""
    seeds = list((a_seeds - b_seeds).dropna().index)
    if not seeds:
        return None
    one = None
    if len(seeds) == 1 and seeds[0] in a_items.index and seeds[0] in b_items.index:
        one = paired_items(a_items.loc[seeds], b_items.loc[seeds])
    if one is not None:
        basis, test = "items", item_mde(one[0], one[1], alpha=1 - LEVEL, power=POWER)[1]
    else:
        basis, test = "seeds", paired_t(a_seeds[seeds].to_numpy(), b_seeds[seeds].to_numpy(), level=LEVEL)
    out = Comparison(basis, test, mde(test.se, test.df, alpha=1 - LEVEL, power=POWER, exact=True))
    if not out.significant:
        out.tost = tost(test.diff, test.se, test.df, EQUIVALENCE_MARGIN, alpha=1 - LEVEL)
    return out


@dataclass
class Row:
    """One (method, budget) line of the main table, with its paired comparison to the baseline."""

    method: str
    budget: int
    accuracy: Estimate | None
    forgetting: Estimate | None
    primary: Comparison | None = None
    """The primary test against the baseline: paired t over per-seed mean accuracies."""
    item_diff: Estimate | None = None
    """Item-level: paired bootstrap over items within seed (seeds held fixed, the same item draws for every
    seed), the variance of which items were drawn; the paired seeds' differences are averaged per item."""
    item_p: float | None = None
    """Item-level: sign-flip permutation p over the items (seed-averaged differences), same model."""
    paired_seeds: int = 0
    """Seeds the item-level difference to the baseline rests on (those both have)."""
    is_baseline: bool = False
    teacher_tokens: float = float("nan")
    wall_s: float = float("nan")
    samples: str = "—"
    """Training samples the cells really used: the budget, or min–max when some fell short (flagged)."""


def main_rows(tables: Tables, baseline: str) -> list[Row]:
    """Per (method, budget): accuracy and forgetting over seeds and the paired difference to the baseline."""
    cells = _main_cells(tables.results)
    rows = []
    for method in _methods(cells):
        for budget in sorted(cells.loc[cells["method"] == method, "budget"].unique()):
            rows.append(_row(tables, cells, method, int(budget), baseline))
    return rows


def _row(tables: Tables, cells: pd.DataFrame, method: str, budget: int, baseline: str) -> Row:
    mine = cells[(cells["method"] == method) & (cells["budget"] == budget)]
    row = Row(
        method,
        budget,
        _t(_per_seed(mine, "accuracy"), within=(0.0, 1.0)),
        _t(forgetting_change(mine)),
        is_baseline=method == baseline,
        teacher_tokens=_mean_col(mine, "teacher_tokens"),
        wall_s=_mean_col(mine, "wall_s"),
        samples=_samples(mine, budget),
    )
    base = cells[(cells["method"] == baseline) & (cells["budget"] == budget)]
    if row.is_baseline or not len(base):
        return row
    mine_items, base_items = item_matrix(tables.items, method, budget), item_matrix(tables.items, baseline, budget)
    pair = paired_items(mine_items, base_items)
    row.primary = paired_comparison(_per_seed(mine, "accuracy"), _per_seed(base, "accuracy"), mine_items, base_items)
    if pair is not None:
        row.item_diff = paired_bootstrap(pair[0].mean(axis=0), pair[1].mean(axis=0), level=LEVEL)
        row.paired_seeds = pair[0].shape[0]
        row.item_p = permutation_test(pair[0], pair[1])
    return row


def _samples(cells: pd.DataFrame, budget: int) -> str:
    """The budget when every cell trained on all of it, else "min–max (short of N)"."""
    if "samples" not in cells.columns or not len(cells):
        return "—"
    vals = pd.to_numeric(cells["samples"], errors="coerce").dropna().astype(int)
    if not len(vals):
        return "—"
    lo, hi = int(vals.min()), int(vals.max())
    text = str(lo) if lo == hi else f"{lo}–{hi}"
    return text if lo >= budget else f"{text} (short of {budget})"


def _mean_col(cells: pd.DataFrame, column: str) -> float:
    if column not in cells.columns:
        return float("nan")
    vals = pd.to_numeric(cells[column], errors="coerce").dropna()
    return float(vals.mean()) if len(vals) else float("nan")


def mean_curve(results: pd.DataFrame, method: str) -> tuple[np.ndarray, np.ndarray]:
    """Budgets (ascending) and the mean accuracy over seeds at each, for one method's main cells."""
    cells = _main_cells(results)
    cells = cells[cells["method"] == method]
    curve = pd.to_numeric(cells["accuracy"], errors="coerce").groupby(cells["budget"].to_numpy()).mean()
    curve = curve.dropna().sort_index()
    return curve.index.to_numpy(dtype=float), curve.to_numpy(dtype=float)


def budget_to_reach(budgets: np.ndarray, means: np.ndarray, tau: float) -> float | None:
    """N(τ): the smallest budget where the mean curve reaches τ, linearly interpolated between the
    adjacent budgets around its first crossing; None when it never does within the grid."""
    b, m = np.asarray(budgets, dtype=float), np.asarray(means, dtype=float)
    hits = np.flatnonzero(m >= tau)
    if not hits.size:
        return None
    i = int(hits[0])
    if i == 0:
        return float(b[0])
    b0, b1, m0, m1 = b[i - 1], b[i], m[i - 1], m[i]
    return float(b0 + (tau - m0) / (m1 - m0) * (b1 - b0))


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Spearman's rho and its p-value; NaNs when too few points or a constant input."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    res = spearmanr(x, y)
    return float(res.statistic), float(res.pvalue)


def describe_relation(rho: float, p: float, n: int) -> str:
    """A plain-language, honest reading of a quantile-vs-gain Spearman correlation."""
    if not (_finite(rho) and _finite(p)):
        return f"no correlation computed ({n} cells: too few, or gains or quantiles constant)"
    stats = f"rho = {rho:.4f}, p = {p:.4f}, {n} cells"
    if p < 0.05 and rho > 0:
        return f"higher-score quantiles gave larger gains ({stats})"
    if p < 0.05 and rho < 0:
        return f"higher-score quantiles gave *smaller* gains: the score ranks against utility ({stats})"
    lean = "a positive" if rho > 0 else "a negative" if rho < 0 else "no"
    return f"no clear monotone relation ({lean} tendency, not significant at 0.05): {stats}"


# --- plots ---------------------------------------------------------------------------------------


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _bounds(e: Estimate | None) -> tuple[float, float, float]:
    """Mean, lo, hi with the interval collapsed onto the mean where it is undefined."""
    if e is None:
        return float("nan"), float("nan"), float("nan")
    lo = e.lo if _finite(e.lo) else e.mean
    hi = e.hi if _finite(e.hi) else e.mean
    return e.mean, lo, hi


def _log_x(ax: Any, xs: list[float]) -> None:
    xs = [x for x in xs if x > 0]
    if xs and max(xs) / min(xs) >= 8:
        ax.set_xscale("log", base=2)


def plot_accuracy_vs_budget(rows: list[Row], untrained: float, path: Path, before_label: str = "untrained") -> Path:
    """Mean accuracy per method against the budget, with the seeds' t-interval as a band; a dashed line
    at the accuracy before training (`before_label`: "untrained", or the warm-started student's)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for method in dict.fromkeys(r.method for r in rows):
        mine = [r for r in rows if r.method == method and r.accuracy is not None]
        xs = [r.budget for r in mine]
        mean, lo, hi = (np.array(v) for v in zip(*(_bounds(r.accuracy) for r in mine), strict=True))
        (line,) = ax.plot(xs, mean, marker="o", label=method)
        ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    if _finite(untrained):
        ax.axhline(untrained, color="grey", linestyle="--", linewidth=1, label=before_label)
    _log_x(ax, [r.budget for r in rows])
    ax.set_xlabel("budget (training samples)")
    ax.set_ylabel("accuracy (mean, 95% t CI over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_forgetting(rows: list[Row], path: Path) -> Path:
    """Bars of the forgetting-suite change (after − before) per method, grouped by budget."""
    plt = _pyplot()
    rows = [r for r in rows if r.forgetting is not None]
    methods = list(dict.fromkeys(r.method for r in rows))
    budgets = sorted({r.budget for r in rows})
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for j, method in enumerate(methods):
        mine = {r.budget: r for r in rows if r.method == method}
        xs = [i + (j - (len(methods) - 1) / 2) * width for i, b in enumerate(budgets) if b in mine]
        stats = [_bounds(mine[b].forgetting) for b in budgets if b in mine]
        ys = [s[0] for s in stats]
        err = [[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]]
        ax.bar(xs, ys, width=width, yerr=err, capsize=3, label=method)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(range(len(budgets)), [str(b) for b in budgets])
    ax.set_xlabel("budget (training samples)")
    ax.set_ylabel("forgetting-suite accuracy change")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_scores(scores: pd.DataFrame, method: str, path: Path) -> Path:
    """Density histograms of the acquisition scores a method kept versus rejected."""
    plt = _pyplot()
    s = scores[scores["method"] == method]
    vals = pd.to_numeric(s["score"], errors="coerce")
    kept = s["selected"].astype(bool).to_numpy()
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    for mask, label in ((kept, "kept"), (~kept, "rejected")):
        x = vals[mask].dropna().to_numpy()
        if x.size:
            ax.hist(x, bins=30, density=True, alpha=0.5, label=f"{label} (n={x.size})")
    acqs = ", ".join(sorted({str(a) for a in s["acquisition"].dropna()})) or "score"
    ax.set_title(f"{method}: {acqs}", fontsize=9)
    ax.set_xlabel("acquisition score")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    return _save(fig, path)


def plot_utility(groups: list[tuple[str, int, list[tuple[float, Estimate | None]]]], path: Path) -> Path:
    """Gain over the untrained student by acquisition-score quantile, one line per (method, budget)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for k, (method, budget, points) in enumerate(groups):
        offset = (k - (len(groups) - 1) / 2) * 0.05
        qs = [q + offset for q, _ in points]
        stats = [_bounds(e) for _, e in points]
        ys = [s[0] for s in stats]
        err = [[s[0] - s[1] for s in stats], [s[2] - s[0] for s in stats]]
        label = f"{method}, budget {budget}" if len({g[0] for g in groups}) > 1 else f"budget {budget}"
        ax.errorbar(qs, ys, yerr=err, marker="o", capsize=3, label=label)
    ax.axhline(0, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("acquisition-score quantile (1 = lowest)")
    ax.set_ylabel("gain over untrained (95% t CI)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


# --- sections ------------------------------------------------------------------------------------


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "method"


def _before_line(tables: Tables, before: float) -> str:
    """What "before" means in this experiment: the untrained student, or the warm-started one."""
    warm = _warmup(tables)
    if not warm:
        return f"untrained accuracy: {_num(before)}"
    seeds = "; ".join(f"seed {int(s)}: {_num(v)}" for s, v in _before_per_seed(tables.results).items())
    return (f"before training: the student warm-started on the same {warm} samples in every cell of a seed "
            f"(that warmed student is each cell's \"before\" and scores the acquisitions); accuracy "
            f"{_num(before)}, mean over seeds ({seeds})")


def _header(doc: Doc, tables: Tables, untrained: float, baseline: str) -> None:
    res, meta = tables.results, tables.meta
    doc.add("h1", f"Experiment: {meta.get('name', 'unnamed')}")
    seeds = sorted({int(s) for s in res["seed"].dropna()})
    budgets = sorted({int(b) for b in res["budget"].dropna()})
    n_q = len(_quantile_cells(res))
    doc.add(
        "ul",
        [
            f"student: **{meta.get('student', '?')}**; task: **{meta.get('task', '?')}**",
            f"cells: {len(res)} ({len(res) - n_q} main, {n_q} quantile); methods: {', '.join(_methods(res))}; "
            f"baseline: {baseline}",
            f"seeds: {', '.join(map(str, seeds)) or '—'}; budgets: {', '.join(map(str, budgets)) or '—'}",
            _before_line(tables, untrained),
            "intervals: 95% Student-t over seeds (an accuracy's clipped to [0, 1])",
            f"paired comparisons with `{baseline}` (same seeds, same items): **primary test** = paired t over the "
            "per-seed mean accuracies (Δ, 95% t interval and two-sided p from one standard error, df = paired "
            "seeds − 1; with a single seed, the paired t over its items); **item-level** = paired bootstrap over "
            "items within seed (seeds held fixed) with a sign-flip permutation p; MDE = minimum detectable effect "
            f"at {POWER:.0%} power (two-sided {1 - LEVEL:g}, from the primary test's se and df); TOST = two "
            f"one-sided tests of equivalence within ±{_points(EQUIVALENCE_MARGIN)} points for comparisons that "
            "are not significant",
        ],
    )


def _main_section(doc: Doc, rows: list[Row], baseline: str, has_baseline: bool) -> None:
    doc.add("h2", "Accuracy by method and budget")
    if not has_baseline:
        doc.add("p", f"Baseline method `{baseline}` has no cells: no paired comparisons.")
    headers = [
        "method", "budget", "seeds", "samples", "accuracy (mean ± 95% t CI)", "forgetting change",
        "teacher tokens", "wall s",
    ]  # fmt: skip
    table = []
    for r in rows:
        table.append(
            [
                r.method,
                str(r.budget),
                str(r.accuracy.n if r.accuracy else 0),
                r.samples,
                _est(r.accuracy),
                _est(r.forgetting),
                _num(r.teacher_tokens, 0),
                _num(r.wall_s, 1),
            ]
        )
    doc.table(headers, table)
    if not any(r.forgetting is not None for r in rows):
        doc.add("p", "No forgetting data: the cells did not evaluate a forgetting suite.")


def _points(x: float) -> str:
    """An accuracy difference in points (×100), without trailing zeros: 0.02 -> '2'."""
    return f"{100 * x:.2f}".rstrip("0").rstrip(".")


def _primary_est(c: Comparison | None) -> str:
    """`Δ [lo, hi] (n=3 seeds)` of the primary test; the unit says which basis it is."""
    if c is None:
        return "—"
    unit = "seeds" if c.basis == "seeds" else "items, 1 seed"
    return _est(c.test.estimate, symmetric=False, unit=unit)


def _primary_p(c: Comparison | None) -> str:
    if c is None or not _finite(c.test.p):
        return "—"
    return f"{c.test.p:.4f} (df {c.test.df})"


def _mde_text(c: Comparison | None) -> str:
    if c is None or not _finite(c.mde):
        return "—"
    return f"{c.mde:.4f} ({'seeds' if c.basis == 'seeds' else 'items, 1 seed'})"


def _tost_text(c: Comparison | None) -> str:
    """The TOST reading of a non-significant comparison; '— (significant)' for a significant one."""
    if c is None:
        return "—"
    if c.tost is None:
        return "— (significant)"
    p = f", TOST p {c.tost.p:.4f}" if _finite(c.tost.p) else ""
    if c.tost.equivalent:
        return f"equivalent within ±{_points(c.tost.margin)} points{p}"
    return f"inconclusive (too little data){p}"


def undetectable(rows: list[Row], goal_gain: float | None) -> list[Row]:
    """Comparisons whose MDE at POWER lies above the goal gain: the design cannot detect the goal there."""
    if goal_gain is None:
        return []
    return [r for r in rows if r.primary is not None and _finite(r.primary.mde) and r.primary.mde > goal_gain]


def _goal_gain(meta: dict[str, Any]) -> float | None:
    """experiment.json's goal gain (the config's goal_gain), or None when the experiment sets no goal."""
    goal = meta.get("goal") or {}
    return float(goal.get("gain", 0.03)) if goal.get("methods") else None


def _comparisons_section(doc: Doc, rows: list[Row], baseline: str, goal_gain: float | None) -> None:
    """Every method against the baseline at the same budget: the primary test, its MDE and TOST, and the
    item-level bootstrap and permutation test; a warning where the MDE exceeds the goal gain."""
    compared = [r for r in rows if not r.is_baseline and (r.primary is not None or r.item_diff is not None)]
    if not compared:
        return
    doc.add("h2", f"Paired comparisons with {baseline}")
    margin = _points(EQUIVALENCE_MARGIN)
    doc.add(
        "p",
        f"**Primary test:** paired t over the per-seed mean accuracies (method − `{baseline}` on each seed both "
        "ran): its interval and p come from one standard error, the seed-to-seed spread of the differences, "
        "on the fixed evaluation items (with one seed: the paired t over that seed's items). "
        f"**MDE**: the smallest true difference the primary test detects with {POWER:.0%} power (two-sided "
        f"{1 - LEVEL:g}), from its se and df by the exact noncentral-t power equation (the common shortcut "
        "(t(0.975, df) + t(0.8, df)) × se understates it by 5% at df 2). **TOST** (not significant comparisons only): "
        f"equivalent within ±{margin} points when both one-sided tests reject at {1 - LEVEL:g}. "
        "**Item-level** (secondary): paired bootstrap over items within seed (seeds held fixed) and the "
        "sign-flip permutation p over items, the variance of which items were drawn.",
    )
    headers = [
        "method", "budget", f"Δ vs {baseline}, primary: paired t over seeds (95% CI)", "p, primary (df)",
        f"MDE at {POWER:.0%} power", f"TOST ±{margin} points", "Δ item-level: bootstrap within seed (95% CI)",
        "p item-level (permutation)",
    ]  # fmt: skip
    table = [
        [r.method, str(r.budget), _primary_est(r.primary), _primary_p(r.primary), _mde_text(r.primary),
         _tost_text(r.primary), _est(r.item_diff, symmetric=False, unit="items"), _num(r.item_p)]
        for r in compared
    ]  # fmt: skip
    doc.table(headers, table)
    blind = undetectable(compared, goal_gain)
    if goal_gain is not None and blind:
        doc.add(
            "p",
            f"**Warning: this design cannot detect the goal gain of {goal_gain:g} "
            f"({_points(goal_gain)} points)** in {len(blind)} of {len(compared)} comparisons: their MDE at "
            f"{POWER:.0%} power lies above it, so a true gain of that size would be missed more often than "
            f"{1 - POWER:.0%} of the time. More seeds (or items, with one seed) shrink the MDE.",
        )
        doc.add("ul", [f"{r.method}, budget {r.budget}: MDE {r.primary.mde:.4f} > {goal_gain:g} "
                       f"({r.primary.label})" for r in blind if r.primary is not None])


@dataclass
class Contrast:
    """One contrast at one budget: `row` compares its method with `reference` (a method other than the
    baseline); `holm_p` is its primary p adjusted over all the experiment's contrasts."""

    reference: str
    row: Row
    holm_p: float


def contrast_rows(tables: Tables) -> list[Contrast]:
    """The experiment's contrasts (experiment.json's `contrasts`: method -> reference) at every budget
    both ran, by the primary test, with Holm over all of them."""
    cells = _main_cells(tables.results)
    found = []
    for method, reference in (tables.meta.get("contrasts") or {}).items():
        both = set(cells.loc[cells["method"] == method, "budget"]) & set(cells.loc[cells["method"] == reference, "budget"])
        found += [(reference, _row(tables, cells, method, int(b), reference)) for b in sorted(both)]
    adjusted = holm([_primary_p_or_one(row) for _, row in found]) if found else []
    return [Contrast(ref, row, p) for (ref, row), p in zip(found, adjusted, strict=True)]


def _contrasts_section(doc: Doc, tables: Tables) -> None:
    """Each contrast by the primary test, with Holm over the contrasts, MDE, TOST and the item-level
    bootstrap."""
    contrasts = tables.meta.get("contrasts") or {}
    if not contrasts:
        return
    doc.add("h2", "Contrasts")
    found = contrast_rows(tables)
    pairs = ", ".join(f"`{m}` − `{r}`" for m, r in contrasts.items())
    doc.add("p", f"Paired comparisons besides those with the baseline ({pairs}) at every budget both methods ran, "
                 "by the primary test above (paired t over the per-seed mean accuracies; with one seed, over its "
                 f"items); Holm adjusts the p over these {len(found)} comparison(s).")
    if not found:
        doc.add("p", "No budget has cells of both methods of a contrast yet.")
        return
    table = [[c.row.method, c.reference, str(c.row.budget), c.row.primary.label if c.row.primary else "—",
              _primary_est(c.row.primary), _primary_p(c.row.primary),
              _num(c.holm_p) if c.row.primary is not None and _finite(c.row.primary.test.p) else "—",
              _mde_text(c.row.primary), _tost_text(c.row.primary), _est(c.row.item_diff, symmetric=False, unit="items")]
             for c in found]
    doc.table(["method", "reference", "budget", "primary test", "Δ, primary (95% CI)", "p, primary (df)", "Holm p",
               f"MDE at {POWER:.0%} power", f"TOST ±{_points(EQUIVALENCE_MARGIN)} points",
               "Δ item-level: bootstrap within seed (95% CI)"], table)


def _seeds_section(doc: Doc, tables: Tables) -> None:
    """Each seed's accuracy in its own column, with the teacher's completions per kept sample (a ratio of
    means over seeds), so no seed hides in a mean."""
    cells = _main_cells(tables.results)
    if not len(cells):
        return
    seeds = sorted(int(s) for s in cells["seed"].unique())
    doc.add("h2", "Accuracy per seed")
    doc.add(
        "p",
        "Each cell's task accuracy; completions per sample = teacher completions spent per training "
        "sample kept, over the seeds (what parsing, hygiene and any oversampling cost; — for real data).",
    )
    table = []
    for method in _methods(cells):
        for budget in sorted(cells.loc[cells["method"] == method, "budget"].unique()):
            mine = cells[(cells["method"] == method) & (cells["budget"] == budget)]
            acc = _per_seed(mine, "accuracy")
            generated, kept = _mean_col(mine, "generated"), _mean_col(mine, "samples")
            yield_ = _num(generated / kept, 2) if kept > 0 and generated > 0 else "—"  # False for NaN
            table.append(
                [method, str(int(budget))]
                + [_num(acc[s]) if s in acc.index else "" for s in seeds]
                + [_num(acc.mean()), yield_]
            )
    doc.table(["method", "budget", *[f"seed {s}" for s in seeds], "mean", "completions per sample"], table)


def _plots_section(
    doc: Doc, tables: Tables, rows: list[Row], untrained: float, out_dir: Path
) -> dict[str, Path]:
    doc.add("h2", "Plots")
    made: dict[str, Path] = {}

    def add(name: str, alt: str, path: Path) -> None:
        rel = f"{PLOTS}/{name}"
        made[rel] = path
        doc.add("img", (alt, rel, path))

    plots = out_dir / PLOTS
    if any(r.accuracy is not None for r in rows):
        warm = _warmup(tables)
        path = plot_accuracy_vs_budget(rows, untrained, plots / "accuracy_vs_budget.png",
                                       f"warm-started ({warm} samples)" if warm else "untrained")
        add("accuracy_vs_budget.png", "accuracy against budget", path)
    if any(r.forgetting is not None for r in rows):
        add("forgetting.png", "forgetting change", plot_forgetting(rows, plots / "forgetting.png"))
    else:
        doc.add("p", "Forgetting plot skipped: no forgetting data.")
    scores = tables.scores
    methods = [m for m in _methods(scores) if _has_scores(scores, m)] if len(scores) else []
    for method in methods:
        name = f"scores_{_slug(method)}.png"
        add(name, f"kept vs rejected scores: {method}", plot_scores(scores, method, plots / name))
    if not methods:
        doc.add("p", "Score histograms skipped: no acquisition scores recorded.")
    return made


def plot_group_differences(methods: list[str], groups: list[str], diffs: np.ndarray, budget: int,
                           path: Path) -> Path:
    """Heat map of method − baseline accuracy (points) per group of items, one row per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(groups), 1.2 + 0.45 * len(methods)), dpi=120)
    span = max(1.0, float(np.nanmax(np.abs(diffs)))) if np.isfinite(diffs).any() else 1.0
    im = ax.imshow(diffs, cmap="RdBu", vmin=-span, vmax=span, aspect="auto")
    ax.set_xticks(range(len(groups)), groups, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    for (i, j), v in np.ndenumerate(diffs):
        if np.isfinite(v):
            ax.text(j, i, f"{v:+.1f}", ha="center", va="center", fontsize=7,
                    color="white" if abs(v) > 0.6 * span else "black")
    fig.colorbar(im, ax=ax, label="vs baseline (points)")
    ax.set_title(f"budget {budget}", fontsize=9)
    return _save(fig, path)


def _has_scores(scores: pd.DataFrame, method: str) -> bool:
    return bool(pd.to_numeric(scores.loc[scores["method"] == method, "score"], errors="coerce").notna().any())


def _per_item_section(doc: Doc, tables: Tables, baseline: str, out_dir: Path) -> dict[str, Path]:
    """Which eval items each method wins or loses against the baseline, and, for a built-in data set with
    strata, the difference per stratum with a heat map."""
    items, cells = tables.items, _main_cells(tables.results)
    budgets = sorted(int(b) for b in cells.loc[cells["method"] == baseline, "budget"].unique()) if len(cells) else []
    if not len(items) or not budgets:
        return {}
    grouping = builtin_groups(str(tables.meta["task"])) if tables.meta.get("task") else None
    doc.add("h2", "Per-item analysis")
    doc.add("p", f"Each method against `{baseline}` item by item, over the seeds both ran: a method *wins* an "
                 "item when it answered it right in more of those seeds, *loses* it when in fewer; *tied* items "
                 "were answered right equally often (and at least once); *never* were answered right by neither "
                 "in any seed. Wins minus losses is the item-level view of the accuracy difference.")
    made: dict[str, Path] = {}
    for budget in budgets:
        base = item_matrix(items, baseline, budget)
        tallies, by_group = [], []
        for method in _methods(cells):
            if method == baseline or not ((cells["method"] == method) & (cells["budget"] == budget)).any():
                continue
            pair = align(item_matrix(items, method, budget), base)
            if pair is None:
                continue
            t = tally(*pair)
            tallies.append([method, str(t.seeds), str(t.items), str(t.won), str(t.lost), f"{t.won - t.lost:+d}",
                            str(t.tied_solved), str(t.never)])
            if grouping is not None:
                by_group.append((method, group_differences(*pair, grouping[1], LEVEL)))
        if not tallies:
            continue
        doc.add("p", f"**Budget {budget}.**")
        doc.table(["method", "seeds", "items", "won", "lost", "won − lost", "tied", "never"], tallies)
        if grouping is not None and any(found for _, found in by_group):
            made |= _group_table(doc, by_group, grouping[0], base, grouping[1], baseline, budget, out_dir)
        if grouping is not None:
            _mix_table(doc, tables, grouping, [m for m, _ in by_group], budget)
    return made


def _mix_table(doc: Doc, tables: Tables, grouping: tuple[str, pd.Series], methods: list[str], budget: int) -> None:
    """What each method trained on, by group: the share of its selected samples in each, next to the
    candidates' and the eval items' shares (from the scores' item ids; skipped for tables without them)."""
    unit, groups = grouping
    pool = candidate_mix(tables.scores, budget, groups) if len(tables.scores) else None
    mixes = {m: mix for m in methods if (mix := selected_mix(tables.scores, m, budget, groups)) is not None}
    if pool is None or not mixes:
        return
    eval_ids = tables.items.loc[(tables.items["method"] == "base") & (tables.items["suite"] == "task"), "item_id"]
    evals = groups.reindex(eval_ids.astype(str)).value_counts(normalize=True)
    names = sorted(set(pool.index) | set(evals.index) | {g for mix in mixes.values() for g in mix.index}, key=str)
    doc.add("p", f"What each method trained on at budget {budget}: the share of its selected samples in each {unit} "
                 "(mean over seeds; a random draw from the pool has the candidates' shares), beside the candidates' "
                 "and the eval items' shares (%).")
    rows = [["eval items", *[f"{100 * evals.get(n, 0.0):.1f}" for n in names]],
            ["candidates (pool)", *[f"{100 * pool.get(n, 0.0):.1f}" for n in names]]]
    rows += [[m, *[f"{100 * mix.get(n, 0.0):.1f}" for n in names]] for m, mix in mixes.items()]
    doc.table([unit, *names], rows)


def _group_table(doc: Doc, by_group: list[tuple[str, list[Any]]], unit: str, base: pd.DataFrame,
                 groups_of: pd.Series, baseline: str, budget: int, out_dir: Path) -> dict[str, Path]:
    groups = sorted({g.group for _, found in by_group for g in found}, key=str)
    base_acc, seeds = group_accuracy(base, groups_of), len(base.index)
    doc.add("p", f"Accuracy difference against `{baseline}` per {unit} (points, paired 95% interval over seeds, "
                 "over the items with one seed; * where the Holm-adjusted p over the "
                 f"{len(groups)} {unit} values is below 0.05), each over the seeds the method shares with "
                 f"`{baseline}`. First row: `{baseline}`'s own accuracy over all its {seeds} seed(s).")
    rows = [[f"{baseline} (accuracy, {seeds} seed{'s' if seeds != 1 else ''})",
             *[_points(base_acc[name]) if name in base_acc else "—" for name in groups]]]
    diffs = np.full((len(by_group), len(groups)), np.nan)
    for i, (method, found) in enumerate(by_group):
        cells = {g.group: g for g in found}
        row = [method]
        for j, name in enumerate(groups):
            g = cells.get(name)
            if g is None:
                row.append("—")
                continue
            diffs[i, j] = 100 * g.test.diff
            interval = f" [{100 * g.test.lo:+.1f}, {100 * g.test.hi:+.1f}]" if _finite(g.test.lo) else ""
            row.append(f"{100 * g.test.diff:+.1f}{interval}{' *' if g.p_holm < 1 - LEVEL else ''}")
        rows.append(row)
    doc.table([unit, *groups], rows)
    name = f"per_{_slug(unit)}_b{budget:04d}.png"
    path = plot_group_differences([m for m, _ in by_group], groups, diffs, budget, out_dir / PLOTS / name)
    doc.add("img", (f"accuracy difference per {unit}, budget {budget}", f"{PLOTS}/{name}", path))
    return {f"{PLOTS}/{name}": path}


def _efficiency_section(doc: Doc, tables: Tables, untrained: float) -> None:
    doc.add("h2", "Data efficiency N(τ)")
    taus = tables.meta.get("tau") or ([untrained + 0.03, untrained + 0.05] if _finite(untrained) else [])
    if not taus:
        doc.add("p", "No targets τ: experiment.json has no `tau` and the untrained accuracy is unknown.")
        return
    doc.add(
        "p",
        "The smallest budget at which a method's mean accuracy over seeds reaches τ, interpolated "
        "linearly between adjacent budgets on the mean curve.",
    )
    table, informative = [], False
    for method in _methods(_main_cells(tables.results)):
        budgets, means = mean_curve(tables.results, method)
        cells = [method]
        for tau in taus:
            n = budget_to_reach(budgets, means, float(tau))
            if n is None:
                top = _budget(budgets.max()) if budgets.size else "—"
                cells.append(f"not reached (≤ {top})")
            elif n == budgets[0]:
                cells.append(f"≤ {_budget(n)} (at the smallest budget)")
            else:
                cells.append(_budget(n))
            informative |= n is None or n != budgets[0]
        table.append(cells)
    doc.table(["method", *[f"τ = {float(t):.4f}" for t in taus]], table)
    if not informative:
        doc.add("p", "Every method reaches every τ at its smallest budget, so this table says nothing about "
                     "data efficiency here: the targets lie below the grid's accuracies (the default targets are "
                     "the untrained accuracy + 0.03 and + 0.05). Set `tau:` in the experiment's config to "
                     "targets inside the range its methods span.")


def utility_groups(
    tables: Tables, untrained: float
) -> list[tuple[str, int, list[tuple[float, Estimate | None]]]]:
    """Per (utility group, budget) of the quantile cells: (quantile, t-interval of the gain over seeds)."""
    cells = _quantile_cells(tables.results)
    gain = _gain(cells, untrained)
    group = _utility_group(cells)
    groups = []
    for method in dict.fromkeys(group):
        for budget in sorted(cells.loc[group == method, "budget"].unique()):
            sel = (group == method) & (cells["budget"] == budget)
            points = [
                (float(q), _t(gain[sel & (cells["quantile"] == q)]))
                for q in sorted(cells.loc[sel, "quantile"].unique())
            ]
            groups.append((method, int(budget), points))
    return groups


def _utility_group(cells: pd.DataFrame) -> pd.Series:
    """Which quantile cells belong together: the runner's `quantile_group` (same candidates and score,
    one method per quantile), else the method."""
    if "quantile_group" in cells.columns:
        return cells["quantile_group"].where(cells["quantile_group"].notna(), cells["method"]).astype(str)
    return cells["method"].astype(str)


def _gain(cells: pd.DataFrame, untrained: float) -> pd.Series:
    """Accuracy − accuracy_before per cell (the untrained accuracy where the column is missing)."""
    before = (
        pd.to_numeric(cells["accuracy_before"], errors="coerce").fillna(untrained)
        if "accuracy_before" in cells.columns
        else pd.Series(untrained, index=cells.index)
    )
    return pd.to_numeric(cells["accuracy"], errors="coerce") - before


def _utility_section(doc: Doc, tables: Tables, untrained: float, out_dir: Path) -> dict[str, Path]:
    doc.add("h2", "Utility check: gain by acquisition-score quantile")
    cells = _quantile_cells(tables.results)
    if not len(cells):
        doc.add("p", "No quantile cells in this experiment: the utility check was not run.")
        return {}
    groups = utility_groups(tables, untrained)
    acqs = sorted({str(a) for a in cells.get("acquisition", pd.Series(dtype=object)).dropna()})
    doc.add(
        "p",
        f"Each quantile cell trained on one slice of the candidates ranked by {', '.join(acqs) or 'the score'} "
        "(1 = lowest scores). Gain = accuracy − "
        + ("the warm-started student's accuracy at its seed." if _warmup(tables) else "untrained accuracy."),
    )
    table = [[m, str(b), _budget(q), _est(e)] for m, b, pts in groups for q, e in pts]
    doc.table(["group", "budget", "quantile", "gain (mean ± 95% t CI)"], table)
    gain = _gain(cells, untrained)
    group = _utility_group(cells)
    lines = []
    for method in dict.fromkeys(group):
        sel = group == method
        rho, p = spearman(cells.loc[sel, "quantile"].to_numpy(), gain[sel].to_numpy())
        lines.append(f"{method}, all budgets: {describe_relation(rho, p, int(sel.sum()))}")
        budgets = sorted(cells.loc[sel, "budget"].unique())
        for budget in budgets if len(budgets) > 1 else []:
            sb = sel & (cells["budget"] == budget)
            rho, p = spearman(cells.loc[sb, "quantile"].to_numpy(), gain[sb].to_numpy())
            lines.append(f"{method}, budget {budget}: {describe_relation(rho, p, int(sb.sum()))}")
    doc.add("p", "Spearman correlation between quantile and gain over the cells:")
    doc.add("ul", lines)
    path = plot_utility(groups, out_dir / PLOTS / "utility.png")
    doc.add("img", ("gain by quantile", f"{PLOTS}/utility.png", path))
    return {f"{PLOTS}/utility.png": path}


@dataclass
class GoalVerdict:
    """The goal judged at one budget by the primary test: the best goal method against the baseline."""

    budget: int
    best: Row
    holm_p: dict[str, float]
    """Holm-adjusted primary p of every goal method due at this budget (they are picked from together;
    one not run yet, or without a p, counts with p = 1, so the family does not shrink while a grid is
    partial)."""
    forgetting_diff: dict[str, Comparison | None]
    """Paired difference to the baseline on the forgetting suite after training, by the primary test
    (> 0 = forgot less)."""
    gain: float
    has_forgetting: bool
    """Whether the cells evaluated a forgetting suite (without one, that check does not apply)."""

    @property
    def paired_seeds(self) -> int:
        """Seeds the best method's primary test shares with the baseline."""
        c = self.best.primary
        return (c.test.n if c.basis == "seeds" else 1) if c is not None else 0

    @property
    def checks(self) -> dict[str, bool | None]:
        """Each criterion: True, False, or None when the tables cannot tell."""
        c, f = self.best.primary, self.forgetting_diff.get(self.best.method)
        d = None if c is None else c.test
        out: dict[str, bool | None] = {
            f"gain ≥ {self.gain:g}": None if d is None else d.diff >= self.gain - 1e-9,  # 0.165 - 0.135 may round below
            "paired interval above zero": None if d is None or not _finite(d.lo) else d.lo > 0,
            f"Holm p < {1 - LEVEL:g}": None if d is None or not _finite(d.p)
            else self.holm_p[self.best.method] < 1 - LEVEL,
        }
        if self.has_forgetting:
            out["no more forgetting (interval reaches zero or above)"] = (
                None if f is None or not _finite(f.test.hi) else f.test.hi >= 0
            )
        return out

    @property
    def state(self) -> str:
        """met, not met (a check failed) or undetermined (no check failed, one could not be made)."""
        values = self.checks.values()
        return "not met" if False in values else "undetermined" if None in values else "met"


def _goal_family(meta: dict[str, Any], methods: list[str], budget: int, present: set[str]) -> list[str]:
    """The goal methods due at `budget` by the experiment's budgets (those present when unknown)."""
    budgets, own = meta.get("budgets"), meta.get("method_budgets") or {}
    if not budgets:
        return [m for m in methods if m in present]
    return [m for m in methods if m in present or budget in own.get(m, budgets)]


def _forgetting_comparison(items: pd.DataFrame, method: str, baseline: str, budget: int) -> Comparison | None:
    """The primary test on the forgetting suite: paired t over per-seed forgetting accuracies after
    training (seed means of the items both have), over the items with one seed."""
    a, b = item_matrix(items, method, budget, "forgetting"), item_matrix(items, baseline, budget, "forgetting")
    pair = paired_items(a, b)
    if pair is None:
        return None
    seeds = sorted(set(a.index) & set(b.index))  # the rows of `pair`, in its order
    return paired_comparison(pd.Series(pair[0].mean(axis=1), index=seeds),
                             pd.Series(pair[1].mean(axis=1), index=seeds), a, b)


def _primary_p_or_one(row: Row | None) -> float:
    """The row's primary p for Holm's family; 1 for a method not run yet or without a p (one seed)."""
    c = None if row is None else row.primary
    return c.test.p if c is not None and _finite(c.test.p) else 1.0


def goal_verdicts(tables: Tables, rows: list[Row], baseline: str) -> list[GoalVerdict]:
    """Per budget with baseline cells: the goal method with the largest primary paired gain over the
    baseline, judged against it by the primary test (experiment.json's `goal`; none when it is unset)."""
    goal = tables.meta.get("goal") or {}
    methods = list(goal.get("methods") or [])
    has_forgetting = bool(len(tables.items)) and bool((tables.items["suite"] == "forgetting").any())
    out = []
    for budget in sorted({r.budget for r in rows if r.is_baseline}):
        cands = {r.method: r for r in rows if r.method in methods and r.budget == budget}
        judged = [r for r in cands.values() if r.primary is not None]
        if not judged:
            continue
        family = _goal_family(tables.meta, methods, budget, set(cands))
        p = [_primary_p_or_one(cands.get(m)) for m in family]
        forgetting = {r.method: _forgetting_comparison(tables.items, r.method, baseline, budget) for r in judged}
        best = max(judged, key=lambda r: r.primary.test.diff if r.primary else -1.0)
        out.append(GoalVerdict(budget, best, dict(zip(family, holm(p), strict=True)),
                               forgetting, float(goal.get("gain", 0.03)), has_forgetting))
    return out


def _goal_section(doc: Doc, tables: Tables, rows: list[Row], baseline: str) -> None:
    goal = tables.meta.get("goal") or {}
    if not goal.get("methods"):
        return
    doc.add("h2", "Goal")
    verdicts = goal_verdicts(tables, rows, baseline)
    gain = float(goal.get("gain", 0.03))
    doc.add("p", f"The goal method ({', '.join(goal['methods'])}) with the largest paired gain over `{baseline}` "
                 f"at a budget (same seeds and items) must beat it by ≥ {gain:g}, by the primary test (paired t "
                 "over the per-seed mean accuracies): its interval above zero and its p, Holm-adjusted over the "
                 f"goal methods (the best is picked from them), below {1 - LEVEL:g}; and show no more "
                 "forgetting: its paired forgetting-suite difference to the baseline (the same test) must not "
                 "lie wholly below zero. A verdict resting on fewer than 3 paired seeds is provisional; one "
                 "whose MDE exceeds the goal gain could not have detected it.")
    if not verdicts:
        doc.add("p", f"No verdict: no budget has both `{baseline}` cells and goal-method cells to compare.")
        return
    table = []
    for v in verdicts:
        for r in [r for r in rows if r.budget == v.budget and r.method in v.holm_p]:
            table.append([str(v.budget), f"**{r.method}**" if r is v.best else r.method,
                          str(r.accuracy.n if r.accuracy else 0), _est(r.accuracy),
                          _primary_est(r.primary), _primary_p(r.primary),
                          _num(v.holm_p[r.method]) if r.primary is not None and _finite(r.primary.test.p) else "—",
                          _mde_text(r.primary), _tost_text(r.primary),
                          _primary_est(v.forgetting_diff.get(r.method))])
    doc.table(["budget", "method", "seeds", "accuracy", f"Δ vs {baseline}, primary (95% CI)", "p, primary (df)",
               "Holm p", f"MDE at {POWER:.0%} power", f"TOST ±{_points(EQUIVALENCE_MARGIN)} points",
               f"forgetting Δ vs {baseline}, primary (95% CI)"], table)
    lines = []
    for v in verdicts:
        checks = "; ".join(f"{k}: {'—' if ok is None else 'yes' if ok else 'no'}" for k, ok in v.checks.items())
        state = f"**{v.state}**"
        if v.paired_seeds < 3:
            state += f" (provisional: {v.paired_seeds} paired seed(s))"
        c = v.best.primary
        blind = ""
        if c is not None and _finite(c.mde) and c.mde > gain:
            blind = f"; the design cannot detect the goal here (MDE {c.mde:.4f} > {gain:g})"
        lines.append(f"budget {v.budget}: best {v.best.method}, Δ {_primary_est(c)}; "
                     f"{checks} → {state}{blind}")
    missing = sorted({r.budget for r in rows if r.method in goal["methods"]} - {r.budget for r in rows if r.is_baseline})
    lines += [f"budget {b}: no `{baseline}` cells, no verdict" for b in missing]
    doc.add("ul", lines)
    _projection(doc, tables.meta, verdicts, rows, gain)


def planned_seeds(meta: dict[str, Any], budget: int) -> int | None:
    """How many seeds experiment.json plans at `budget` (its budget_seeds, else its seeds); None when unknown."""
    own = (meta.get("budget_seeds") or {}).get(str(budget))
    seeds = own if own is not None else meta.get("seeds")
    return len(seeds) if seeds else None


@dataclass
class Projection:
    """What the planned seeds could detect for one goal method, if the per-seed differences keep the spread
    seen so far (a projection, not a result: that spread is itself estimated from few seeds)."""

    method: str
    budget: int
    seeds: int
    sd: float
    """Standard deviation of the per-seed differences to the baseline, from the seeds run."""
    sd_hi: float
    """Its one-sided upper 95% bound (chi-square)."""
    planned: int
    mde: float
    """MDE at the planned seeds, two-sided 1 - LEVEL."""
    holm_alpha: float
    """Holm's first-step level, (1 - LEVEL) / family size: the strictest level the best method's p can face
    (when it is the family's smallest p)."""
    mde_holm: float
    mde_holm_hi: float
    """MDE at the planned seeds and Holm's first-step level, with the spread at its upper bound."""
    needed: int | None
    """Seeds at which the MDE at Holm's first-step level reaches the goal gain (None: over 100)."""


def goal_projections(meta: dict[str, Any], verdicts: list[GoalVerdict], rows: list[Row], gain: float) -> list[Projection]:
    """A projection for every goal method whose primary test rests on 2 or more seeds, at budgets with a
    verdict and a known plan."""
    out = []
    for v in verdicts:
        planned = planned_seeds(meta, v.budget)
        if planned is None:
            continue
        alpha = (1 - LEVEL) / max(len(v.holm_p), 1)
        for r in rows:
            c = r.primary
            if r.budget != v.budget or r.method not in v.holm_p or c is None or c.basis != "seeds" or c.test.n < 2:
                continue
            sd = c.test.se * math.sqrt(c.test.n)
            hi = sd_upper(sd, c.test.df)
            out.append(Projection(
                r.method, r.budget, c.test.n, sd, hi, planned,
                paired_mde(sd, planned, 1 - LEVEL, POWER), alpha, paired_mde(sd, planned, alpha, POWER),
                paired_mde(hi, planned, alpha, POWER), pairs_needed(sd, gain, alpha, POWER),
            ))  # fmt: skip
    return out


def _projection(doc: Doc, meta: dict[str, Any], verdicts: list[GoalVerdict], rows: list[Row], gain: float) -> None:
    projections = goal_projections(meta, verdicts, rows, gain)
    if not projections:
        return
    doc.add("p", "**What the planned seeds could detect** (a projection, not a result): the MDE at the number "
                 "of seeds the experiment plans, if each method's per-seed differences to the baseline keep the "
                 "spread seen so far, at the two-sided level and at Holm's first-step level (0.05 over the number "
                 "of goal methods: the strictest level the best method's p can face, the one it faces when its p "
                 "is the family's smallest); and the same with the spread at "
                 "its upper 95% bound, since a spread estimated from few seeds may be far larger. The last "
                 f"column: seeds at which the MDE at Holm's first step reaches the goal gain of {_points(gain)} points.")
    doc.table(
        ["budget", "method", "seeds run", "sd of Δ per seed, points (upper 95%)", "seeds planned",
         f"MDE at planned seeds, points ({1 - LEVEL:g})", "MDE at planned seeds, points (Holm first step)",
         "… with the sd at its upper bound", f"seeds for MDE ≤ {_points(gain)} points (Holm first step)"],
        [[str(p.budget), p.method, str(p.seeds), f"{_points(p.sd)} ({_points(p.sd_hi)})", str(p.planned),
          _points(p.mde), f"{_points(p.mde_holm)} (α {p.holm_alpha:.4g})", _points(p.mde_holm_hi),
          "over 100" if p.needed is None else str(p.needed)] for p in projections],
    )  # fmt: skip


def _commands_section(doc: Doc, meta: dict[str, Any]) -> None:
    commands = meta.get("commands")
    if commands:
        doc.add("h2", "Reproduce")
        doc.add("pre", [str(c) for c in commands])


# --- entry point ---------------------------------------------------------------------------------


def build_report(tables: Tables, out_dir: Path) -> tuple[Doc, dict[str, Path]]:
    """Compute every section (writing the plots under `out_dir/plots`) into one document."""
    baseline = str(tables.meta.get("baseline", "static"))
    untrained = untrained_accuracy(tables)
    rows = main_rows(tables, baseline)
    has_baseline = bool((_main_cells(tables.results)["method"] == baseline).any())
    doc = Doc()
    _header(doc, tables, untrained, baseline)
    _main_section(doc, rows, baseline, has_baseline)
    _comparisons_section(doc, rows, baseline, _goal_gain(tables.meta))
    _goal_section(doc, tables, rows, baseline)
    _contrasts_section(doc, tables)
    _seeds_section(doc, tables)
    made = _plots_section(doc, tables, rows, untrained, out_dir)
    made |= _per_item_section(doc, tables, baseline, out_dir)
    _efficiency_section(doc, tables, untrained)
    made |= _utility_section(doc, tables, untrained, out_dir)
    _commands_section(doc, tables.meta)
    return doc, made


def write_experiment_report(run_dir: Path, out_dir: Path | None = None) -> dict[str, Path]:
    """Write report.md, report.html and plots/*.png from the run's tables; return name -> path."""
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = load_tables(run_dir)
    doc, made = build_report(tables, out_dir)
    md, page = out_dir / "report.md", out_dir / "report.html"
    from acqsynth.samples import atomic_write_text

    atomic_write_text(md, render_markdown(doc))  # a full disk leaves the earlier report, not half of one
    title = f"Experiment: {tables.meta.get('name', 'unnamed')}"
    atomic_write_text(page, render_html(doc, title))
    return {"report.md": md, "report.html": page, **made}
