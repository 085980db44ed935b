"""Which rows of which dataset a command reads: a split, its first N rows, the task and a field mapping."""

from __future__ import annotations

from dataclasses import dataclass

import datasets

from acqsynth.data import load_data


@dataclass
class DataRequest:
    """The rows `acqsynth eval` evaluates and `acqsynth data show` prints."""

    name: str
    """Built-in name (mmlu:SUBJECT), .jsonl/.parquet file or HF dataset id."""
    split: str = "eval"
    """seed, pool, eval or all."""
    n: int | None = None
    """Rows: the first N of the split (None = all)."""
    task: str | None = None
    """Task of data that is not built in: math, mcqa, code or a task .yaml/.py file (None = the built-in
    dataset's own task)."""
    mapping: dict[str, str] | None = None
    """Field mapping for data not in Sample form: FIELD=COLUMN (e.g. question=prompt answer=target)."""

    def load(self) -> datasets.Dataset:
        """The whole split as Samples (`head` takes its first `n` rows)."""
        return load_data(self.name, split=self.split, mapping=self.mapping, task=self.task)

    def head(self, ds: datasets.Dataset) -> datasets.Dataset:
        """The first `n` rows of `ds` (all of them when `n` is None)."""
        return ds if self.n is None else ds.select(range(min(self.n, len(ds))))
