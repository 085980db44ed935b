"""Operator and operand-size mix of the training data of study cells, against the evaluation items.

Reads each cell's `data.jsonl` (the samples it trained on) and prints, per cell: the share of each
operator (+ - * /), the largest operand's digit count, and for generated samples how often the
generated problem keeps its seed's operator (the bundled arithmetic ids end in plus/minus/mult/div).
With four or more cells it ends with the Spearman correlation between a cell's share of the hard
operators (- and /) and its accuracy after training.

    python experiments/operator_mix.py runs/study/grid/cells/*/b0096-s0 runs/study/grid/cells/static/b0032-s0
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

SEED_OPS = {"plus": "+", "minus": "-", "mult": "*", "div": "/"}
EXPRESSION = re.compile(r"(\d+)\s*([-+*/x×÷])\s*(\d+)")


def parts(question: str) -> tuple[str, int]:
    """(operator, digits of the larger operand) of the first `a op b` in the question; ('?', 0) if none."""
    m = EXPRESSION.search(question)
    if not m:
        return "?", 0
    a, op, b = m.groups()
    return {"x": "*", "×": "*", "÷": "/"}.get(op, op), max(len(a), len(b))


def shares(values: Sequence) -> str:
    counts = Counter(values)
    return " ".join(f"{k}:{counts[k] / len(values):.2f}" for k in sorted(counts, key=str))


def seed_id(row: dict) -> str | None:
    meta = row.get("metadata") or {}
    return (json.loads(meta) if isinstance(meta, str) else meta).get("seed_id")


def describe(name: str, rows: list[dict]) -> float:
    """Print the cell's mix; return its share of the hard operators (- and /)."""
    ops, digits = zip(*(parts(r["question"]) for r in rows), strict=True)
    line = f"{name:28s} n={len(rows):4d}  ops {shares(ops):36s} digits {shares(digits)}"
    seeds = [(SEED_OPS.get(str(sid).rsplit("_", 1)[-1], "?"), op)
             for r, op in zip(rows, ops, strict=True) if (sid := seed_id(r))]
    if seeds:
        kept = sum(s == o for s, o in seeds)
        line += f"  same op as seed {kept}/{len(seeds)}; seed ops {shares([s for s, _ in seeds])}"
    print(line)
    return sum(op in "-/" for op in ops) / len(ops)


def main(cells: list[str]) -> None:
    from acqsynth.config import load_config
    from acqsynth.data import load_data
    from acqsynth.experiment.grid import ExperimentConfig

    study = load_config(ExperimentConfig, "experiments/cpu-study.yaml")
    eval_n = int(study.overrides["data.eval_n"])  # a run evaluates the first eval_n rows of the eval split
    describe(f"eval (first {eval_n})", load_data("arithmetic", split="eval").to_list()[:eval_n])
    hard: list[float] = []
    accuracy: list[float] = []
    for cell in map(Path, cells):
        if not (cell / "metrics.json").exists():  # written last: the mark of a finished cell
            print(f"{cell.parent.name}/{cell.name}: not finished (no metrics.json)")
            continue
        rows = [json.loads(line) for line in (cell / "data.jsonl").read_text().splitlines() if line.strip()]
        hard.append(describe(f"{cell.parent.name}/{cell.name}", rows))
        accuracy.append(json.loads((cell / "metrics.json").read_text())["accuracy_after"]["mean"])
    if len(hard) >= 4:
        import numpy as np

        from acqsynth.experiment.report import spearman

        rho, p = spearman(np.array(hard), np.array(accuracy))
        print(f"share of - and / vs accuracy after training over {len(hard)} cells (pass cells of one budget): "
              f"Spearman rho {rho:+.4f}, p {p:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
