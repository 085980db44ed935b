"""A compact method × budget table for docs/results.md, computed from a run's committed tables.

The report's main table carries every column; this prints the ones the results doc shows, with the
same statistics (main_rows of acqsynth.experiment_report), so no figure is copied by hand. Δ is
over the seeds the method shares with the baseline (their count in brackets):

    python experiments/summary_table.py docs/results/cpu-study
"""

from __future__ import annotations

import sys
from pathlib import Path

from acqsynth.evaluation.stats import Estimate
from acqsynth.experiment_report import load_tables, main_rows


def _pct(e: Estimate | None, signed: bool = False) -> str:
    """`mean [lo, hi]` in accuracy points (×100), two decimals; the mean alone when there is no interval."""
    if e is None:
        return "—"
    f = "{:+.2f}" if signed else "{:.2f}"
    if e.lo != e.lo or e.hi != e.hi:  # NaN: one seed
        return f.format(100 * e.mean)
    return f"{f.format(100 * e.mean)} [{f.format(100 * e.lo)}, {f.format(100 * e.hi)}]"


def main(argv: list[str]) -> None:
    """Print the table for the run directory in argv[0]."""
    if len(argv) != 1:
        raise SystemExit("usage: python experiments/summary_table.py RUN_DIR")
    tables = load_tables(Path(argv[0]))
    baseline = str(tables.meta.get("baseline", "static"))
    rows = main_rows(tables, baseline)
    budgets = sorted({r.budget for r in rows})
    print(f"| method | {' | '.join(f'b{b}: accuracy, points (seeds) | b{b}: Δ vs {baseline}, points [items], p' for b in budgets)} |")
    print("|---|" + "---|---|" * len(budgets))
    for method in dict.fromkeys(r.method for r in rows):
        cells = []
        for b in budgets:
            r = next((r for r in rows if r.method == method and r.budget == b), None)
            if r is None:
                cells += ["", ""]
                continue
            n = r.accuracy.n if r.accuracy else 0
            cells.append(f"{_pct(r.accuracy)} ({n})")
            diff = "—" if r.is_baseline else _pct(r.item_diff, signed=True)
            paired = f" ({r.paired_seeds} paired)" if r.paired_seeds else ""
            cells.append(diff if r.p_value is None else f"{diff}{paired}, p {r.p_value:.3f}")
        print(f"| {method} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
