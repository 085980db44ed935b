"""The Filtered baseline: the real pool ranked by `selection.acquisition` on the student, the top N
kept; no generator. `filtered-active` does the same in `rounds` rounds: the student retrained on the
samples so far rescores what is left of the pool, so no sample is selected twice.

The pool scores are kept in the run's cache (`pool-scores/`), keyed by everything they depend on, so
runs that differ only in budget (an experiment's `filtered` cells) score the pool once; with
`data.pool_seeded` (the pool design) the key leaves out how the scores are used (the selection
method and its parameters), so every method of a seed that ranks by the same acquisition shares
them. A later round's key adds what its student trained on. The pool never holds the warm-up rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from acqsynth.config import to_dict
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.locks import claim
from acqsynth.samples import Sample, read_samples, write_samples
from acqsynth.strategies.base import RoundContext, RoundResult
from acqsynth.strategies.scoring import score_column, select_in_round
from acqsynth.training import train_key


def pool_score_path(ctx: RoundContext, pool: Sequence[Sample], reference: list[str]) -> Path:
    """Where the scores of `pool` by the round's student under the run's selection settings are kept."""
    c = ctx.config
    what: dict[str, Any] = {"student": to_dict(c.student), "task": ctx.task_name, "pool": [s.id for s in pool],
                            "reference": reference, "selection": selection_key(c.selection, c.data.pool_seeded),
                            "seed": ctx.generation_seed, "embedder": c.generator.embedder}
    if c.data.warmup:  # the warmed student scores: what it trained on and how decide it too
        what["warmup"] = {"data": c.data.name, "rows": c.data.warmup,
                          "train": train_key(replace(c.train, seed=c.train_seed))}
    if ctx.round > 1:  # a retrained student scores: the samples it trained on and how decide it
        what["trained"] = {"data": c.data.name, "ids": [s.id for s in ctx.earlier],
                           "train": train_key(replace(c.train, seed=c.train_seed))}
    versions = {name: v for name, v in SCORE_VERSIONS.items()
                if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", c.selection.acquisition)}
    if versions:
        what["versions"] = versions
    key = json.dumps(what, sort_keys=True)
    return ctx.cache_dir / "pool-scores" / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsonl"


SCORE_VERSIONS = {"gradient": 2, "diversity-archive": 2}
"""Acquisitions whose meaning changed under the same spec (gradient's default answer became `final`;
diversity-archive became the nearest-member distance): their version joins the pool-score cache key,
so scores cached before are not reused for them. Other acquisitions keep their keys."""

SCORING_KEYS = ("acquisition", "answer_max_new_tokens", "answer_temperature")
"""The `selection` settings pool scores depend on (the others say how the scores are used)."""
ADDED_KEYS = {"strata": None, "diverse_pool": 4}
"""`selection` settings added after pool scores were first cached, with their defaults: left out of the
key at their default, so the scores cached before them stay valid."""


def selection_key(selection: Any, pool_seeded: bool) -> dict[str, Any]:
    """The part of the run's `selection` settings in the pool-score cache key: with a seeded pool only
    what the scores depend on (`SCORING_KEYS`), else all of it, the keys of `ADDED_KEYS` left out at
    their defaults."""
    sel = to_dict(selection)
    if pool_seeded:
        return {k: sel[k] for k in SCORING_KEYS}
    return {k: v for k, v in sel.items() if k not in ADDED_KEYS or v != ADDED_KEYS[k]}


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
        how = "keeping the top" if c.selection.method == "top-k" else f"selecting by {c.selection.method}"
        ctx.log(f"scoring {len(pool)} pool samples by {c.selection.acquisition}; {how} {n}")
        cached = pool_score_path(ctx, pool, reference)
        with claim(cached.with_suffix(".lock"), wait=True):  # a parallel cell scoring this pool: wait, then share
            known = None
            if cached.exists():
                table = read_samples(cached)
                col = score_column(table)
                if col is None:
                    raise AcqsynthError(f"{cached}: cannot tell the score column among {table.column_names}")
                known = table[col]
                ctx.log(f"pool scores from {cached} (same student, pool, acquisition and seed)")
            new, table = select_in_round(ctx, pool, reference, known)
            if known is None:
                write_samples(table.remove_columns(["selected", "selection_rank"]), cached)
        write_samples(table, ctx.out / "pool_scores.jsonl")
        return RoundResult(new)


class FilteredActive(Filtered):
    """`filtered-active`: `filtered` in `rounds` rounds, each ranking the unused pool by the current
    student (the one retrained on every earlier round's samples)."""

    multi_round = True
