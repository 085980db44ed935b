"""The run report's paired gain: after − before on the same evaluation items, with its interval, p and MDE."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from acqsynth.evaluation.stats import item_mde, paired_bootstrap
from acqsynth.run.report import paired_gain
from acqsynth.samples import Sample, to_dataset, write_samples


def write_round(run: Path, r: int, correct: list[bool]) -> None:
    rows = to_dataset([Sample(id=f"q{i}", question="?", answer="1") for i in range(len(correct))])
    write_samples(rows.add_column("correct", correct), run / f"round-{r:02d}" / "eval.jsonl")


def test_paired_gain_reads_both_rounds_and_states_the_mde(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    before = rng.random(300) < 0.2
    after = before | (rng.random(300) < 0.15)  # only gains: the interval must lie above zero
    write_round(tmp_path, 0, before.tolist())
    write_round(tmp_path, 2, after.tolist())
    line = paired_gain(tmp_path, 2)
    est = paired_bootstrap(after.astype(float), before.astype(float))
    mde, test = item_mde(after.astype(float), before.astype(float), exact=True)
    assert line is not None and "300 items" in line and "interval above zero" in line
    assert f"{est.mean:+.4f} [{est.lo:+.4f}, {est.hi:+.4f}]" in line
    assert f"p {test.p:.4f}" in line and f"80% power is {mde:.4f}" in line
    assert est.lo > 0 and 0 < mde < 0.2


def test_no_gain_line_without_both_rounds(tmp_path: Path) -> None:
    write_round(tmp_path, 0, [True, False])
    assert paired_gain(tmp_path, 1) is None and paired_gain(tmp_path, 0) is None
