"""A compact method × budget table for docs/results.md, computed from a run's committed tables.

The report's tables carry every column; this prints the ones the results doc shows, with the same
statistics (main_rows of acqsynth.experiment.report), so no figure is copied by hand. Per method and
budget: accuracy over seeds; Δ against the baseline by the primary test (paired t over the per-seed mean
accuracies: 95% t interval, p); the MDE at 80% power and the TOST reading at ±2 points for a
non-significant Δ; and the item-level Δ (paired bootstrap over items within seed) with its sign-flip
permutation p. All in accuracy points:

    python experiments/summary_table.py docs/results/cpu-study
"""

from __future__ import annotations

import sys
from pathlib import Path

from acqsynth.evaluation.stats import Estimate
from acqsynth.experiment.report import Row, load_tables, main_rows


def _pct(e: Estimate | None, signed: bool = False) -> str:
    """`mean [lo, hi]` in accuracy points (×100), two decimals; the mean alone when there is no interval."""
    if e is None:
        return "—"
    def f(x: float) -> str:
        x = round(100 * x, 2) + 0.0  # + 0.0 turns a rounding residue's -0.00 into 0.00
        return f"{x:+.2f}" if signed else f"{x:.2f}"

    if e.lo != e.lo or e.hi != e.hi:  # NaN: one seed
        return f(e.mean)
    return f"{f(e.mean)} [{f(e.lo)}, {f(e.hi)}]"


def _primary(r: Row) -> str:
    """Δ [95% CI], p (df) of the primary test, in points; the basis when it is one seed's items."""
    c = r.primary
    if c is None:
        return "—"
    basis = "" if c.basis == "seeds" else ", items of 1 seed"
    p = "" if c.test.p != c.test.p else f", p {c.test.p:.4f} (df {c.test.df}{basis})"
    return f"{_pct(c.test.estimate, signed=True)}{p}"


def _tost(r: Row) -> str:
    """The TOST reading at the report's margin for a non-significant Δ; 'significant' otherwise."""
    c = r.primary
    if c is None:
        return "—"
    if c.tost is None:
        return "significant"
    margin = f"{100 * c.tost.margin:g}"
    p = "" if c.tost.p != c.tost.p else f" (p {c.tost.p:.4f})"
    return f"equivalent within ±{margin}{p}" if c.tost.equivalent else f"inconclusive{p}"


def main(argv: list[str]) -> None:
    """Print the table for the run directory in argv[0]."""
    if len(argv) != 1:
        raise SystemExit("usage: python experiments/summary_table.py RUN_DIR")
    tables = load_tables(Path(argv[0]))
    baseline = str(tables.meta.get("baseline", "static"))
    rows = main_rows(tables, baseline)
    print(f"| method | budget | accuracy (seeds) | Δ vs {baseline}, paired t over seeds [95% CI], p | "
          "MDE 80% | TOST ±2 | Δ item-level [95% CI], p |")
    print("|---|---|---|---|---|---|---|")
    for method in dict.fromkeys(r.method for r in rows):
        for r in sorted((r for r in rows if r.method == method), key=lambda r: r.budget):
            n = r.accuracy.n if r.accuracy else 0
            cells = [method, str(r.budget), f"{_pct(r.accuracy)} ({n})"]
            if r.is_baseline:
                cells += ["—"] * 4
            else:
                c = r.primary
                item = _pct(r.item_diff, signed=True)
                cells += [_primary(r), "—" if c is None or c.mde != c.mde else f"{100 * c.mde:.2f}", _tost(r),
                          item if r.item_p is None else f"{item}, p {r.item_p:.3f}"]
            print(f"| {' | '.join(cells)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
