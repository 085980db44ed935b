"""`acqsynth run`: evaluate the student, make data with one strategy round by round, finetune the
student on all data so far after each round, evaluate again, and write a report.

The run directory is the run's whole state:

    config.yaml            the resolved config
    cache/                 every generator (and answer-model) completion, append-only
    round-00/round.json    the untrained student's evaluation (with `data.warmup`, the warmed student's:
                           round-00/ then also holds warmup.jsonl, warmup.json and its adapter/ or model/)
    round-NN/              what the strategy writes: seed_scores.jsonl (active), candidate_scores.jsonl
                           (rejection), pool_scores.jsonl (filtered, filtered-active) or mistakes.jsonl
                           (mistakes), generation/ (samples, rejections, stats); then data.jsonl (this
                           round's new samples), adapter/ (LoRA) or model/ (full), eval.jsonl, and
                           round.json, written last: a round without it is redone
    forgetting.jsonl       the final student on the forgetting suite (round-00/ holds the untrained one's)
    data.jsonl             all training samples, metrics.json (`RunSummary`), report.md, accuracy.png

The strategy (`acqsynth.strategies`, or a user's FILE.py:NAME) makes each round's samples; the job
asks it whether it generates (then the generation budget applies) and whether it runs `rounds`
rounds or one, and knows no strategy by name.

Every seed a round used is in its round.json (`seeds`) and all of them in metrics.json (`seeds`, see
`Job.seeds_used`): the run's seed drives selection, generation and training alike, unless `train.seed`
pins the training seed.

A killed run resumes with the same command: finished rounds are loaded, the interrupted round is
redone (its completions replay from the cache at no model cost), so no round is counted twice and
the budget holds exactly.

The candidate pool of pool strategies is `Job.pool` (run/pool.py): the pool split without the warm-up
rows, its first `data.pool` rows, or with `data.pool_seeded` a draw of `data.pool` rows by the run's
seed, the same for every method of that seed (the pool design, docs/experiments.md); with
`data.pool_source: generated`, `data.pool` samples the generator wrote once for that seed.

Warm start (`data.warmup` N > 0) is the job's, the same for every strategy: the first N pool rows
train the student before round 0 evaluates it; that warmed student scores round 1, every round
trains on the warm-up samples plus all selected ones, and strategies see the warm-up samples in
`RoundContext.earlier` (and never in `pool()`), so none is selected twice. A finished warm-up
(round-00/warmup.json) is reloaded from its saved weights, not trained again.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from peft import PeftModel

from acqsynth.config import merge, save_config, to_dict
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.evaluation.accuracy import evaluate
from acqsynth.evaluation.forgetting import evaluate_forgetting, forgetting_suite
from acqsynth.generation.prompts import template_kind
from acqsynth.generation.setup import GenerationSetup, builtin_task_name, prepare_generation
from acqsynth.models.causal_lm import load_causal_lm
from acqsynth.models.embedder import LazyEmbedder
from acqsynth.models.hf_generator import HFGenerator
from acqsynth.models.hf_student import TransformersStudent
from acqsynth.run.config import RunConfig, keep_train_seed, resolved_seeds
from acqsynth.run.pool import generated_pool, generated_pool_key, seeded_pool
from acqsynth.run.report import write_report
from acqsynth.run.summary import RoundRecord, RunSummary
from acqsynth.samples import Sample, atomic_file, iter_samples, read_samples, to_dataset, write_samples
from acqsynth.strategies import GenerationBudget, RoundContext, RoundResult, get_strategy
from acqsynth.strategies.transfer import describe_transfer
from acqsynth.tasks import get_task, task_kind
from acqsynth.training import train_key, train_student

ROUND_FILE = "round.json"
WARMUP_FILE = "warmup.json"
"""round-00/warmup.json: the finished warm-up's record (written once its weights are saved)."""
WARMUP_KEY = "warmup"
"""Metadata flag of the warm-up samples in warmup.jsonl and data.jsonl."""


def _log(message: str) -> None:
    print(f"[acqsynth run] {message}", file=sys.stderr, flush=True)


def _round_dir(run_dir: Path, r: int) -> Path:
    return run_dir / f"round-{r:02d}"


def _write_json(path: Path, data: Any) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _check_resume(run_dir: Path, config: RunConfig) -> RunConfig:
    """The config to resume `run_dir` with: `config`, keeping the training seed the run started with when
    `config` leaves it unset (`keep_train_seed`). Refuses a run directory started with another config."""
    saved = run_dir / "config.yaml"
    if not saved.exists():
        return config
    old = yaml.safe_load(saved.read_text())
    if not isinstance(old, dict):
        raise AcqsynthError(f"{saved} is empty or not a mapping; delete it to restart the run")
    old = merge(to_dict(RunConfig()), old)  # keys added to RunConfig since the run started take their defaults
    kept = keep_train_seed(config, old)
    if kept.train_seed != config.train_seed:
        _log(f"resuming with train.seed {kept.train_seed}, the training seed this run started with "
             f"(unset, it would be the run's seed {config.seed}); pass train.seed to change it in a new run")
    config = kept
    old, new = resolved_seeds(old), resolved_seeds(to_dict(config))
    for key in ("output", "cache"):  # where things are kept does not change the run
        old.pop(key, None)
        new.pop(key, None)
    if old != new:
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise AcqsynthError(
            f"{run_dir} holds a run with a different config (differs in: {', '.join(diff)}); "
            "resume it with the same config, or choose another output directory"
        )
    return config


def samples_this_round(budget: int, used: int, rounds_left: int) -> int:
    """An even share of what is left of the sample budget for the next round."""
    left = budget - used
    return 0 if left <= 0 or rounds_left <= 0 else math.ceil(left / rounds_left)


class Job:
    """One run of `acqsynth run` over its run directory."""

    def __init__(self, config: RunConfig, run_dir: Path, progress: bool = True) -> None:
        self.config, self.run_dir, self.progress = config, run_dir, progress
        self.strategy = get_strategy(config.strategy)
        self.records: list[RoundRecord] = []
        self.samples: list[Sample] = []
        self.warmup: list[Sample] = []
        """The warm-up samples (`data.warmup`), trained on in every round; never in `samples`."""
        self._warm: TransformersStudent | None = None
        self._setup: GenerationSetup | None = None
        self._embedder: LazyEmbedder | None = None
        self._suite: list[Sample] | None = None
        self._generated: list[Sample] | None = None
        self.forgetting_after: dict[str, Any] = {}

    # ---- loading -------------------------------------------------------------------------------

    def load(self) -> None:
        c = self.config
        if c.student.threads:
            torch.set_num_threads(c.student.threads)
        self.task_name = c.data.task or builtin_task_name(c.data.name, option="data.task")
        self.task = get_task(self.task_name)
        ev = load_data(c.data.name, split=c.data.eval_split, task=c.data.task)
        if len(ev) == 0:
            raise AcqsynthError(f"dataset {c.data.name!r} has no rows in its {c.data.eval_split!r} split")
        self.eval_data = ev.select(range(min(c.data.eval_n, len(ev))))
        _log(f"student {c.student.model}; {len(self.eval_data)} {c.data.name} {c.data.eval_split} rows for evaluation")
        self.base_model, self.tokenizer = load_causal_lm(c.student.model)
        self.base_model.eval()
        self.base = TransformersStudent(self.base_model, self.tokenizer, batch_size=c.student.batch_size,
                                        max_length=c.student.max_length)
        if c.generator.embedder:
            self._embedder = LazyEmbedder(c.generator.embedder)
        self.warmup = self.warmup_samples() if c.data.warmup else []

    def generator_template(self) -> str | None:
        """The generator's template: `generator.template` as the strategy adapts it to the task's kind."""
        return self.strategy.generator_template(self.config.generator.template, template_kind(task_kind(self.task)))

    def setup(self) -> GenerationSetup:
        """The generation set-up (generator, seeds, caches, hygiene indexes), loaded on first use."""
        if self._setup is None:
            c, g = self.config, self.config.generator
            template = self.generator_template()
            generator: Any = g.model
            if g.model == c.student.model:  # the untrained student writes: share its weights
                generator = HFGenerator((self.base_model, self.tokenizer), batch_size=g.batch_size, name=g.model)
            self._setup = prepare_generation(
                generator=generator, cache_dir=self.cache_dir, task=c.data.task, data=c.data.name,
                n_seeds=c.data.seeds, hygiene=g.hygiene, label=g.label, answer_model=g.answer_model,
                embedder=self._embedder, decontaminate=[f"{c.data.name}@{c.data.eval_split}"], template=template,
                threads=g.threads,
            )
        return self._setup

    @property
    def cache_dir(self) -> Path:
        return Path(self.config.cache) if self.config.cache else self.run_dir / "cache"

    def _pool_split(self) -> list[Sample]:
        c = self.config
        return list(iter_samples(load_data(c.data.name, split="pool", task=c.data.task)))

    def pool(self) -> list[Sample]:
        """The real pool samples that real-data strategies draw from: the pool split without the
        warm-up rows, its first `data.pool` of them, or with `data.pool_seeded` the run seed's draw
        of `data.pool` of them (`seeded_pool`); with `data.pool_source: generated`, `generated_pool`."""
        c = self.config
        if c.data.pool_source == "generated":
            return self.generated_pool()
        pool = self._pool_split()[c.data.warmup :]
        if c.data.pool_seeded and c.data.pool is not None:
            return seeded_pool(pool, c.data.pool, c.seed)
        return pool[: c.data.pool] if c.data.pool is not None else pool

    def generated_pool(self) -> list[Sample]:
        """The candidate pool the generator wrote for this run's seed (`data.pool_source: generated`),
        built on first use into the cache's pools/ folder and shared with every run of that cache."""
        if self._generated is None:
            c = self.config
            key = generated_pool_key(c, self.task_name, self.generator_template(), [s.id for s in self.warmup])
            self._generated = generated_pool(c, self.cache_dir / "pools" / key, self.setup, self.warmup)
        return self._generated

    def warmup_samples(self) -> list[Sample]:
        """The warm-up samples: the first `data.warmup` rows of the pool split (hash order), marked
        `warmup` in their metadata."""
        n = self.config.data.warmup
        pool = self._pool_split()
        if n > len(pool):
            raise AcqsynthError(f"data.warmup is {n} but the pool split has only {len(pool)} rows")
        return [replace(s, metadata={**s.metadata, WARMUP_KEY: True}) for s in pool[:n]]

    def warmup_key(self) -> str:
        """What decides the warmed student (its base, data and training), as a short hash."""
        c = self.config
        what = {"student": c.student.model, "data": c.data.name, "task": self.task_name,
                "ids": [s.id for s in self.warmup], "train": train_key(replace(c.train, seed=c.train_seed))}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def student_after(self, r: int) -> TransformersStudent:
        """The student trained in round `r` (0: the base student, or the warmed one), rebuilt from its
        saved weights."""
        if r == 0 and not self.warmup:
            return self.base
        if r == 0:
            if self._warm is None:
                self._warm = self._saved_student(_round_dir(self.run_dir, 0))
            return self._warm
        return self._saved_student(_round_dir(self.run_dir, r))

    def _saved_student(self, d: Path) -> TransformersStudent:
        """The student whose weights training saved in `d` (adapter/ or model/)."""
        if (d / "adapter").is_dir():
            model = PeftModel.from_pretrained(copy.deepcopy(self.base_model), str(d / "adapter")).merge_and_unload()
        elif (d / "model").is_dir():
            model, _ = load_causal_lm(str(d / "model"))
        else:
            raise AcqsynthError(f"{d} has no adapter/ or model/: delete {d / ROUND_FILE} to redo the round")
        model.eval()
        return TransformersStudent(model, self.tokenizer, batch_size=self.base.batch_size,
                                   max_length=self.base.max_length)

    # ---- one round ------------------------------------------------------------------------------

    def evaluate(self, student: TransformersStudent, out: Path) -> dict[str, Any]:
        gen = HFGenerator((student.model, student.tokenizer), batch_size=self.config.eval.batch_size)
        rows, summary = evaluate(student, gen, self.task, self.eval_data, self.config.eval, progress=self.progress)
        write_samples(rows, out)
        return summary.to_dict()

    def forgetting(self, student: TransformersStudent, out: Path) -> dict[str, Any]:
        """Accuracy on the forgetting suite (rows written to `out`), or {} when it is switched off."""
        if self.config.data.forgetting <= 0:
            return {}
        if self._suite is None:
            self._suite = forgetting_suite(self.config.data.forgetting)
        _log(f"forgetting suite: {len(self._suite)} items")
        rows, est = evaluate_forgetting(student, self._suite, seed=self.config.eval.seed)
        write_samples(rows, out)
        return asdict(est)

    def collect(self, r: int, n: int, student: TransformersStudent, budget: GenerationBudget,
                d: Path) -> RoundResult:
        """Round `r`'s `n` new samples from the strategy, and what making them cost."""
        seeds = self.config.round_seeds(r)
        ctx = RoundContext(
            round=r, n=n, student=student, budget=budget, out=d, config=self.config,
            earlier=self.warmup + self.samples,
            selection_seed=seeds["selection"], generation_seed=seeds["generation"], task=self.task,
            task_name=self.task_name, embedder=self._embedder, cache_dir=self.cache_dir, pool=self.pool,
            setup=self.setup, progress=self.progress,
        )
        return self.strategy.collect(ctx)

    def run_round(self, r: int, rounds: int,
                  student: TransformersStudent) -> tuple[RoundRecord, TransformersStudent]:
        c = self.config
        d = _round_dir(self.run_dir, r)
        d.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        n = samples_this_round(c.budget.samples, len(self.samples), rounds - r + 1)
        spent_gen = sum(x.generated for x in self.records)
        spent_tok = sum(x.teacher_tokens for x in self.records)
        budget = GenerationBudget(
            generated=c.budget.max_generated - spent_gen,
            tokens=None if c.budget.teacher_tokens is None else c.budget.teacher_tokens - spent_tok,
        )
        spent = None
        if self.strategy.generates and budget.generated <= 0:
            spent = "budget: generated"
        elif self.strategy.generates and budget.tokens is not None and budget.tokens <= 0:
            spent = "budget: tokens"
        made = RoundResult([], {"stop_reason": spent}) if spent else self.collect(r, n, student, budget, d)
        new, stats, generated, tokens = made.samples, made.generation, made.generated, made.tokens
        write_samples(to_dataset(new), d / "data.jsonl")
        stop = stats.get("stop_reason") if stats else None
        seeds = c.round_seeds(r)
        if not new:
            record = RoundRecord(round=r, new_samples=0, total_samples=len(self.samples), generated=generated,
                                 teacher_tokens=tokens, generation=stats, stop_reason=stop or "no samples",
                                 accuracy=self.records[-1].accuracy, wall_s=time.perf_counter() - start,
                                 seeds={**seeds, "train": None})
            _write_json(d / ROUND_FILE, record.to_dict())
            return record, student
        samples = self.samples + new
        warm = f" and {len(self.warmup)} warm-up" if self.warmup else ""
        _log(f"round {r}: finetuning the student ({c.train.method}, seed {seeds['train']}) on {len(samples)}{warm} samples")
        result = train_student(self.base_model, self.tokenizer, self.warmup + samples, self.task,
                               replace(c.train, seed=seeds["train"]), d)
        _log(f"round {r}: {result.steps} steps in {result.wall_s:.0f} s, loss "
             f"{result.losses[0] if result.losses else float('nan'):.3f} -> {result.losses[-1] if result.losses else float('nan'):.3f}")
        trained = TransformersStudent(result.model, self.tokenizer, batch_size=self.base.batch_size,
                                      max_length=self.base.max_length)
        _log(f"round {r}: evaluating")
        accuracy = self.evaluate(trained, d / "eval.jsonl")
        record = RoundRecord(
            round=r, new_samples=len(new), total_samples=len(samples), generated=generated, teacher_tokens=tokens,
            accuracy=accuracy, train=result.metrics(), generation=stats, stop_reason=stop,
            wall_s=time.perf_counter() - start, seeds=seeds,
        )
        _write_json(d / ROUND_FILE, record.to_dict())
        self.samples = samples
        return record, trained

    # ---- the whole run --------------------------------------------------------------------------

    def run(self) -> RunSummary:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        c = self.config = _check_resume(self.run_dir, self.config)
        save_config(c, self.run_dir / "config.yaml")
        started = time.perf_counter()
        self.load()
        rounds = c.rounds if self.strategy.multi_round else 1
        self.records.append(self.evaluate_base())
        _log(f"before training: accuracy {_fmt(self.records[0].accuracy)}")
        last_done = 0
        for r in range(1, rounds + 1):
            f = _round_dir(self.run_dir, r) / ROUND_FILE
            if not f.exists():
                break
            rec = RoundRecord(**json.loads(f.read_text()))
            self.records.append(rec)
            data = _round_dir(self.run_dir, r) / "data.jsonl"
            self.samples += list(iter_samples(read_samples(data, allow_empty=True)))
            last_done = r
            _log(f"round {r}: already done ({rec.new_samples} samples), loaded")
        student = self.student_after(self._last_trained(last_done))
        stop = None
        for r in range(last_done + 1, rounds + 1):
            if len(self.samples) >= c.budget.samples:
                break
            record, student = self.run_round(r, rounds, student)
            self.records.append(record)
            _log(f"round {r}: +{record.new_samples} samples (total {record.total_samples}), "
                 f"accuracy {_fmt(record.accuracy)}")
            if record.new_samples == 0:
                stop = record.stop_reason
                break
        try:
            write_samples(to_dataset(self.warmup + self.samples), self.run_dir / "data.jsonl")
            self.final_forgetting(student)
            summary = self.summary(stop, time.perf_counter() - started)
            write_report(self.run_dir, summary)
            _write_json(self.run_dir / "metrics.json", summary.to_dict())  # last: it marks the run done
        finally:
            if self._setup is not None:
                self._setup.close()
        return summary

    def final_forgetting(self, student: TransformersStudent) -> None:
        """Score the final student on the forgetting suite once (forgetting.json marks it done)."""
        if self.config.data.forgetting <= 0:
            return
        trained = self._last_trained(len(self.records) - 1)
        path = self.run_dir / "forgetting.json"
        if path.exists() and json.loads(path.read_text()).get("after_round") == trained:
            self.forgetting_after = json.loads(path.read_text())["accuracy"]
            return
        _log("evaluating the final student on the forgetting suite")
        self.forgetting_after = self.forgetting(student, self.run_dir / "forgetting.jsonl")
        _write_json(path, {"after_round": trained, "accuracy": self.forgetting_after})

    def evaluate_base(self) -> RoundRecord:
        """Round 0: the untrained student's evaluation (and forgetting suite), loaded when already done.
        With `data.warmup`, the student first trains on the warm-up samples (`warm_up`) and round 0
        evaluates that warmed student; a round 0 done with another warm-up (or none: an experiment's
        shared untrained evaluation) is redone."""
        d0 = _round_dir(self.run_dir, 0)
        expected = self.warmup_key() if self.warmup else None
        if (d0 / ROUND_FILE).exists():
            rec = RoundRecord(**json.loads((d0 / ROUND_FILE).read_text()))
            if (rec.warmup or {}).get("key") == expected:
                return rec
            _log(f"{d0} holds a round 0 {'with another warm-up' if rec.warmup else 'without the warm-up'}: redoing it")
        d0.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        student, warmup = self.base, {}
        if self.warmup:
            warmup = self.warm_up(d0)
            student = self.student_after(0)
            _log("evaluating the warmed student")
        else:
            _log("evaluating the untrained student")
        acc = self.evaluate(student, d0 / "eval.jsonl")
        forgetting = self.forgetting(student, d0 / "forgetting.jsonl")
        rec = RoundRecord(round=0, new_samples=0, total_samples=0, accuracy=acc, forgetting=forgetting,
                          wall_s=time.perf_counter() - t0, warmup=warmup)
        _write_json(d0 / ROUND_FILE, rec.to_dict())
        return rec

    def warm_up(self, d0: Path) -> dict[str, Any]:
        """Train the student on the warm-up samples into `d0` (round-00/), with the rounds' training
        config and seed, or reload it when round-00/warmup.json says this warm-up finished; the warmed
        student becomes round 0's (`student_after(0)`). Returns the warm-up's record."""
        c, marker = self.config, d0 / WARMUP_FILE
        key = self.warmup_key()
        if marker.exists():
            done = json.loads(marker.read_text())
            if done.get("key") == key:
                _log(f"warm-up: already trained on {len(self.warmup)} samples; loading it from {d0}")
                self._warm = self._saved_student(d0)
                return dict(done)
        write_samples(to_dataset(self.warmup), d0 / "warmup.jsonl")
        seed = c.round_seeds(0)["train"]
        _log(f"warm-up: finetuning the student ({c.train.method}, seed {seed}) on the first "
             f"{len(self.warmup)} pool samples")
        result = train_student(self.base_model, self.tokenizer, self.warmup, self.task, replace(c.train, seed=seed), d0)
        _log(f"warm-up: {result.steps} steps in {result.wall_s:.0f} s, loss "
             f"{result.losses[0] if result.losses else float('nan'):.3f} -> "
             f"{result.losses[-1] if result.losses else float('nan'):.3f}")
        self._warm = TransformersStudent(result.model, self.tokenizer, batch_size=self.base.batch_size,
                                         max_length=self.base.max_length)
        record = {"samples": len(self.warmup), "key": key, "train": result.metrics()}
        _write_json(marker, record)
        return record

    def _last_trained(self, last_done: int) -> int:
        """The latest finished round that trained a student (rounds that found no samples did not)."""
        for rec in reversed(self.records[: last_done + 1]):
            if rec.round == 0 or rec.new_samples > 0:
                return rec.round
        return 0

    def summary(self, stop: str | None, wall_s: float) -> RunSummary:
        c = self.config
        ids = [s.id for s in self.warmup + self.samples]
        before, after = self.records[0].accuracy, self.records[-1].accuracy
        generates = self.strategy.generates
        transfer = describe_transfer(c.generator.model, c.student.model, c.budget.samples) if generates else None
        return RunSummary(
            strategy=c.strategy,
            student=c.student.model,
            generator=c.generator.model if generates else None,
            transfer=transfer,
            data=c.data.name,
            budget=to_dict(c.budget),
            samples=len(self.samples),
            warmup=self.warmup_summary(),
            unique_ids=len(set(ids)) == len(ids),
            generated=sum(r.generated for r in self.records),
            teacher_tokens=sum(r.teacher_tokens for r in self.records),
            accuracy_before=before["accuracy"],
            accuracy_after=after["accuracy"],
            forgetting_before=self.records[0].forgetting or None,
            forgetting_after=self.forgetting_after or None,
            stop_reason=stop,
            wall_s_this_invocation=round(wall_s, 1),
            seeds=self.seeds_used(),
            rounds=list(self.records),
        )

    def warmup_summary(self) -> dict[str, Any] | None:
        """metrics.json's `warmup`: how many warm-up samples, the training seed and its losses; None
        without a warm start (metrics.json then has no such key)."""
        w = self.records[0].warmup if self.records else {}
        if not w:
            return None
        train = w.get("train") or {}
        return {"samples": w["samples"], "file": "round-00/warmup.jsonl", "seed": train.get("seed"),
                "steps": train.get("steps"), "loss_first": train.get("loss_first"), "loss_last": train.get("loss_last")}

    def seeds_used(self) -> dict[str, Any]:
        """Every seed the run used: the run's seed; per round that ran (1, 2, ...), the selection,
        generation and training seeds (`RunConfig.round_seeds`; train None for a round that did not
        train); where the training seed came from ("run": derived from the run's seed, "train.seed": set);
        and the evaluation seed (eval.seed: sampling at temperature > 0 and bootstrap intervals, fixed
        so that every cell is measured alike); with a warm start, last, the warm-up's training seed
        (`warmup`). A round recorded before rounds recorded their seeds gets them from the config, which
        resuming keeps equal to the one it ran with."""
        c = self.config
        rounds = []
        for rec in self.records[1:]:
            seeds = rec.seeds or {**c.round_seeds(rec.round), **({} if rec.new_samples else {"train": None})}
            rounds.append(seeds)
        used = {
            "run": c.seed,
            "selection": [s["selection"] for s in rounds],
            "generation": [s["generation"] for s in rounds],
            "train": [s["train"] for s in rounds],
            "train_from": "run" if c.train.seed is None else "train.seed",
            "eval": c.eval.seed,
        }
        warm = self.records[0].warmup if self.records else {}
        if warm:  # the warm-up's training seed, only with a warm start (the keys above stay as they were)
            used["warmup"] = (warm.get("train") or {}).get("seed")
        return used


def _fmt(acc: dict[str, Any]) -> str:
    a = acc.get("accuracy") or {}
    return f"{a.get('mean', float('nan')):.4f} [{a.get('lo', float('nan')):.4f}, {a.get('hi', float('nan')):.4f}]"


def run_job(config: RunConfig, run_dir: str | Path, progress: bool = True) -> RunSummary:
    """Run (or resume) `acqsynth run` with `config` in `run_dir`; return the summary written to metrics.json."""
    return Job(config, Path(run_dir), progress=progress).run()
