"""`acqsynth generate` as a library call: load what a generation run names, run it, and return its statistics."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from acqsynth.errors import AcqsynthError
from acqsynth.generation.pipeline import GenerateConfig, GenerationRun, generate_samples
from acqsynth.generation.setup import prepare_generation
from acqsynth.models.loader import check_grammar_backend
from acqsynth.samples import atomic_write_text


@dataclass
class GenerateJob:
    """Which models make samples from which seeds, checked against what, written where."""

    output: str
    """Output directory (samples.jsonl, rejected.jsonl, stats.json, config.json)."""
    generator: str = "smollm2-135m-instruct"
    """Alias, checkpoint dir, .gguf, llamacpp:ALIAS, openai:URL@MODEL or hub id; an alias runs via
    transformers, llamacpp:ALIAS about 4x faster on CPU."""
    task: str | None = None
    """math, mcqa, code or a task file (None = the dataset's task)."""
    data: str | None = None
    """Dataset whose seed split gives the examples (None = by task: gsm8k, medmcqa, mbpp)."""
    seeds: int | None = None
    """Use the first N seed examples (None = all)."""
    answer_model: str | None = None
    """Model that answers for self-consistency labelling (same spec forms as the generator)."""
    template: str | None = None
    """Your own prompt template file (slots {question} {reasoning} {answer} {choices} {tests}); None = the
    task's."""
    decontaminate: list[str] | None = None
    """Evaluation sets to decontaminate against, as DATA[@SPLIT] (None = the seed dataset's eval split)."""
    embedder: str = "minilm-l6"
    """Sentence embedder for near-duplicate checks and answer clustering."""
    embedding_hygiene: bool = True
    """The near-duplicate and contamination checks by embedding (the hash and n-gram checks always run;
    without the embedding ones no embedder is loaded)."""
    cache: str | None = None
    """Completion cache directory (None = OUTPUT/cache); share it between runs to reuse completions."""
    threads: int | None = None
    """CPU threads for the models (llama.cpp n_threads / torch); None = the backend's default."""
    config: GenerateConfig = field(default_factory=GenerateConfig)
    """What the run produces: budget, sampling, labelling, hygiene thresholds."""

    def __post_init__(self) -> None:
        if self.config.grammar:
            check_grammar_backend(self.generator, "--grammar")
        if self.config.label.method == "self-consistency" and not self.answer_model:
            raise AcqsynthError("--label self-consistency needs --answer-model (e.g. --answer-model smollm2-135m-instruct)")


def run_generate(job: GenerateJob, progress: bool = True) -> dict[str, Any]:
    """Load the models and data the job names, generate, and return the run's statistics (also in stats.json)."""
    config = job.config
    embedder: str | None = job.embedder
    if not job.embedding_hygiene:
        config = replace(config, hygiene=replace(config.hygiene, embedding_threshold=None, decontam_embedding_threshold=None))
        embedder = None
    out = Path(job.output)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare_generation(
        generator=job.generator, cache_dir=Path(job.cache) if job.cache else out / "cache", task=job.task,
        data=job.data, n_seeds=job.seeds, hygiene=config.hygiene, label=config.label, answer_model=job.answer_model,
        embedder=embedder, decontaminate=job.decontaminate, template=job.template, threads=job.threads,
    )
    bar = tqdm(total=config.num_samples, desc="accepted", unit="sample", disable=not progress, dynamic_ncols=True)

    def show(run: GenerationRun) -> None:
        led = run.ledger
        assert led is not None
        bar.n = led.accepted
        fresh = sum(u.fresh_completion_tokens for u in led.usage.values())
        secs = sum(u.seconds for u in led.usage.values())
        left = [f"gen {led.budget.generated - led.generated}"] if led.budget.generated else []
        if led.budget.tokens:
            left.append(f"tok {led.budget.tokens - led.tokens}")
        bar.set_postfix_str(
            f"rejected {led.rejected}, cached {sum(u.cached for u in led.usage.values())}, "
            f"{fresh / secs if secs else 0:.0f} tok/s, left: {', '.join(left) or '-'}"
        )
        bar.refresh()

    atomic_write_text(out / "config.json", json.dumps({
        "generator": job.generator, "answer_model": job.answer_model, "task": setup.task_name, "data": setup.data,
        "seeds": len(setup.seeds), "embedder": embedder, "decontaminate": [e.name for e in setup.evals],
        "template": job.template, "config": dataclasses.asdict(config)}, indent=2) + "\n")
    try:
        run = generate_samples(
            seeds=setup.seeds, task=setup.task, generator=setup.generator, config=config, output=out,
            prompt_builder=setup.prompt_builder, answer_model=setup.answer_model, embedder=setup.embedder,
            seed_pool=setup.seed_pool, evals=setup.evals, progress=show,
        )
    finally:
        bar.close()
        setup.close()
    stats: dict[str, Any] = json.loads((out / "stats.json").read_text())
    gen, ans = setup.generator, setup.answer_model
    stats["cache"] = {"generator_hits": gen.hits, "generator_misses": gen.misses,
                      **({"answer_hits": ans.hits, "answer_misses": ans.misses} if ans is not None else {})}
    stats["accepted_ids_unique"] = len({s.id for s in run.accepted}) == len(run.accepted)
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n")  # never half a file
    return stats
