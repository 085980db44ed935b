"""Everything a generation run loads before its first request: task, seeds, models, caches, hygiene
indexes. Shared by `acqsynth generate` and the strategies of `acqsynth run`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from acqsynth.data import BUILTINS, load_data
from acqsynth.errors import AcqsynthError
from acqsynth.generation.cache import CachedGenerator, CompletionCache
from acqsynth.generation.hygiene import HygieneConfig, HygieneIndex
from acqsynth.generation.labelling import LabelConfig
from acqsynth.generation.pipeline import load_seeds
from acqsynth.generation.prompts import PromptBuilder, template_kind
from acqsynth.models.embedder import LazyEmbedder
from acqsynth.models.interfaces import Embedder, Generator
from acqsynth.models.loader import load_generator_with_threads
from acqsynth.samples import Sample
from acqsynth.tasks import get_task
from acqsynth.tasks.base import Task, task_kind

DEFAULT_DATA = {"math": "gsm8k", "mcqa": "medmcqa", "code": "mbpp"}
"""The seed dataset of a task when none is named."""


@dataclass
class GenerationSetup:
    """The loaded pieces of a generation run (close it to flush the caches)."""

    task: Task
    task_name: str
    data: str
    seeds: list[Sample]
    generator: CachedGenerator
    prompt_builder: PromptBuilder
    seed_pool: HygieneIndex
    evals: list[HygieneIndex]
    answer_model: CachedGenerator | None = None
    embedder: Embedder | None = None
    _caches: list[CompletionCache] = field(default_factory=list, repr=False)

    def close(self) -> None:
        for c in self._caches:
            c.close()


def builtin_task_name(data: str, option: str = "task") -> str:
    """The task of a built-in dataset spec (`mmlu:anatomy` → mcqa), or an error asking for `option`
    (the setting or flag that names a task where it is used)."""
    name = data.split(":", 1)[0]
    if name not in BUILTINS:
        raise AcqsynthError(
            f"{option} is required for {data!r} (it is not a built-in dataset); choose math, mcqa, code or a task file"
        )
    return BUILTINS[name].task


def prepare_generation(
    *,
    generator: str | Generator,
    cache_dir: str | Path,
    task: str | None = None,
    data: str | None = None,
    n_seeds: int | None = None,
    hygiene: HygieneConfig | None = None,
    label: LabelConfig | None = None,
    answer_model: str | Generator | None = None,
    embedder: str | Embedder | None = "minilm-l6",
    decontaminate: Sequence[str] | None = None,
    template: str | None = None,
    threads: int | None = None,
) -> GenerationSetup:
    """Load what a generation run names. `decontaminate` lists `DATA[@SPLIT]` evaluation sets
    (default: the seed dataset's own eval split); a model may be given loaded or as a spec."""
    if task is None and data is None:
        raise AcqsynthError("give a task or a dataset (e.g. task math, or data gsm8k)")
    hygiene = hygiene or HygieneConfig()
    label = label or LabelConfig()
    task_name = task or builtin_task_name(str(data))
    task_obj = get_task(task_name)
    data = data or DEFAULT_DATA.get(task_obj.name)
    if data is None:
        raise AcqsynthError(f"a dataset is required for task {task_name!r}: the seed examples come from it")
    seeds = load_seeds(load_data(data, split="seed", task=task), n_seeds)
    if not seeds:
        raise AcqsynthError(f"dataset {data!r} has no rows in its seed split")
    emb = LazyEmbedder(embedder) if isinstance(embedder, str) else embedder
    seed_pool = HygieneIndex(f"seed:{data}", hygiene, emb)
    seed_pool.add([s.id for s in seeds], [s.question for s in seeds])
    evals = []
    for spec in decontaminate if decontaminate is not None else [f"{data}@eval"]:
        name, _, split = spec.rpartition("@") if "@" in spec else (spec, "", "eval")
        ev = load_data(name, split=split or "eval")
        index = HygieneIndex(f"eval:{name}@{split or 'eval'}", hygiene, emb)
        index.add(ev["id"][:], ev["question"][:])
        evals.append(index)
    cache_dir = Path(cache_dir)
    gen_cache = CompletionCache(cache_dir / "generator.jsonl")
    caches = [gen_cache]
    inner = load_generator_with_threads(generator, threads) if isinstance(generator, str) else generator
    ans = None
    if label.method == "self-consistency":
        if answer_model is None:
            raise AcqsynthError("self-consistency labelling needs an answer model (e.g. smollm2-135m-instruct)")
        if answer_model == generator:
            ans_inner = inner
        elif isinstance(answer_model, str):
            ans_inner = load_generator_with_threads(answer_model, threads)
        else:
            ans_inner = answer_model
        ans_cache = CompletionCache(cache_dir / "answer_model.jsonl")
        caches.append(ans_cache)
        ans = CachedGenerator(ans_inner, ans_cache)
    return GenerationSetup(
        task=task_obj,
        task_name=task_name,
        data=data,
        seeds=seeds,
        generator=CachedGenerator(inner, gen_cache),
        prompt_builder=PromptBuilder(template_kind(task_kind(task_obj)), template),
        seed_pool=seed_pool,
        evals=evals,
        answer_model=ans,
        embedder=emb,
        _caches=caches,
    )
