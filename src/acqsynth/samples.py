"""The Sample record shared by every task, and its lossless I/O through datasets, JSONL and Parquet.

A Sample is one problem: a question, an optional worked reasoning, a reference answer, and the
task-specific parts (choices for multiple choice, tests and an entry point for code). Between stages
samples travel as a `datasets.Dataset` whose columns are `SAMPLE_COLUMNS` plus any extra columns a
stage adds (scores, predictions, verdicts); those extra columns are kept by every reader and writer.

In Arrow-backed forms (Dataset, Parquet) `metadata` is stored as a JSON string so that rows with
different metadata keys keep exactly their own keys; in JSONL it is a plain object.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq

from acqsynth.errors import AcqsynthError

SAMPLE_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "question": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "reasoning": datasets.Value("string"),
        "choices": datasets.List(datasets.Value("string")),
        "tests": datasets.Value("string"),
        "entry_point": datasets.Value("string"),
        "source": datasets.Value("string"),
        "metadata": datasets.Value("string"),
    }
)
SAMPLE_COLUMNS: tuple[str, ...] = tuple(SAMPLE_FEATURES)
REQUIRED_COLUMNS: tuple[str, ...] = ("id", "question", "answer")


@dataclass
class Sample:
    """One problem in the form every task, acquisition function and generator shares."""

    id: str
    """Stable identifier, unique within a dataset (e.g. `gsm8k/test/17`)."""
    question: str
    """The problem statement shown to the student (without the choices of an MCQ)."""
    answer: str
    """Reference answer: a number or expression (math), a letter (MCQ), a reference solution (code)."""
    reasoning: str | None = None
    """Worked solution leading to the answer, if known."""
    choices: list[str] | None = None
    """Option texts of a multiple-choice question, in letter order A, B, C, ..."""
    tests: str | None = None
    """Python test code for a code problem; it calls `check(candidate)` or asserts on `entry_point`."""
    entry_point: str | None = None
    """Name of the function a code solution must define."""
    source: str = ""
    """Where the sample came from: a dataset name, a generator, a file."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Anything else worth keeping (original fields, difficulty, labeller agreement, ...)."""

    def to_row(self) -> dict[str, Any]:
        """The Arrow row form: metadata as a JSON string."""
        row = asdict(self)
        row["metadata"] = json.dumps(self.metadata, ensure_ascii=False, sort_keys=True)
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any], where: str = "row") -> Sample:
        """Build a Sample from a row in either form (metadata as dict or JSON string); extra keys are ignored."""
        missing = [c for c in REQUIRED_COLUMNS if row.get(c) is None]
        if missing:
            raise AcqsynthError(f"{where}: missing required field(s) {', '.join(missing)}")
        meta = parse_metadata(row.get("metadata"), where)
        choices = row.get("choices")
        if choices is not None and not isinstance(choices, list | tuple):
            raise AcqsynthError(f"{where}: field 'choices' must be a list of strings")
        kwargs: dict[str, Any] = {f.name: row.get(f.name) for f in fields(cls) if f.name not in ("metadata", "choices")}
        for name in ("id", "question", "answer"):
            kwargs[name] = str(kwargs[name])
        kwargs["source"] = kwargs.get("source") or ""
        return cls(**kwargs, choices=[str(c) for c in choices] if choices is not None else None, metadata=meta)


def parse_metadata(value: Any, where: str) -> dict[str, Any]:
    """The metadata field as a dict: accepts a dict, a JSON object string, or nothing."""
    if value is None or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise AcqsynthError(f"{where}: field 'metadata' is not valid JSON ({e})") from None
    if not isinstance(value, dict):
        raise AcqsynthError(f"{where}: field 'metadata' must be an object, got {type(value).__name__}")
    return dict(value)


def to_dataset(samples: Iterable[Sample]) -> datasets.Dataset:
    """A Dataset with the Sample schema (an empty iterable gives an empty Dataset with that schema)."""
    return rows_to_dataset([s.to_row() for s in samples])


def iter_samples(ds: datasets.Dataset) -> Iterator[Sample]:
    """The rows of a Sample-schema Dataset as Samples (extra columns are not part of a Sample)."""
    for i, row in enumerate(ds):
        yield Sample.from_row(row, where=f"row {i}")


def _normalise_row(row: dict[str, Any], where: str) -> dict[str, Any]:
    """A row from a file in Arrow form, validated, with extra columns kept as they are."""
    sample = Sample.from_row(row, where=where)
    out = sample.to_row()
    out.update({k: v for k, v in row.items() if k not in SAMPLE_FEATURES})
    return out


def decode_utf8(raw: bytes, where: str, first: bool = True) -> str:
    """`raw` as text (a UTF-8 byte-order mark at the start of a file is dropped); invalid UTF-8 is an
    error naming `where` and the byte."""
    try:
        return raw.decode("utf-8-sig" if first else "utf-8")
    except UnicodeDecodeError as e:
        raise AcqsynthError(f"{where}: not valid UTF-8 (byte {raw[e.start]:#04x} at position {e.start} of the line); "
                            "save the file as UTF-8") from None


def parse_json(text: str, where: str) -> Any:
    """`json.loads` whose every failure is an error naming `where`: malformed JSON, nesting too deep,
    an integer too long to convert, or a lone UTF-16 surrogate escape (which cannot be stored)."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        line = f":{e.lineno}" if e.lineno > 1 else ""
        raise AcqsynthError(f"{where}{line}: malformed JSON ({e.msg} at column {e.colno})") from None
    except (ValueError, RecursionError) as e:
        raise AcqsynthError(f"{where}: unusable JSON ({type(e).__name__}: {e})") from None
    if "\\u" in text and not _encodable(obj):
        raise AcqsynthError(f"{where}: holds a \\u escape of a lone UTF-16 surrogate, which is not valid text")
    return obj


def _encodable(obj: Any) -> bool:
    """Whether every string in `obj` (keys included) can be written as UTF-8."""
    try:
        json.dumps(obj, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_jsonl_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """Parse a JSONL file into (line number, object) pairs; a malformed line raises an error naming file and line."""
    path = Path(path)
    if not path.exists():
        raise AcqsynthError(f"{path}: no such file")
    rows = []
    try:
        with path.open("rb") as f:
            for lineno, raw in enumerate(f, start=1):
                line = decode_utf8(raw, f"{path}:{lineno}", first=lineno == 1)
                if not line.strip():
                    continue
                obj = parse_json(line.rstrip("\r\n"), f"{path}:{lineno}")
                if not isinstance(obj, dict):
                    raise AcqsynthError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
                rows.append((lineno, obj))
    except OSError as e:
        raise AcqsynthError(f"{path}: cannot be read ({e.strerror or e})") from None
    return rows


def read_samples(path: str | Path, allow_empty: bool = False) -> datasets.Dataset:
    """Read Samples (plus any extra columns) from a `.jsonl`/`.json` or `.parquet` file, validated row by row."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = [_normalise_row(r, where=f"{path}:{n}") for n, r in read_jsonl_rows(path)]
    elif suffix == ".parquet":
        if not path.exists():
            raise AcqsynthError(f"{path}: no such file")
        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises many types for a corrupt file
            raise AcqsynthError(f"{path}: cannot read Parquet ({e})") from None
        rows = [_normalise_row(r, where=f"{path}: row {i}") for i, r in enumerate(table.to_pylist())]
    else:
        raise AcqsynthError(f"{path}: unsupported file type {suffix!r}; use .jsonl or .parquet")
    if not rows and not allow_empty:
        raise AcqsynthError(f"{path}: the file holds no samples")
    try:
        return rows_to_dataset(rows)
    except AcqsynthError as e:  # an extra column of mixed types: name the file it is in
        raise AcqsynthError(f"{path}: {e}") from None


def rows_to_dataset(rows: list[dict[str, Any]]) -> datasets.Dataset:
    """A Dataset from Arrow-form rows: Sample columns keep their declared types, extra columns are inferred."""
    if not rows:
        return datasets.Dataset.from_dict({k: [] for k in SAMPLE_COLUMNS}, features=SAMPLE_FEATURES)
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in SAMPLE_FEATURES))
    ds = datasets.Dataset.from_list([{k: r.get(k) for k in SAMPLE_COLUMNS} for r in rows], features=SAMPLE_FEATURES)
    for k in extra:
        values = [r.get(k) for r in rows]
        try:
            ds = ds.add_column(k, values)
        except (pa.ArrowException, TypeError, ValueError, OverflowError) as e:
            kinds = ", ".join(dict.fromkeys(type(v).__name__ for v in values if v is not None))
            raise AcqsynthError(
                f"extra column {k!r} cannot be stored: its values ({kinds}) do not share one type ({e}); "
                "give it one type, or pass a mapping so that extra columns go into metadata"
            ) from None
    return ds


def write_samples(ds: datasets.Dataset, path: str | Path) -> Path:
    """Write a Dataset (Sample columns plus extras) to `.jsonl` or `.parquet`, atomically: a crash leaves no partial file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".json", ".parquet"):
        raise AcqsynthError(f"{path}: unsupported file type {suffix!r}; use .jsonl or .parquet")
    if suffix == ".parquet":
        with atomic_file(path) as tmp:
            pq.write_table(ds.with_format("arrow")[:], tmp)
        return path
    write_jsonl_atomic((_jsonl_form(row) for row in ds), path)
    return path


def _jsonl_form(row: dict[str, Any]) -> dict[str, Any]:
    """A row as written to JSONL: metadata as a plain object, not a JSON string."""
    out = dict(row)
    if "metadata" in out and isinstance(out["metadata"], str):
        out["metadata"] = json.loads(out["metadata"]) if out["metadata"] else {}
    return out


WRITE_ERRNOS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EFBIG: "the file is too large for this file system (or the file-size limit)",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EISDIR: "a directory of that name is in the way",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.ENAMETOOLONG: "the file name is too long",
}
"""Write failures that are the user's environment, not a bug: reported as an AcqsynthError."""


def write_error(path: Path, error: OSError) -> AcqsynthError:
    """A clear error for a failed write of `path` that says whether an earlier copy is still there."""
    why = WRITE_ERRNOS.get(error.errno or 0, error.strerror or str(error))
    try:
        kept = "the earlier file is intact" if path.is_file() else "nothing was written"
    except OSError:  # the path itself cannot be looked at (a name too long)
        kept = "nothing was written"
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        fix = "free some space or choose another output"
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose another output or fix its permissions"
    else:
        fix = "choose another output"
    return AcqsynthError(f"{path}: cannot write: {why}; {kept} ({fix})")


def _file_mode() -> int:
    """0666 minus the process umask: the mode `open()` would give a new file.

    Read from /proc (setting and restoring the umask would race with other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            mask = next(int(line.split()[1], 8) for line in f if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        mask = 0o022
    return 0o666 & ~mask


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary path beside `path`, renamed over it when the block succeeds and removed when it
    fails: a crash or an error leaves the old file (or none), never a partial one.

    A full disk, a quota, a read-only file system or a permission problem becomes an AcqsynthError
    naming `path` (the earlier file, if any, is untouched)."""
    tmp: str | None = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except FileExistsError:  # a file where a directory should be
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path.parent)) from None
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        yield Path(tmp)
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600; results should be as readable as any file
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno in WRITE_ERRNOS:
            raise write_error(path, e) from e
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through `atomic_file`, fsynced: the old file survives a failed write."""
    path = Path(path)
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return path


def write_jsonl_atomic(rows: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """Write JSON objects one per line, fsynced, through `atomic_file`."""
    path = Path(path)
    with atomic_file(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return path
