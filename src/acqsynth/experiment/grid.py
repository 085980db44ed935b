"""`acqsynth experiment`: a grid of methods × budgets × seeds from one YAML, each cell one
`acqsynth run`, collected into tidy tables that `acqsynth report` turns into tables and plots.

The experiment directory:

    experiment.yaml        the resolved experiment config; experiment.json its metadata for the report
    cache/                 the completion cache every cell shares (the same prompt at the same seed is
                           generated once for the whole grid, so cells that differ only in selection
                           see the same candidates)
    base/<key>/round-00/   the untrained student's evaluation, done once and copied into each cell
    cells/<method>/b<budget>-s<seed>/   one run directory per cell (see job.py); metrics.json marks it done
    results.parquet/.csv   one row per finished cell
    cells.json             each finished cell's resolved run config (what `published=` checks against)
    items.parquet          per-item correctness (task evaluation and forgetting suite) for paired tests
    scores.parquet         acquisition scores of the seeds, candidates or pool samples each method ranked

Resumable: a finished cell is never rerun and an interrupted one resumes (job.py). Cells can run in
parallel processes (`--workers N`, or the same command started twice): a cell is claimed with an
exclusive lock on its `.lock` file, so no two processes run it. A grid can also continue where its
cell directories are gone (a fresh clone, another machine): `published=DIR` names a copy of the
tables (results, items, scores, cells.json), and the cells in it whose config is unchanged count as
finished and are carried into the new tables.

A cell's seed is its run's `seed`, so it drives the cell's data selection, generation and training
(`RunConfig.round_seeds`; `train.seed` in the config pins the training seed for every cell instead).
A cell that already has a training seed (one started, finished or published with `train.seed` set,
as every cell run before run seeds drove training was, with 0) keeps it when the grid leaves
`train.seed` unset (`keep_train_seed`); configs are compared with their training seeds resolved.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from acqsynth.config import build_config, load_config, merge, nest, save_config, to_dict
from acqsynth.errors import AcqsynthError, check_range
from acqsynth.experiment.report import load_tables
from acqsynth.locks import claim
from acqsynth.models.aliases import missing_alias
from acqsynth.models.loader import uses_llamacpp
from acqsynth.run.config import RunConfig, keep_train_seed, resolve_config, resolved_seeds
from acqsynth.run.job import ROUND_FILE, Job, run_job
from acqsynth.samples import atomic_file, read_samples
from acqsynth.strategies import get_strategy
from acqsynth.strategies.scoring import score_column
from acqsynth.training import train_key

SCORE_FILES = {"seed_scores.jsonl": "seed", "candidate_scores.jsonl": "candidate", "pool_scores.jsonl": "pool"}
"""Per-round score tables a cell may hold, and the kind of row each ranks."""
COLUMNS = {
    "results": ["method", "budget", "seed", "quantile", "quantile_group", "strategy", "acquisition", "generator",
                "samples", "generated", "teacher_tokens", "accuracy", "accuracy_lo", "accuracy_hi", "accuracy_before",
                "forgetting", "forgetting_before", "n_eval", "wall_s"],
    "items": ["method", "budget", "seed", "quantile", "suite", "item_id", "correct"],
    "scores": ["method", "budget", "seed", "round", "kind", "acquisition", "score", "selected", "item_id"],
}
"""The columns of each tidy table (written even when a table has no rows yet)."""
RUN_LOCAL_KEYS = ("output", "cache")
"""Run-config keys that say where a cell runs, not what it computes: left out when configs are compared."""
TEXT_COLUMNS = {"method", "quantile_group", "strategy", "acquisition", "generator", "suite", "item_id", "kind"}
"""The tables' text columns (None where a value is absent)."""


@dataclass
class ExperimentConfig:
    """`acqsynth experiment`: every method at every budget and seed, under the same budget rules."""

    name: str = "experiment"
    """Name shown in the report."""
    base: str = "default"
    """Run config every cell starts from: a built-in name (`default`) or a YAML file."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Run-config keys set for every cell (dotted or nested), e.g. {data.eval_n: 200}."""
    methods: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Method name → run-config keys that make it (dotted or nested), e.g.
    {active-loss: {strategy: active, selection.acquisition: "loss(answer=own)"}}."""
    budgets: list[int] = field(default_factory=lambda: [16, 32])
    """Training-sample budgets (`budget.samples`); every method gets each one, unless `method_budgets` says otherwise."""
    method_budgets: dict[str, list[int]] = field(default_factory=dict)
    """Method name → its own budgets (e.g. the utility check's quantile methods at the smallest budget only)."""
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    """Root seeds; the same seeds for every method, so comparisons are paired."""
    budget_seeds: dict[int, list[int]] = field(default_factory=dict)
    """Budget → its own seeds in place of `seeds` (e.g. a secondary budget with fewer seeds); still the
    same seeds for every method at that budget."""
    generated_per_sample: float | None = None
    """Generator completions allowed per training sample (`budget.generated` = this × budget) for
    methods that do not set `budget.generated` themselves; None = the base config's rule."""
    baseline: str = "static"
    """The method every other one is compared with (paired differences in the report)."""
    goal_methods: list[str] = field(default_factory=list)
    """Methods that count for the goal verdict (the report's "Goal" section): at each budget the one
    with the largest paired gain over the baseline is judged against it, with Holm-adjusted p over all
    of them. Empty = no verdict."""
    goal_gain: float = 0.03
    """Accuracy gain over the baseline the best goal method must reach, with its paired interval above
    zero and no evidence of more forgetting, for the goal to count as met."""
    contrasts: dict[str, str] = field(default_factory=dict)
    """Paired comparisons the report makes besides those with the baseline: method -> the method it is
    compared with, at every budget both ran (e.g. {grpo-gen: static}: does GRPO training improve the
    generator's data?), by the same primary test, Holm-adjusted over all the contrasts' comparisons."""
    tau: list[float] | None = None
    """Target accuracies for data efficiency N(τ); None = untrained accuracy + 0.03 and + 0.05."""
    workers: int = 1
    """Processes running cells at once (each claims cells by lock); torch threads are split between them."""
    only: list[str] = field(default_factory=list)
    """Run only the cells whose key `METHOD/bBUDGET-sSEED` matches one of these shell patterns
    (e.g. `"*/b0096-s0"`: every method at budget 96, seed 0, first); the others wait for a later run.
    Finished cells count in the tables either way. Empty = every cell."""
    output: str | None = None
    """Experiment directory (None = runs/experiment-TIMESTAMP); rerunning with it resumes."""
    cache: str | None = None
    """The cells' completion, pool and score cache (None = OUTPUT/cache). Point two experiments at one
    cache to share what does not depend on the student, e.g. a generator's data written once for the
    cells of two students."""
    published: str | None = None
    """A directory holding this grid's tables from an earlier run (results/items/scores .parquet or
    .csv and cells.json, e.g. a committed copy): its cells count as finished, are not rerun, and their
    rows are carried into this run's tables; a cell whose config changed since is refused. For
    continuing a grid whose cell directories are gone. Once carried, the rows stay in the output
    directory's own tables, so later reruns there keep them without it. None = no other tables."""

    def __post_init__(self) -> None:
        if not self.budgets or any(b < 1 for b in self.budgets):
            raise AcqsynthError(f"budgets must be a non-empty list of positive sample counts, got {self.budgets}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise AcqsynthError(f"seeds must be a non-empty list of distinct integers, got {self.seeds}")
        for i, seed in enumerate(self.seeds):
            check_range(f"seeds[{i}]", seed, 0, 2**32 - 1)
        # `budget_seeds.128=[0,1]` on the command line gives the key as text
        self.budget_seeds = {int(b) if isinstance(b, str) and b.isdigit() else b: v for b, v in self.budget_seeds.items()}
        for budget, seeds in self.budget_seeds.items():
            if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
                raise AcqsynthError(f"budget_seeds: key {budget!r} must be a positive sample budget")
            if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
                    or any(not isinstance(s, int) or isinstance(s, bool) or not 0 <= s < 2**32 for s in seeds)):
                raise AcqsynthError(f"budget_seeds.{budget}: expected a non-empty list of distinct seeds, got {seeds!r}")
        check_range("generated_per_sample", self.generated_per_sample, 0, 1e6, low_open=True)
        for i, tau in enumerate(self.tau or []):
            check_range(f"tau[{i}]", tau, 0, 1)
        if self.workers < 1:
            raise AcqsynthError(f"workers must be >= 1, got {self.workers}")
        if any(not isinstance(p, str) or not p.strip() for p in self.only):
            raise AcqsynthError(f"only: expected cell-key patterns such as '*/b0096-s0' or 'static/*', got {self.only!r}")
        for name, keys in self.methods.items():
            if keys is not None and not isinstance(keys, dict):
                raise AcqsynthError(f"methods.{name}: expected a mapping of run-config keys (e.g. {{strategy: static}}), "
                                    f"got {keys!r}")
        for name, budgets in self.method_budgets.items():
            if not isinstance(budgets, list) or not budgets or any(not isinstance(b, int) or b < 1 for b in budgets):
                raise AcqsynthError(f"method_budgets.{name}: expected a non-empty list of positive sample counts, "
                                    f"got {budgets!r}")
        check_range("goal_gain", self.goal_gain, 0, 1)
        unknown = sorted(set(self.goal_methods) - set(self.methods))
        if unknown:
            raise AcqsynthError(f"goal_methods names methods that are not in methods: {', '.join(unknown)}")
        for method, reference in self.contrasts.items():
            unknown = sorted({method, reference} - set(self.methods)) if isinstance(reference, str) else [reference]
            if unknown:
                raise AcqsynthError(f"contrasts.{method}: {', '.join(map(repr, unknown))} is not one of the methods "
                                    f"({', '.join(self.methods)})")
            if method == reference:
                raise AcqsynthError(f"contrasts.{method}: a method cannot be contrasted with itself")
        if self.baseline in self.goal_methods:
            raise AcqsynthError(f"goal_methods: the baseline {self.baseline!r} cannot be judged against itself")
        unknown = sorted(set(self.method_budgets) - set(self.methods))
        if unknown:
            raise AcqsynthError(f"method_budgets names methods that are not in methods: {', '.join(unknown)}")
        used = set(self.budgets) | {b for bs in self.method_budgets.values() if isinstance(bs, list) for b in bs}
        unknown_b = sorted(set(self.budget_seeds) - used)
        if unknown_b:
            raise AcqsynthError(f"budget_seeds names budgets no method runs at: {', '.join(map(str, unknown_b))}")
        for name in self.methods:
            if not name or "/" in name or name.startswith(".") or name == "base":
                raise AcqsynthError(f"methods: {name!r} is not a usable method name (no '/', not 'base')")


@dataclass(frozen=True)
class Cell:
    """One run of the grid."""

    method: str
    budget: int
    seed: int
    config: RunConfig

    @property
    def key(self) -> str:
        return f"{self.method}/b{self.budget:04d}-s{self.seed}"


def cells(exp: ExperimentConfig, root: Path) -> list[Cell]:
    """Every cell of the grid with its resolved run config (errors name the method and key), budget by
    budget and seed by seed."""
    if not exp.methods:
        raise AcqsynthError("methods: give at least one method, e.g. {static: {strategy: static}}")
    if exp.baseline not in exp.methods:
        raise AcqsynthError(f"baseline {exp.baseline!r} is not one of the methods ({', '.join(exp.methods)})")
    base = to_dict(load_config(RunConfig, resolve_config(exp.base)))
    base = merge(base, nest(exp.overrides))
    build_config(RunConfig, base, "overrides")
    out = []
    budgets = sorted({b for m in exp.methods for b in exp.method_budgets.get(m, exp.budgets)})
    for budget in budgets:  # every method at one seed first, so a partial grid is already paired
        for seed in exp.budget_seeds.get(budget, exp.seeds):
            for method, keys in exp.methods.items():
                if budget not in exp.method_budgets.get(method, exp.budgets):
                    continue
                own = nest(keys or {})
                if not isinstance(own.get("budget", {}), dict):
                    raise AcqsynthError(f"methods.{method}.budget: expected a mapping such as {{generated: 320}} "
                                        "(the sample budget comes from `budgets`)")
                cell_values = merge(base, own)
                cell_values = merge(cell_values, {"seed": seed, "budget": {"samples": budget},
                                                  "cache": str(Path(exp.cache) if exp.cache else root / "cache")})
                if exp.generated_per_sample is not None and "generated" not in own.get("budget", {}):
                    cell_values["budget"]["generated"] = max(1, round(exp.generated_per_sample * budget))
                cell_values["output"] = str(root / "cells" / method / f"b{budget:04d}-s{seed}")
                out.append(Cell(method, budget, seed, build_config(RunConfig, cell_values, f"methods.{method}")))
    return out


def base_key(config: RunConfig) -> str:
    """What decides round 0 (the untrained student's evaluation, or the warmed one's with `data.warmup`);
    cells with equal keys share it."""
    d = to_dict(config)
    relevant = {"student": d["student"], "eval": d["eval"],
                "data": {k: d["data"][k] for k in ("name", "task", "eval_n", "eval_split", "forgetting")}}
    if config.data.warmup:  # round 0 is then the warmed student: its warm-up and training decide it too
        relevant["warmup"] = {"n": config.data.warmup, "train": train_key(replace(config.train, seed=config.train_seed))}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()[:12]


def _log(message: str) -> None:
    print(f"[acqsynth experiment] {message}", file=sys.stderr, flush=True)


def is_done(cell: Cell) -> bool:
    return (Path(cell.config.output or "") / "metrics.json").exists()


def _plain(d: dict[str, Any]) -> dict[str, Any]:
    """A config dict as JSON and YAML store it (tuples as lists)."""
    return json.loads(json.dumps(d))


def _changed_keys(old: Any, cell: Cell) -> list[str] | None:
    """Top-level run-config keys in which a saved config `old` differs from the cell's (None when `old`
    is not a config mapping). The cell keeps the training seed `old` names when the grid leaves it unset
    (`keep_train_seed`), and training seeds are compared resolved (`resolved_seeds`)."""
    if not isinstance(old, dict):
        return None
    old = merge(to_dict(RunConfig()), old)  # keys added to RunConfig since
    new = to_dict(keep_train_seed(cell.config, old))
    old, new = _plain(resolved_seeds(old)), _plain(resolved_seeds(new))
    return sorted(k for k in set(old) | set(new) if k not in RUN_LOCAL_KEYS and old.get(k) != new.get(k))


def _saved_config(cell: Cell) -> dict[str, Any] | None:
    """The config.yaml of the cell's run directory, if it has one (None also while another process writes it)."""
    import yaml

    saved = Path(cell.config.output or "") / "config.yaml"
    old = yaml.safe_load(saved.read_text()) if saved.exists() else None
    return old if isinstance(old, dict) else None


def _started_config(cell: Cell) -> RunConfig:
    """The cell's config as its run directory runs it: with the training seed it started with, if its
    saved config.yaml names one and the grid leaves `train.seed` unset (what job.py resumes with)."""
    old = _saved_config(cell)
    return keep_train_seed(cell.config, old) if old is not None else cell.config


def _fixed_train_seeds(grid: list[Cell], saved: dict[str, dict[str, Any]]) -> list[str]:
    """Keys of cells that keep a training seed other than their own seed, from their `saved` configs
    (cells that ran before run seeds drove training: their seeds varied the data, not the training)."""
    return [c.key for c in grid if isinstance(old := saved.get(c.key), dict) and c.config.train.seed is None
            and keep_train_seed(c.config, old).train_seed != c.config.seed]


@dataclass
class Published:
    """Rows of finished cells whose run directories are not here, by cell key: carried into the tables
    and never rerun (see `ExperimentConfig.published`)."""

    sources: list[Path] = field(default_factory=list)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    scores: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    base_items: list[dict[str, Any]] = field(default_factory=list)


def _row_key(row: dict[str, Any]) -> str:
    return f"{row['method']}/b{int(row['budget']):04d}-s{int(row['seed'])}"


def _records(frame: Any) -> list[dict[str, Any]]:
    """DataFrame rows as dicts; a missing value in a text column is None (what collect writes), in a
    numeric column NaN."""
    import pandas as pd

    text = TEXT_COLUMNS & set(frame.columns)  # by name: a CSV column with no value at all reads as float
    return [{k: None if k in text and not isinstance(v, str) and pd.isna(v) else v for k, v in r.items()}
            for r in frame.to_dict("records")]


def load_published(exp: ExperimentConfig, grid: list[Cell], root: Path) -> Published:
    """Rows of the grid's cells that are finished but have no run directory here: from `root`'s own
    tables (cells an earlier run carried, so a rerun without `published=` keeps them) and from
    `exp.published`. Refuses a carried cell whose run config differs from the grid's, an explicitly
    published cell with no saved config, and a table that holds a cell twice."""
    pending = {c.key: c for c in grid if not is_done(c)}
    pub = Published()
    sources = [(root, False)] + ([(Path(exp.published), True)] if exp.published is not None else [])
    seen: set[Path] = set()
    for src, explicit in sources:
        if src.resolve() in seen or not (explicit or any((src / f"results.{e}").exists() for e in ("parquet", "csv"))):
            continue
        seen.add(src.resolve())
        _read_published(src, explicit, pending, pub)
    return pub


def _read_published(src: Path, explicit: bool, pending: dict[str, Cell], pub: Published) -> None:

    what = "published" if explicit else f"the tables of {src}"
    try:
        tables = load_tables(src)
    except FileNotFoundError:
        raise AcqsynthError(f"published: no results.parquet or results.csv in {src}") from None
    except ValueError as e:  # a broken experiment.json or table
        raise AcqsynthError(f"{what}: cannot read the tables in {src}: {e}") from None
    configs_path = src / "cells.json"
    try:
        configs = json.loads(configs_path.read_text(encoding="utf-8")) if configs_path.exists() else {}
    except json.JSONDecodeError as e:
        raise AcqsynthError(f"{what}: {configs_path} is not valid JSON ({e})") from None
    if not isinstance(configs, dict):
        raise AcqsynthError(f"{what}: {configs_path} must map cell keys to run configs, got {type(configs).__name__}")
    rows = _records(tables.results)
    keys = [_row_key(r) for r in rows]
    twice = sorted(k for k, n in Counter(keys).items() if n > 1)
    if twice:
        raise AcqsynthError(f"{what}: {src}/results.* holds {len(twice)} cell(s) more than once: {', '.join(twice[:5])}")
    missing, changed, new = [], [], set()
    for key, row in zip(keys, rows, strict=True):
        if key not in pending or key in pub.results:  # finished here, gone from the grid, or carried already
            continue
        diff = _changed_keys(configs.get(key), pending[key])
        if diff is None:
            missing.append(key)
        elif diff:
            changed.append(f"{key} ({', '.join(diff)})")
        else:
            pub.results[key], pub.configs[key] = row, configs[key]
            new.add(key)
    if missing and explicit:
        reason = (f"{configs_path} is missing" if not configs_path.exists()
                  else f"{configs_path} has no run config for them")
        raise AcqsynthError(f"published: {reason}, so {len(missing)} cell(s) of {src}/results.* cannot be checked "
                            f"against this grid: {', '.join(missing[:5])} (collect writes cells.json beside the tables)")
    if changed:
        raise AcqsynthError(f"{what}: the config changes {len(changed)} finished cell(s) of {src}: "
                            f"{'; '.join(changed[:5])}; use the settings they ran with, or another output directory")
    base = []
    for row in _records(tables.items):
        if row["method"] == "base":
            base.append(row)
        elif _row_key(row) in new:
            pub.items.setdefault(_row_key(row), []).append(row)
    pub.base_items = pub.base_items or base
    for row in _records(tables.scores):
        if _row_key(row) in new:
            pub.scores.setdefault(_row_key(row), []).append(row)
    if new:
        pub.sources.append(src)


def _ensure_base(cell: Cell, root: Path, progress: bool) -> None:
    """Give the cell the shared untrained-student evaluation (computed by the first cell that needs it)."""

    run_dir = Path(cell.config.output or "")
    if (run_dir / "round-00" / ROUND_FILE).exists():
        return
    shared = root / "base" / base_key(cell.config)
    with claim(shared / ".lock", wait=True):  # another process evaluating it: wait and share
        if not (shared / "round-00" / ROUND_FILE).exists():
            _log(f"evaluating the untrained student once for every cell (base/{shared.name})")
            job = Job(cell.config, shared, progress=progress)
            job.load()
            job.evaluate_base()
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "round-00.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(shared / "round-00", tmp)
    shutil.rmtree(run_dir / "round-00", ignore_errors=True)  # an unfinished evaluation of its own
    tmp.rename(run_dir / "round-00")


def _chosen(exp: ExperimentConfig, grid: list[Cell]) -> set[str]:
    """Keys of the cells `only=` selects (all when it is empty)."""
    chosen = {c.key for c in grid if not exp.only or any(fnmatch.fnmatchcase(c.key, p) for p in exp.only)}
    if not chosen:
        raise AcqsynthError(f"only: no cell key matches {exp.only}; keys look like {grid[0].key}")
    return chosen


def _needed_models(cell: Cell) -> list[str]:
    """Model specs the cell will load: the student, and for generating strategies the generator and
    (for self-consistency labels) the answer model; the embedder, which hygiene and embedding scores use."""
    g = cell.config.generator
    specs = [cell.config.student.model, g.embedder]
    if get_strategy(cell.config.strategy).generates:
        specs.append(g.model)
        if g.label.method == "self-consistency":
            specs.append(g.answer_model)
    return [s for s in specs if s]


def _check_models(pending: list[Cell]) -> None:
    """Refuse, before any cell runs, a grid whose pending cells need a model alias that is not installed,
    or llama.cpp when it is missing: else such a cell would fail only when its turn comes, maybe hours in.
    Nothing is loaded or downloaded here."""
    from importlib.util import find_spec

    from acqsynth.models import llamacpp_generator

    need: dict[str, list[str]] = {}
    for cell in pending:
        specs = _needed_models(cell)
        missing = {m for s in specs if (m := missing_alias(s))}
        if find_spec("llama_cpp") is None and any(map(uses_llamacpp, specs)):
            missing.add("llama.cpp")
        for name in sorted(missing):
            need.setdefault(name, []).append(cell.key)
    if need:
        fix = {"llama.cpp": llamacpp_generator.INSTALL}
        lines = [f"{name} (needed by {len(keys)} cell(s): {', '.join(keys[:3])}{', …' if len(keys) > 3 else ''}): "
                 f"run `{fix.get(name, f'acqsynth models install {name}')}`" for name, keys in need.items()]
        raise AcqsynthError("not installed: " + "; ".join(lines) + "; or leave those cells out with only=")


def run_cells(exp: ExperimentConfig, root: Path, progress: bool = True,
              published: Published | None = None) -> tuple[int, int]:
    """Run every cell not yet done (here or in carried tables) and not claimed by another process;
    returns (ran, skipped)."""

    ran = skipped = 0
    grid = cells(exp, root)
    carried = set((published or load_published(exp, grid, root)).results)
    chosen = _chosen(exp, grid)
    if exp.only:
        _log(f"only {exp.only}: {len(chosen)} of {len(grid)} cells")
    for i, cell in enumerate(grid, 1):
        if is_done(cell) or cell.key not in chosen or cell.key in carried:
            continue
        run_dir = Path(cell.config.output or "")
        with claim(run_dir.parent / f".{run_dir.name}.lock") as mine:
            if not mine or is_done(cell):
                skipped += not mine
                continue
            _log(f"cell {i}/{len(grid)}: {cell.key}")
            t0 = time.perf_counter()
            try:
                _ensure_base(cell, root, progress)
                summary = run_job(cell.config, run_dir, progress=progress)
            except Exception as e:  # noqa: BLE001 -- one broken cell must not stop the grid
                import traceback

                _log(f"cell {cell.key} FAILED: {type(e).__name__}: {e} (see {run_dir / 'error.txt'}; a rerun retries it)")
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / "error.txt").write_text(traceback.format_exc())
                continue
            (run_dir / "error.txt").unlink(missing_ok=True)
            acc = summary.accuracy_after
            _log(f"cell {cell.key}: accuracy {acc['mean']:.4f} [{acc['lo']:.4f}, {acc['hi']:.4f}] "
                 f"in {time.perf_counter() - t0:.0f} s")
            ran += 1
    return ran, skipped


def run_experiment(exp: ExperimentConfig, root: Path, progress: bool = True, config_path: str | None = None,
                   overrides: list[str] | None = None) -> dict[str, Any]:
    """Run (or resume) the grid in `root`, with `exp.workers` processes, then collect the tables."""
    root.mkdir(parents=True, exist_ok=True)
    grid = cells(exp, root)  # validates every cell's config before anything runs
    _check_started_cells(grid)
    pub = load_published(exp, grid, root)
    carried = set(pub.results)
    if carried:
        _log(f"{len(carried)} finished cell(s) without run directories here carried from the tables of "
             f"{', '.join(map(str, pub.sources))}, not rerun")
    started = {c.key: old for c in grid if (old := _saved_config(c)) is not None}
    fixed = _fixed_train_seeds(grid, {**started, **pub.configs})
    if fixed:
        _log(f"{len(fixed)} cell(s) keep the training seed they started with, not their own seed (they ran with "
             f"train.seed set, as every cell did before run seeds drove training; {', '.join(fixed[:3])}"
             f"{', …' if len(fixed) > 3 else ''}): set train.seed for the grid to train every cell alike, or use "
             "another output directory for a grid whose seeds vary the training too")
    save_config(exp, root / "experiment.yaml")
    with atomic_file(root / "experiment.json") as tmp:
        meta = _meta(exp, grid)
        if config_path is not None:
            # scheduling, not results: a rerun from scratch gives the same tables
            kept = [o for o in overrides or [] if not o.startswith(("only=", "workers=", "published="))]
            meta["commands"] = [" ".join(["acqsynth experiment", config_path, *kept, f"--output {root}"]),
                                f"acqsynth report {root}"]
        tmp.write_text(json.dumps(meta, indent=2) + "\n")
    chosen = _chosen(exp, grid)  # refuse before any worker starts
    _check_models([c for c in grid if c.key in chosen and c.key not in carried and not is_done(c)])
    children = []
    if exp.workers > 1 and config_path is not None:
        import torch

        threads = max(1, (os.cpu_count() or 1) // exp.workers)
        torch.set_num_threads(threads)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, "-m", "acqsynth.cli", "experiment", config_path, *(overrides or []), "workers=1",
               f"output={root}", "--quiet", "--no-collect"]
        children = [subprocess.Popen(cmd, env=env) for _ in range(exp.workers - 1)]
        time.sleep(1.0)
    try:
        ran, skipped = run_cells(exp, root, progress=progress, published=pub)
    finally:
        if sys.exc_info()[0] is not None:  # this process failed or was interrupted: stop the workers too
            for c in children:
                c.terminate()
        crashed = sum(1 for c in children if c.wait() != 0)
    if crashed:
        _log(f"{crashed} worker process(es) exited with an error; their unfinished cells are listed below")
    here = {c.key for c in grid if is_done(c)}
    finished = here | carried
    from_pub = f", {len(carried - here)} carried" if carried else ""
    _log(f"{len(finished)}/{len(grid)} cells done ({ran} run by this process{from_pub})")
    tables = collect(exp, root, pub)
    failed = [c.key for c in grid if c.key not in finished and (Path(c.config.output or "") / "error.txt").exists()]
    return {"cells": len(grid), "done": len(finished), "ran": ran, "skipped_locked": skipped, "results": str(tables),
            "missing": [c.key for c in grid if c.key not in finished], "failed": failed}


def _check_started_cells(grid: list[Cell]) -> None:
    """Refuse a config that would change a cell already started (methods, budgets and seeds may be
    added: their cells are new)."""
    import yaml

    changed = []
    for cell in grid:
        saved = Path(cell.config.output or "") / "config.yaml"
        if not saved.exists():
            continue
        keys = _changed_keys(yaml.safe_load(saved.read_text()), cell)  # None: another process is writing it
        if keys:
            changed.append(f"{cell.key} ({', '.join(keys)})")
    if changed:
        raise AcqsynthError(f"the config changes {len(changed)} cell(s) already started: {'; '.join(changed[:5])}; "
                            "resume with the same settings for them, or choose another output directory")


def _meta(exp: ExperimentConfig, grid: list[Cell]) -> dict[str, Any]:
    first = grid[0].config
    return {"name": exp.name, "baseline": exp.baseline, "tau": exp.tau,
            "goal": {"methods": exp.goal_methods, "gain": exp.goal_gain} if exp.goal_methods else None,
            **({"contrasts": exp.contrasts} if exp.contrasts else {}),
            "method_budgets": exp.method_budgets, "task": first.data.name,
            "student": first.student.model, "methods": list(exp.methods), "budgets": exp.budgets, "seeds": exp.seeds,
            **({"budget_seeds": exp.budget_seeds} if exp.budget_seeds else {}),
            **({"warmup": first.data.warmup} if first.data.warmup else {}),
            "generators": {m: c.config.generator.model for c in grid for m in [c.method]}}


# ---- tidy tables ----------------------------------------------------------------------------

def _final_round(summary: dict[str, Any]) -> int:
    """The round whose student is the final one (the last that trained, else 0)."""
    for r in reversed(summary["rounds"]):
        if r["round"] == 0 or r["new_samples"] > 0:
            return int(r["round"])
    return 0


def _correct_rows(path: Path) -> list[tuple[str, float]]:

    data = read_samples(path)
    col = "pass1" if "pass1" in data.column_names else "correct"  # pass@1 = c/n when n answers were sampled
    return [(i, float(c)) for i, c in zip(data["id"], data[col], strict=True)]


def collect(exp: ExperimentConfig, root: Path, published: Published | None = None) -> Path:
    """Write results, items and scores tables (Parquet + CSV) and cells.json for every finished cell,
    carrying the published tables' rows for cells not finished here; returns results.parquet."""
    import pandas as pd

    results, items, scores = [], [], []
    configs: dict[str, Any] = {}
    base_done = False
    for cell in cells(exp, root):
        if not is_done(cell):
            if published is not None and cell.key in published.results:
                results.append(published.results[cell.key])
                items += published.items.get(cell.key, [])
                scores += published.scores.get(cell.key, [])
                configs[cell.key] = published.configs[cell.key]
            continue
        configs[cell.key] = {k: v for k, v in to_dict(_started_config(cell)).items() if k not in RUN_LOCAL_KEYS}
        run_dir = Path(cell.config.output or "")
        summary = json.loads((run_dir / "metrics.json").read_text())
        c = cell.config
        quantile = (
            float(c.selection.quantile)
            if c.selection.method == "quantile" and c.selection.quantile is not None
            else None
        )
        is_q = quantile is not None
        group = f"{c.strategy} by {c.selection.acquisition}, {c.selection.quantiles} bins" if is_q else None
        acc, before = summary["accuracy_after"], summary["accuracy_before"]
        fb, fa = summary.get("forgetting_before"), summary.get("forgetting_after")
        ident = {"method": cell.method, "budget": cell.budget, "seed": cell.seed, "quantile": quantile}
        uses_acq = get_strategy(c.strategy).uses_acquisition
        results.append({
            **ident, "quantile_group": group, "strategy": c.strategy, "acquisition": c.selection.acquisition if uses_acq else None,
            "generator": summary.get("generator"), "samples": summary["samples"], "generated": summary["generated"],
            "teacher_tokens": summary["teacher_tokens"], "accuracy": acc["mean"], "accuracy_lo": acc["lo"],
            "accuracy_hi": acc["hi"], "accuracy_before": before["mean"],
            "forgetting": fa["mean"] if fa else float("nan"), "forgetting_before": fb["mean"] if fb else float("nan"),
            "n_eval": acc["n"], "wall_s": sum(r.get("wall_s", 0.0) for r in summary["rounds"] if r["round"] > 0),
        })
        final = run_dir / f"round-{_final_round(summary):02d}"
        items += [{**ident, "suite": "task", "item_id": i, "correct": v} for i, v in _correct_rows(final / "eval.jsonl")]
        if (run_dir / "forgetting.jsonl").exists():
            items += [{**ident, "suite": "forgetting", "item_id": i, "correct": v}
                      for i, v in _correct_rows(run_dir / "forgetting.jsonl")]
        if not base_done:
            b = {"method": "base", "budget": 0, "seed": 0, "quantile": None}
            items += [{**b, "suite": "task", "item_id": i, "correct": v}
                      for i, v in _correct_rows(run_dir / "round-00" / "eval.jsonl")]
            if (run_dir / "round-00" / "forgetting.jsonl").exists():
                items += [{**b, "suite": "forgetting", "item_id": i, "correct": v}
                          for i, v in _correct_rows(run_dir / "round-00" / "forgetting.jsonl")]
            base_done = True
        scores += _score_rows(run_dir, ident)
    if not base_done and published is not None:
        items = published.base_items + items
    out = {"results": pd.DataFrame(results), "items": pd.DataFrame(items), "scores": pd.DataFrame(scores)}
    for name, frame in out.items():
        frame = frame.reindex(columns=COLUMNS[name])
        if "quantile" in frame.columns:  # float with NaN for "none", whichever table a row came from
            frame["quantile"] = frame["quantile"].astype(float)
        with atomic_file(root / f"{name}.parquet") as tmp:
            frame.to_parquet(tmp, index=False)
        with atomic_file(root / f"{name}.csv") as tmp:
            frame.to_csv(tmp, index=False)
    with atomic_file(root / "cells.json") as tmp:
        tmp.write_text(json.dumps(configs, indent=1, sort_keys=True) + "\n")
    return root / "results.parquet"


def _score_rows(run_dir: Path, ident: dict[str, Any]) -> list[dict[str, Any]]:
    """Acquisition scores from every round's score table, with whether each row was kept."""

    rows = []
    for d in sorted(run_dir.glob("round-*")):
        for fname, kind in SCORE_FILES.items():
            if not (d / fname).exists():
                continue
            table = read_samples(d / fname, allow_empty=True)
            col = score_column(table)
            if col is None or len(table) == 0:
                continue
            ids = table["id"] if "id" in table.column_names else [None] * len(table)
            for score, kept, item in zip(table[col], table["selected"], ids, strict=True):
                rows.append({"method": ident["method"], "budget": ident["budget"], "seed": ident["seed"],
                             "round": int(d.name.split("-")[1]), "kind": kind, "acquisition": col,
                             "score": float("nan") if score is None else float(score), "selected": bool(kept),
                             "item_id": item})
    return rows
