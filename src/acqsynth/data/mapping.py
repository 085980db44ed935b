"""Turn rows of any dataset into Samples: map Sample fields to source columns and normalise values.

`mapping` says which source column fills which Sample field (`{"question": "problem"}`); a field not
in the mapping is read from the column of the same name if there is one. Extras:
- `choices` may name several columns (`"opa,opb,opc,opd"`), or one column holding a list (or an HF
  `{"text": [...], "label": [...]}` dict);
- for multiple choice, `answer` may be a letter, a 0-based index or the text of one of the choices;
  it always comes out as an upper-case letter;
- `tests` may be a list of strings (joined with newlines); numbers become text;
- an absent `id` column gives ids derived from a hash of question and answer (stable under reordering).

Columns that no field uses are kept as extra columns when no mapping is given (a file already in
Sample form, maybe with scores added by a stage), and folded into `metadata` when one is given (so a
foreign dataset's other fields are not lost).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import datasets

from acqsynth.errors import AcqsynthError, unknown_name
from acqsynth.samples import SAMPLE_COLUMNS, Sample, parse_metadata, rows_to_dataset

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
KNOWN_TASKS = ("math", "mcqa", "code")
Row = tuple[str, dict[str, Any]]
"""A source row and where it is (`file.jsonl:12`, `file.parquet: row 3`), for error messages."""


def index_letter(index: int, n_choices: int, where: str = "answer") -> str:
    """The letter of a 0-based choice index ("A" for 0), checked against the number of choices."""
    if not 0 <= index < min(n_choices, len(LETTERS)):
        raise AcqsynthError(f"{where}: answer index {index} is out of range for {n_choices} choices")
    return LETTERS[index]


def resolve_mapping(
    mapping: dict[str, str] | None, columns: Sequence[str], name: str, task: str | None
) -> dict[str, list[str]]:
    """Sample field -> the source column(s) that fill it, checked against the source's `columns`."""
    mapping = dict(mapping or {})
    available = ", ".join(columns) or "(none)"
    for field, column in mapping.items():
        if field not in SAMPLE_COLUMNS:
            raise AcqsynthError(f"{name}: mapping: {unknown_name('Sample field', field, SAMPLE_COLUMNS)}")
        if not isinstance(column, str) or not column.strip():
            raise AcqsynthError(f"{name}: mapping for field {field!r} must be a column name, got {column!r}")
    fields: dict[str, list[str]] = {}
    for field in SAMPLE_COLUMNS:
        if field in mapping:
            cols = [c.strip() for c in mapping[field].split(",")] if field == "choices" else [mapping[field]]
            for col in cols:
                if col not in columns:
                    raise AcqsynthError(
                        f"{name}: mapping {field}={mapping[field]!r} names column {col!r}, which does not exist; "
                        f"available columns: {available}"
                    )
            fields[field] = cols
        elif field in columns:
            fields[field] = [field]
    needed = ["question", "answer"] + {"mcqa": ["choices"], "code": ["tests"]}.get(task or "", [])
    for field in needed:
        if field not in fields:
            why = f" (task {task!r} needs it)" if field not in ("question", "answer") else ""
            raise AcqsynthError(
                f"{name}: no column for required field {field!r}{why}; available columns: {available}. "
                f"Map one with mapping={{{field!r}: '<column>'}} (CLI: --map {field}=<column>)"
            )
    return fields


def _text(value: Any, field: str, where: str) -> str | None:
    """A text field's value as a string (numbers become text); None stays None."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, bool | int | float):
        return str(value)
    raise AcqsynthError(f"{where}: field {field!r} must be text or a number, got {type(value).__name__}")


def _choices(value: Any, columns: list[str], where: str) -> list[str] | None:
    """Option texts from one list-valued column or from several columns (trailing empty ones dropped)."""
    if len(columns) > 1:
        values = list(value)
        while values and values[-1] in (None, ""):
            values.pop()
        for col, v in zip(columns, values, strict=False):
            if v is None:
                raise AcqsynthError(f"{where}: choice column {col!r} is empty")
        return [_text(v, "choices", where) or "" for v in values]
    if value is None:
        return None
    if isinstance(value, dict) and "text" in value:
        value = value["text"]
    if isinstance(value, str) and value.lstrip().startswith("["):
        with contextlib.suppress(json.JSONDecodeError):
            value = json.loads(value)
    if not isinstance(value, list | tuple):
        raise AcqsynthError(
            f"{where}: field 'choices' (column {columns[0]!r}) must be a list, got {type(value).__name__}; "
            "to build it from several columns map choices to 'col1,col2,...'"
        )
    if any(v is None for v in value):
        raise AcqsynthError(f"{where}: field 'choices' (column {columns[0]!r}) holds an empty option")
    return [_text(v, "choices", where) or "" for v in value]


def mcq_letter(value: Any, choices: list[str], where: str) -> str:
    """An MCQ answer as a letter: from a letter in range, a 0-based index or the text of one of the choices
    (in that order of precedence); a text of digits that is no option's text is an index (CSV cells are text)."""
    n = len(choices)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return index_letter(value, n, where)
    text = str(value).strip()
    if len(text) == 1 and text.upper() in LETTERS[:n]:
        return text.upper()
    if text in choices:
        return LETTERS[choices.index(text)]
    if text.isascii() and text.isdigit():
        return index_letter(int(text), n, where)
    raise AcqsynthError(
        f"{where}: answer {text!r} is not a letter A-{LETTERS[min(n, 26) - 1]}, a 0-based index "
        "or the text of one of the choices"
    )


def _jsonable(value: Any) -> Any:
    """`value` if it survives JSON, else its string form (metadata must be JSON)."""
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def _required(value: Any, field: str, fields: dict[str, list[str]], where: str) -> str:
    """A required text field's value; an error naming the field and its column if it is empty."""
    text = _text(value, field, where)
    if text is None or not text.strip():
        col = fields[field][0] if field in fields else field
        raise AcqsynthError(f"{where}: missing required field {field!r} (column {col!r})")
    return text


def _answer(value: Any, choices: list[str] | None, task: str | None, fields: dict[str, list[str]], where: str) -> str:
    """The reference answer; for multiple choice (task `mcqa`, or choices present) always a letter."""
    mcq = task == "mcqa" or (task is None and choices is not None)
    if not mcq:
        return _required(value, "answer", fields, where)
    if choices is None or len(choices) < 2:
        raise AcqsynthError(f"{where}: a multiple-choice question needs at least 2 choices, got {choices or []}")
    if isinstance(value, str) or value is None:
        _required(value, "answer", fields, where)
    return mcq_letter(value, choices, where)


def _tests(value: Any, task: str | None, fields: dict[str, list[str]], where: str) -> str | None:
    """Test code as one string (a list of asserts is joined by newlines); required for task `code`."""
    if isinstance(value, list | tuple):
        value = "\n".join(str(t) for t in value)
    if task == "code":
        return _required(value, "tests", fields, where)
    return _text(value, "tests", where)


def map_row(
    row: dict[str, Any], fields: dict[str, list[str]], where: str, task: str | None, source: str, fold: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """One source row as (Arrow-form Sample row, extra columns); the id is "" when it must be derived."""

    def get(field: str) -> Any:
        cols = fields.get(field)
        if not cols:
            return None
        return [row.get(c) for c in cols] if len(cols) > 1 else row.get(cols[0])

    choices = _choices(get("choices"), fields["choices"], where) if "choices" in fields else None
    metadata = parse_metadata(get("metadata"), where)
    used = {c for cols in fields.values() for c in cols}
    extras = {k: v for k, v in row.items() if k not in used}
    if fold:
        for k, v in extras.items():
            metadata.setdefault(k, _jsonable(v))
        extras = {}
    sample = Sample(
        id=_required(get("id"), "id", fields, where) if "id" in fields else "",
        question=_required(get("question"), "question", fields, where),
        answer=_answer(get("answer"), choices, task, fields, where),
        reasoning=_text(get("reasoning"), "reasoning", where),
        choices=choices,
        tests=_tests(get("tests"), task, fields, where),
        entry_point=_text(get("entry_point"), "entry_point", where),
        source=_text(get("source"), "source", where) or source,
        metadata=metadata,
    )
    return sample.to_row(), extras


def derived_id(question: str, answer: str) -> str:
    """An id for a row that has none: a hash of its question and answer, so it survives reordering."""
    return hashlib.sha256(f"{question}\x1f{answer}".encode()).hexdigest()[:16]


def rows_to_samples(
    rows: Sequence[Row],
    columns: Sequence[str],
    name: str,
    mapping: dict[str, str] | None = None,
    task: str | None = None,
    source: str | None = None,
) -> datasets.Dataset:
    """A Sample-schema Dataset from source rows; every problem raises one error naming row and field."""
    if not rows:
        raise AcqsynthError(f"{name}: the dataset holds no samples")
    fields = resolve_mapping(mapping, columns, name, task)
    out, extras = [], []
    seen: dict[str, str] = {}
    for where, row in rows:
        sample_row, extra = map_row(row, fields, where, task, source or name, fold=mapping is not None)
        if not sample_row["id"]:
            sample_row["id"] = _unique(derived_id(sample_row["question"], sample_row["answer"]), seen)
        elif sample_row["id"] in seen:
            raise AcqsynthError(f"{where}: duplicate id {sample_row['id']!r} (first at {seen[sample_row['id']]})")
        seen[sample_row["id"]] = where
        out.append(sample_row)
        extras.append(extra)
    extra_keys = list(dict.fromkeys(k for e in extras for k in e))
    for sample_row, extra in zip(out, extras, strict=True):
        sample_row.update({k: extra.get(k) for k in extra_keys})
    try:
        return rows_to_dataset(out)
    except AcqsynthError as e:  # an extra column of mixed types: name the dataset it is in
        raise AcqsynthError(f"{name}: {e}") from None


def _unique(base: str, seen: dict[str, str]) -> str:
    """`base`, or `base-2`, `base-3`, ... for repeated rows (same question and answer)."""
    candidate, k = base, 1
    while candidate in seen:
        k += 1
        candidate = f"{base}-{k}"
    return candidate
