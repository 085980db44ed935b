"""Read rows of user data: a local `.jsonl`/`.json`/`.parquet`/`.csv`/`.tsv` file, a `save_to_disk` directory, or a
Hugging Face hub dataset (the only path that may contact the hub, and only when a hub id is named).

Spec forms: `path/to/file.jsonl`, `path/to/dir[@split]`, `owner/name[:config][@split]`. Each row
comes with where it is (`file.jsonl:12`, `file.parquet: row 3`, `file.csv:4`) so errors can point at
it. CSV and TSV cells are text (a header row names the columns; an empty cell is an empty string);
multiple-choice options in several columns are mapped with `choices: "opa,opb,opc,opd"`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import pyarrow.parquet as pq

from acqsynth.data.mapping import Row
from acqsynth.errors import AcqsynthError
from acqsynth.samples import parse_json, read_jsonl_rows

FILE_SUFFIXES = (".jsonl", ".json", ".parquet", ".csv", ".tsv")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class SourceRows:
    """The rows of one user dataset and its column names (in first-seen order)."""

    name: str
    """Where it came from, for error messages: the path or hub id as given."""
    rows: list[Row]
    columns: list[str]
    source: str
    """The default `source` of its Samples: the file or directory name, or the hub id."""


def _columns(rows: list[Row]) -> list[str]:
    """Union of the rows' keys in first-seen order."""
    return list(dict.fromkeys(k for _, r in rows for k in r))


def read_file(path: Path) -> SourceRows:
    """Rows of a `.jsonl` (or `.json`: JSON Lines or one JSON array of objects), `.parquet`, `.csv` or
    `.tsv` file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises many types for a corrupt file
            raise AcqsynthError(f"{path}: cannot read Parquet ({e})") from None
        rows = [(f"{path}: row {i}", r) for i, r in enumerate(table.to_pylist())]
        return SourceRows(str(path), rows, list(table.column_names), path.name)
    if suffix in (".csv", ".tsv"):
        rows, columns = _read_delimited(path, "\t" if suffix == ".tsv" else ",")
        return SourceRows(str(path), rows, columns, path.name)
    if suffix == ".json" and _file_text(path).lstrip().startswith("["):
        rows = _read_json_array(path)
    elif suffix in (".jsonl", ".json"):
        rows = [(f"{path}:{n}", r) for n, r in read_jsonl_rows(path)]
    else:
        raise AcqsynthError(f"{path}: unsupported file type {suffix!r}; use .jsonl, .json, .parquet, .csv or .tsv")
    return SourceRows(str(path), rows, _columns(rows), path.name)


def _file_text(path: Path) -> str:
    """The text of a `.json`, `.csv` or `.tsv` file; unreadable or non-UTF-8 content is an error naming the file and line."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AcqsynthError(f"{path}: cannot be read ({e.strerror or e})") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise AcqsynthError(f"{path}:{line}: not valid UTF-8 (byte {raw[e.start]:#04x}); save the file as UTF-8") from None


def _read_delimited(path: Path, delimiter: str) -> tuple[list[Row], list[str]]:
    """Rows of a CSV/TSV file with a header row; each row is located by its first line number."""
    reader = csv.reader(io.StringIO(_file_text(path), newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise AcqsynthError(f"{path}: no header row (the first line must name the columns)")
        header = [h.strip() for h in header]
        for i, name in enumerate(header):
            if not name:
                raise AcqsynthError(f"{path}:1: column {i + 1} of the header has no name")
            if name in header[:i]:
                raise AcqsynthError(f"{path}:1: column name {name!r} appears twice in the header")
        rows: list[Row] = []
        line = reader.line_num + 1
        for cells in reader:
            if cells and len(cells) != len(header):
                raise AcqsynthError(
                    f"{path}:{line}: {len(cells)} cells but the header names {len(header)} columns "
                    "(a cell holding the delimiter, a quote or a line break must be quoted)"
                )
            if cells:
                rows.append((f"{path}:{line}", dict(zip(header, cells, strict=True))))
            line = reader.line_num + 1
    except csv.Error as e:
        raise AcqsynthError(f"{path}:{reader.line_num}: not valid {'TSV' if delimiter == chr(9) else 'CSV'} ({e})") from None
    return rows, header


def _read_json_array(path: Path) -> list[Row]:
    """Rows of a file holding one JSON array of objects."""
    items = parse_json(_file_text(path), str(path))
    rows = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise AcqsynthError(f"{path}: item {i} is not a JSON object (got {type(item).__name__})")
        rows.append((f"{path}: item {i}", item))
    return rows


def _pick_split(obj: Any, split: str | None, name: str) -> datasets.Dataset:
    """One Dataset out of a Dataset or DatasetDict: `split`, else `train`, else the only split."""
    if isinstance(obj, datasets.Dataset):
        if split:
            raise AcqsynthError(f"{name}: holds a single split, so '@{split}' does not apply")
        return obj
    if not isinstance(obj, datasets.DatasetDict):
        raise AcqsynthError(f"{name}: expected a dataset, got {type(obj).__name__}")
    names = list(obj)
    if split is None:
        if "train" in obj or len(names) == 1:
            return obj["train" if "train" in obj else names[0]]
        raise AcqsynthError(f"{name}: holds splits {', '.join(names)}; choose one with '{name}@<split>'")
    if split not in obj:
        raise AcqsynthError(f"{name}: no split {split!r}; it has {', '.join(names)}")
    return obj[split]


def _dataset_rows(ds: datasets.Dataset, name: str, source: str) -> SourceRows:
    """Rows of an in-memory Dataset (row numbers are 0-based)."""
    rows = [(f"{name}: row {i}", r) for i, r in enumerate(ds.to_list())]
    return SourceRows(name, rows, list(ds.column_names), source)


def read_disk(path: Path, split: str | None) -> SourceRows:
    """Rows of a `datasets.save_to_disk` directory (a Dataset, or one split of a DatasetDict)."""
    try:
        obj = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as e:
        raise AcqsynthError(f"{path}: not a datasets.save_to_disk directory ({e})") from None
    return _dataset_rows(_pick_split(obj, split, str(path)), str(path), path.name)


def parse_hub_spec(spec: str) -> tuple[str, str | None, str | None] | None:
    """`owner/name[:config][@split]` -> (hub id, config, split); None if `spec` is not of that form."""
    base, _, split = spec.partition("@")
    hub_id, _, config = base.partition(":")
    if not _HUB_ID.match(hub_id) or hub_id.lower().endswith(FILE_SUFFIXES):
        return None
    return hub_id, config or None, split or None


def read_hub(hub_id: str, config: str | None, split: str | None) -> SourceRows:
    """Rows of a Hugging Face hub dataset (this is the one call that touches the hub)."""
    name = hub_id + (f":{config}" if config else "")
    try:
        obj = datasets.load_dataset(hub_id, config, split=split)
    except Exception as e:  # the hub client raises many types (network, auth, missing config)
        raise AcqsynthError(f"cannot load {name!r} from the Hugging Face hub: {e}") from None
    return _dataset_rows(_pick_split(obj, None, name), name, name)


def read_source(spec: str) -> SourceRows:
    """Rows of the user dataset named by `spec`: an existing local path first, else a hub id."""
    path = Path(spec).expanduser()
    if path.is_file():
        return read_file(path)
    if path.is_dir():
        return read_disk(path, None)
    base, _, split = spec.rpartition("@")
    if base and Path(base).expanduser().is_dir():
        return read_disk(Path(base).expanduser(), split)
    hub = parse_hub_spec(spec)
    if hub is None or spec.startswith((".", "/", "~")):
        raise AcqsynthError(f"{spec}: no such file or directory")
    return read_hub(*hub)
