"""An on-disk cache of converted datasets, written atomically (temp directory, then rename).

Why: converting a built-in means parsing tens of MB of gzipped oe-eval requests; the converted
Dataset loads back memory-mapped in milliseconds. Two processes converting at once both succeed:
the first rename wins and the loser's copy is discarded.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import datasets

from acqsynth.paths import cache_dir


def data_cache_dir() -> Path:
    """`<acqsynth cache>/data`, created if needed."""
    path = cache_dir() / "data"
    path.mkdir(parents=True, exist_ok=True)
    return path


def cached_dataset(path: Path, build: Callable[[], datasets.Dataset]) -> datasets.Dataset:
    """The Dataset saved at `path`, building and saving it first if it is missing or unreadable."""
    if path.exists():
        try:
            return datasets.load_from_disk(str(path))
        except (OSError, ValueError, FileNotFoundError):
            shutil.rmtree(path, ignore_errors=True)
    ds = build()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        _save_quietly(ds, tmp)
        try:
            tmp.rename(path)
        except OSError:  # another process finished first: use theirs
            if not path.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return datasets.load_from_disk(str(path))


def _save_quietly(ds: datasets.Dataset, path: Path) -> None:
    """`save_to_disk` without its progress bar (restoring the caller's progress-bar setting)."""
    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        ds.save_to_disk(str(path))
    finally:
        if not was_disabled:
            datasets.utils.enable_progress_bars()
