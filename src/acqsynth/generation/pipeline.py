"""The generation pipeline: seed prompts → completions → parse → hygiene → label → accepted samples.

Every attempt `a` (0, 1, 2, ...) is one generator request, built from a seed picked by `a` alone
and sampled with seed index `a`; its labelling request uses the same index. Together with the
completion cache this makes a run *replayable*: rerunning the same command after a crash replays
the finished attempts from the cache at no model cost and continues where it stopped, and the final
output equals an uninterrupted run's. Output files are rewritten atomically after every batch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets

from acqsynth.errors import AcqsynthError, check_range
from acqsynth.generation.budget import Budget, Ledger
from acqsynth.generation.cache import CachedGenerator
from acqsynth.generation.hygiene import HygieneConfig, HygieneIndex, deduplicate_and_decontaminate
from acqsynth.generation.labelling import (
    LabelConfig,
    label_compute,
    label_execution,
    label_keep,
    label_self_consistency,
)
from acqsynth.generation.parsing import format_reward, parse_completion
from acqsynth.generation.prompts import PromptBuilder
from acqsynth.models.interfaces import Completion, Embedder, GenerationParams
from acqsynth.models.sampling import refuse_grammar
from acqsynth.samples import Sample, atomic_file, iter_samples, to_dataset, write_jsonl_atomic, write_samples
from acqsynth.tasks.base import Task, task_kind


@dataclass
class GenerateConfig:
    """Everything that decides what a generation run produces (saved beside its outputs)."""

    num_samples: int = 50
    """Accepted samples to deliver."""
    max_generated: int | None = None
    """Budget: most generator completions to request (default: 20 × num_samples)."""
    max_tokens: int | None = None
    """Budget: most completion tokens (generator + answer model) to request; None = unlimited."""
    batch_size: int = 8
    """Generator requests per batch (output files and progress update after each batch)."""
    max_new_tokens: int = 384
    """Length limit of one generated sample."""
    temperature: float = 0.8
    """Generator sampling temperature."""
    top_p: float = 0.95
    """Generator nucleus sampling."""
    seed: int = 0
    """Root seed: which seed example each attempt shows, and every sampled token."""
    max_chars: int = 8000
    """Completions longer than this are rejected as over-long."""
    n_choices: int | None = None
    """Multiple choice: required number of options (None: at least 2)."""
    grammar: bool = False
    """Constrain decoding to the template's tagged format with a GBNF grammar (llama.cpp backend only):
    no completion can break the format, so a weak generator spends no calls on it."""
    label: LabelConfig = field(default_factory=LabelConfig)
    """How answers are labelled."""
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)
    """Duplicate and contamination thresholds."""

    def __post_init__(self) -> None:
        if self.num_samples < 1:
            raise AcqsynthError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.batch_size < 1:
            raise AcqsynthError(f"batch_size must be >= 1, got {self.batch_size}")
        check_range("max_generated", self.max_generated, 1)
        check_range("max_tokens", self.max_tokens, 1)
        check_range("max_new_tokens", self.max_new_tokens, 1)
        check_range("temperature", self.temperature, 0)
        check_range("top_p", self.top_p, 0, 1, low_open=True)
        check_range("max_chars", self.max_chars, 1)
        check_range("n_choices", self.n_choices, 2)

    def budget(self) -> Budget:
        generated = self.max_generated if self.max_generated is not None else 20 * self.num_samples
        return Budget(accepted=self.num_samples, generated=generated, tokens=self.max_tokens)

    def params(self, stop: list[str] | None = None, grammar: str | None = None) -> GenerationParams:
        return GenerationParams(
            max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p, n=1, seed=self.seed,
            stop=stop, grammar=grammar,
        )


@dataclass
class Outputs:
    """Where a run writes: accepted samples, rejections with raw completions, statistics."""

    directory: Path

    @property
    def samples(self) -> Path:
        return self.directory / "samples.jsonl"

    @property
    def rejected(self) -> Path:
        return self.directory / "rejected.jsonl"

    @property
    def stats(self) -> Path:
        return self.directory / "stats.json"


def seed_order(n_seeds: int, attempt: int, seed: int) -> int:
    """The seed shown in attempt `attempt`: a fresh shuffle of all seeds per pass, fixed by `seed`."""
    epoch, pos = divmod(attempt, n_seeds)
    order = list(range(n_seeds))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order[pos]


@dataclass
class GenerationRun:
    """The state of one run: what was accepted and rejected, and the ledger."""

    config: GenerateConfig
    accepted: list[Sample] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    agreements: list[float] = field(default_factory=list)
    ledger: Ledger | None = None

    def reasons(self) -> dict[str, int]:
        """Rejection counts by reason category (the text before any ':' detail)."""
        return dict(Counter(r["category"] for r in self.rejected).most_common())


def reason_category(reason: str) -> str:
    """A rejection reason without its details (quoted text, numbers, anything after ':' or '('),
    so that reasons can be counted: "answer 'D' is not among the choices" → "answer … is not among the choices"."""
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "…", reason)
    if text.startswith(("self-consistency", "execution", "compute")):
        stage, _, rest = text.partition(": ")
        return f"{stage}: {re.split(r'[0-9(]', rest, maxsplit=1)[0].strip()}"
    return re.split(r"[:(]", text, maxsplit=1)[0].strip()


def generate_samples(
    *,
    seeds: Sequence[Sample],
    task: Task,
    generator: CachedGenerator,
    config: GenerateConfig,
    output: Path,
    prompt_builder: PromptBuilder,
    answer_model: CachedGenerator | None = None,
    embedder: Embedder | None = None,
    seed_pool: HygieneIndex | None = None,
    evals: Sequence[HygieneIndex] = (),
    earlier: Sequence[Sample] = (),
    progress: Callable[[GenerationRun], None] | None = None,
) -> GenerationRun:
    """Generate until `config.num_samples` are accepted or a budget is spent; write the outputs.

    A budget that runs out first ends the run early: the files hold what was accepted and
    `stats.json` says which limit stopped it (`stop_reason`). `earlier` are samples accepted before
    (earlier rounds of a loop): new samples that duplicate them are removed like in-run duplicates.
    """
    if not seeds:
        raise AcqsynthError("no seed samples to condition the generator on")
    if config.label.method == "self-consistency" and answer_model is None:
        raise AcqsynthError("self-consistency labelling needs an answer model")
    out = Outputs(Path(output))
    out.directory.mkdir(parents=True, exist_ok=True)
    budget = config.budget()
    run = GenerationRun(config=config, ledger=Ledger(budget))
    ledger = run.ledger
    assert ledger is not None
    accepted_index = HygieneIndex("accepted", config.hygiene, embedder)
    accepted_index.add([s.id for s in earlier], [s.question for s in earlier])
    grammar = None
    if config.grammar:
        counts = {len(s.choices) for s in seeds if s.choices}
        n_choices = config.n_choices or (counts.pop() if len(counts) == 1 else None)
        grammar = prompt_builder.grammar(n_choices)
    params = config.params(prompt_builder.stop, grammar)
    if not getattr(generator.inner, "supports_grammar", False):
        refuse_grammar(generator.name, params)
    worst = config.max_new_tokens + config.label.worst_tokens()
    attempt, stop_reason = 0, "done"
    while not ledger.done():
        need = budget.accepted - ledger.accepted
        rate = ledger.accepted / ledger.generated if ledger.generated else 1.0
        want = min(config.batch_size, max(1, math.ceil(need / max(rate, 0.1))))
        n = ledger.room(want, worst)
        if n == 0:
            stop_reason = "budget: generated" if budget.generated and ledger.generated >= budget.generated else "budget: tokens"
            break
        index = list(range(attempt, attempt + n))
        seed_rows = [seeds[seed_order(len(seeds), a, config.seed)] for a in index]
        prompts = [prompt_builder(s) for s in seed_rows]
        t0 = time.perf_counter()
        completions = [c[0] for c in generator.generate(prompts, params, seed_index=index)]
        completions = [dataclasses.replace(c, text=prompt_builder.complete(c.text, c.finish_reason)) for c in completions]
        fresh = generator.last_fresh
        ledger.record(f"generator {generator.name}", completions, time.perf_counter() - t0 if any(fresh) else 0.0, fresh)
        ledger.generated += n
        attempt += n
        _process_batch(run, index, seed_rows, completions, generator.name, prompt_builder, task, answer_model, embedder, seed_pool, evals, accepted_index)
        _write(run, out, stop_reason="running")
        if progress:
            progress(run)
    if ledger.done():
        stop_reason = "done"
    _write(run, out, stop_reason=stop_reason)
    return run


def _reject(run: GenerationRun, attempt: int, seed: Sample, completion: Completion, stage: str, reason: str,
            sample: Sample | None = None, nearest: dict[str, Any] | None = None, category: str | None = None) -> None:
    run.rejected.append({
        "attempt": attempt,
        "seed_id": seed.id,
        "stage": stage,
        "reason": reason,
        "category": category or reason_category(reason),
        "completion": completion.text,
        "finish_reason": completion.finish_reason,
        "format_reward": format_reward(completion.text),
        **({"question": sample.question, "answer": sample.answer} if sample else {}),
        **({"nearest": nearest} if nearest else {}),
    })
    assert run.ledger is not None
    run.ledger.rejected += 1


def _process_batch(
    run: GenerationRun,
    index: list[int],
    seed_rows: list[Sample],
    completions: list[Completion],
    generator_name: str,
    prompt_builder: PromptBuilder,
    task: Task,
    answer_model: CachedGenerator | None,
    embedder: Embedder | None,
    seed_pool: HygieneIndex | None,
    evals: Sequence[HygieneIndex],
    accepted_index: HygieneIndex,
) -> None:
    cfg = run.config
    ledger = run.ledger
    assert ledger is not None
    # 1. parse
    parsed: list[tuple[int, Sample, Sample, Completion]] = []  # (attempt, seed, sample, completion)
    for a, seed, comp in zip(index, seed_rows, completions, strict=True):
        if comp.finish_reason == "error":
            _reject(run, a, seed, comp, "generate", "generator error")
            continue
        p = parse_completion(comp.text, task=task_kind(task), source=f"generated:{generator_name}",
                             max_chars=cfg.max_chars, n_choices=cfg.n_choices)
        if p.sample is None:
            reason = str(p.reason)
            if comp.finish_reason == "length" and reason.startswith(("unclosed tag", "missing tag")):
                reason = f"cut off at max_new_tokens: {reason}"  # not the model's mistake, the limit's
            _reject(run, a, seed, comp, "parse", reason)
            continue
        copied = prompt_builder.copied_placeholder(p.sample)
        if copied:
            _reject(run, a, seed, comp, "parse", f"field <{copied}> copies the template's placeholder", p.sample)
            continue
        meta = {"seed_id": seed.id, "attempt": a, "generator": generator_name, "format_reward": format_reward(comp.text),
                "finish_reason": comp.finish_reason}
        s = p.sample
        s.metadata = meta
        parsed.append((a, seed, s, comp))
    # 2. hygiene: contamination, then duplicates of the seed pool, earlier batches and this batch
    texts = [s.question for _, _, s, _ in parsed]
    emb = embedder.encode(texts) if (texts and embedder is not None and accepted_index.uses_embeddings) else None
    clean, removals = deduplicate_and_decontaminate(
        texts, [s.id for _, _, s, _ in parsed], seed_pool=seed_pool, evals=evals, config=cfg.hygiene,
        embedder=embedder, accepted=accepted_index, embeddings=emb,
    )
    for r in removals:
        a, seed, s, comp = parsed[r.index]
        category = "contaminated" if r.reason.startswith("contaminated") else "duplicate"
        _reject(run, a, seed, comp, "hygiene", r.reason, s, {"index": r.against, **asdict(r.hit)},
                f"{category} ({r.against})")
    # 3. label
    todo = [parsed[i] for i in clean]
    if cfg.label.method == "self-consistency":
        assert answer_model is not None
        t0 = time.perf_counter()
        labelled, answers = label_self_consistency(
            [s for _, _, s, _ in todo], [a for a, _, _, _ in todo], task, answer_model, cfg.label,
            seed=cfg.seed, embedder=embedder,
        )
        flat = [c for cs in answers for c in cs]
        fresh = [f for f, cs in zip(answer_model.last_fresh if todo else [], answers, strict=True) for _ in cs]
        ledger.record(f"answer model {answer_model.name}", flat, time.perf_counter() - t0 if any(fresh) else 0.0, fresh)
    elif cfg.label.method == "execution":
        labelled = label_execution([s for _, _, s, _ in todo], task)
    elif cfg.label.method == "compute":
        labelled = label_compute([s for _, _, s, _ in todo], task)
    else:
        labelled = label_keep([s for _, _, s, _ in todo])
    # 4. accept in attempt order until the target is met
    for (a, seed, s, comp), lab, i in zip(todo, labelled, clean, strict=True):
        if ledger.done():
            _reject(run, a, seed, comp, "budget", "not needed: the target number of samples was reached", s,
                    category="not needed")
            ledger.rejected -= 1  # generated and counted, but not a rejection of the sample's quality
            continue
        if lab.sample is None:
            _reject(run, a, seed, comp, "label", str(lab.reason), s)
            continue
        accepted_index.add([lab.sample.id], [s.question], None if emb is None else emb[i : i + 1])
        run.accepted.append(lab.sample)
        if lab.sample.metadata.get("label_method") == "self-consistency":
            run.agreements.append(float(lab.sample.metadata["label_agreement"]))
        ledger.accepted += 1


def _write(run: GenerationRun, out: Outputs, stop_reason: str) -> None:
    write_samples(to_dataset(run.accepted), out.samples)
    write_jsonl_atomic(run.rejected, out.rejected)
    stats = summarise(run, stop_reason)
    with atomic_file(out.stats) as tmp:
        tmp.write_text(json.dumps(stats, indent=2, ensure_ascii=False) + "\n")


def summarise(run: GenerationRun, stop_reason: str) -> dict[str, Any]:
    """The statistics of a run, as written to `stats.json`."""
    assert run.ledger is not None
    ag = run.agreements
    hygiene = Counter(r["category"] for r in run.rejected if r["stage"] == "hygiene")
    return {
        "stop_reason": stop_reason,
        **run.ledger.to_dict(),
        "rejection_reasons": run.reasons(),
        "rejections_by_stage": dict(Counter(r["stage"] for r in run.rejected)),
        "hygiene_removed": dict(hygiene),
        "label": {
            "method": run.config.label.method,
            "agreement_mean": round(sum(ag) / len(ag), 4) if ag else None,
            "agreement_min": min(ag) if ag else None,
            "generator_agrees": sum(bool(s.metadata.get("generator_agrees")) for s in run.accepted),
        },
        "config": asdict(run.config),
    }


def load_seeds(ds: datasets.Dataset, n: int | None) -> list[Sample]:
    """The first `n` rows of a seed split as Samples (all when n is None)."""
    if n is not None:
        ds = ds.select(range(min(n, len(ds))))
    return list(iter_samples(ds))
