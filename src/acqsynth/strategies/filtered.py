"""The Filtered baseline: the real pool ranked by `selection.acquisition` on the student, the top N
kept; no generator.

The untrained (or, with `data.warmup`, the warmed) student's pool scores are kept in the run's cache
(`pool-scores/`), keyed by everything they depend on, so runs that differ only in budget (an
experiment's `filtered` cells) score the pool once. The pool it ranks never holds the warm-up rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from acqsynth.config import to_dict
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample, read_samples, write_samples
from acqsynth.strategies.base import RoundContext, RoundResult
from acqsynth.strategies.scoring import score_column, select_in_round


def pool_score_path(ctx: RoundContext, pool: Sequence[Sample], reference: list[str]) -> Path:
    """Where the scores of `pool` by the round's student under the run's selection settings are kept."""
    c = ctx.config
    what: dict[str, Any] = {"student": to_dict(c.student), "task": ctx.task_name, "pool": [s.id for s in pool],
                            "reference": reference, "selection": to_dict(c.selection), "seed": ctx.generation_seed,
                            "embedder": c.generator.embedder}
    if c.data.warmup:  # the warmed student scores: what it trained on and how decide it too
        what["warmup"] = {"data": c.data.name, "rows": c.data.warmup,
                          "train": to_dict(replace(c.train, seed=c.train_seed))}
    key = json.dumps(what, sort_keys=True)
    return ctx.cache_dir / "pool-scores" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsonl"


class Filtered:
    """`filtered`: the top of the unused real pool by acquisition, in one round."""

    generates = False
    multi_round = False
    uses_acquisition = True

    def generator_template(self, template: str | None, kind: str) -> str | None:
        return template

    def collect(self, ctx: RoundContext) -> RoundResult:
        c, n = ctx.config, ctx.n
        taken = {s.id for s in ctx.earlier}
        pool = [s for s in ctx.pool() if s.id not in taken]
        if len(pool) < n:
            raise AcqsynthError(f"the pool has {len(pool)} unused samples but {n} were asked for "
                                "(raise data.pool or lower budget.samples)")
        reference = list(load_data(c.data.name, split="seed", task=c.data.task)["question"])[: c.data.seeds]
        ctx.log(f"scoring {len(pool)} pool samples by {c.selection.acquisition}; keeping the top {n}")
        cached = pool_score_path(ctx, pool, reference)
        known = None
        if cached.exists():
            table = read_samples(cached)
            col = score_column(table)
            if col is None:
                raise AcqsynthError(f"{cached}: cannot tell the score column among {table.column_names}")
            known = table[col]
            ctx.log(f"pool scores from {cached} (same student, pool, acquisition and seed)")
        new, table = select_in_round(ctx, pool, reference, known)
        write_samples(table, ctx.out / "pool_scores.jsonl")
        if known is None:
            write_samples(table.remove_columns(["selected", "selection_rank"]), cached)
        return RoundResult(new)
