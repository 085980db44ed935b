"""Datasets in Sample form: the offline built-ins, and any user dataset through a field mapping.

`load_data(spec, split)` is the one entry point. `spec` is a built-in name (`gsm8k`, `mmlu`,
`mmlu:anatomy`, ...), a local `.jsonl`/`.json`/`.parquet`/`.csv`/`.tsv` file, a `datasets.save_to_disk` directory
(`dir` or `dir@split`), or a Hugging Face hub id (`owner/name[:config][@split]`, the only form that
contacts the hub). `split` is one of `seed`, `pool`, `eval` (disjoint, from `acqsynth.data.splits`)
or `all`. See docs/data.md.
"""

from __future__ import annotations

from pathlib import Path

import datasets

from acqsynth.data.builtin import BUILTINS, BuiltinDataset, builtin_split_counts, load_builtin
from acqsynth.data.external import FILE_SUFFIXES, read_source
from acqsynth.data.mapping import KNOWN_TASKS, rows_to_samples
from acqsynth.data.splits import SPLITS, assign_splits, check_split
from acqsynth.errors import AcqsynthError, unknown_name
from acqsynth.tasks import TASKS

__all__ = ["BUILTINS", "SPLITS", "BuiltinDataset", "list_builtins", "load_data", "split_counts"]


def list_builtins() -> list[BuiltinDataset]:
    """All built-in datasets, in a fixed order (math, multiple choice, code)."""
    return list(BUILTINS.values())


def builtin_name(spec: str) -> str | None:
    """The built-in `spec` names (`mmlu:anatomy` -> `mmlu`), or None when it names a path or hub id.

    A bare word that is neither a built-in nor an existing path is an unknown built-in name."""
    name = spec.partition(":")[0]
    if name in BUILTINS:
        return name
    looks_like_path = "/" in spec or "@" in spec or spec.lower().endswith(FILE_SUFFIXES) or Path(spec).exists()
    if not looks_like_path:
        err = unknown_name("dataset", name, BUILTINS)
        raise AcqsynthError(f"{err}. Or give a .jsonl/.json/.parquet/.csv/.tsv file, a save_to_disk directory or a hub id owner/name")
    return None


def load_data(
    spec: str,
    split: str = "all",
    mapping: dict[str, str] | None = None,
    task: str | None = None,
) -> datasets.Dataset:
    """Split `split` of dataset `spec` as a Sample-schema Dataset (user data may keep extra columns).

    `mapping` maps Sample fields to source columns for user data; `task` (math | mcqa | code | a
    user task) sets which fields are required and turns MCQ answers into letters.
    """
    check_split(split)
    name = builtin_name(spec)
    if name is not None:
        if mapping:
            raise AcqsynthError(f"built-in dataset {name!r} is already in Sample form; a mapping applies to user data only")
        builtin_task = BUILTINS[name].task
        family = _family(task) if task is not None else None
        if family in KNOWN_TASKS and family != _family(builtin_task):
            raise AcqsynthError(f"built-in dataset {name!r} is a {builtin_task} dataset; it cannot be used as task {task!r}")
        return load_builtin(spec, split)
    source = read_source(spec)
    ds = rows_to_samples(source.rows, source.columns, source.name, mapping, task, source=source.source)
    if split == "all":
        return ds
    return ds.select(assign_splits(ds["id"][:])[split])


def _family(task: str) -> str:
    """The built-in family of a built-in task name (`math-answer` is math), else the name."""
    return str(getattr(TASKS.get(task), "kind", task))


def split_counts(spec: str) -> dict[str, int]:
    """Rows in each split (`seed`, `pool`, `eval`, `all`) of a dataset; cached in-process for built-ins."""
    if builtin_name(spec) is not None:
        return dict(builtin_split_counts(spec))
    ids = load_data(spec)["id"][:]
    return {k: len(v) for k, v in assign_splits(ids).items()}
