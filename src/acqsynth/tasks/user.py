"""Tasks users define without editing the package: a YAML file (a built-in base + prompt and parsing
options) or a Python file exposing a module-level `TASK` object that satisfies the Task protocol."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from acqsynth.config import safe_load_yaml
from acqsynth.errors import AcqsynthError
from acqsynth.tasks.base import Task
from acqsynth.tasks.code import CodeTask
from acqsynth.tasks.exact import ExactTask
from acqsynth.tasks.math import MathTask
from acqsynth.tasks.mcqa import MCQATask
from acqsynth.userfile import import_user_file

BASES: dict[str, type] = {"math": MathTask, "mcqa": MCQATask, "code": CodeTask, "exact": ExactTask}
YAML_FIELDS = ("name", "base", "description", "system", "instruction", "answer_pattern", "normalize")
NORMALIZE_OPTIONS = ("lowercase", "strip_punctuation")
_REQUIRED_SLOTS = {
    "math": ("question",),
    "mcqa": ("question", "choices"),
    "code": ("question",),
    "exact": ("question",),
}
_PROTOCOL_MEMBERS = ("name", "prompt", "target", "extract", "grade")


def load_yaml_task(path: str | Path) -> Task:
    """Build a task from a YAML file; every problem is reported with the file and the field at fault."""
    path = Path(path)
    if not path.is_file():
        raise AcqsynthError(f"{path}: no such task file")
    try:
        spec = safe_load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise AcqsynthError(f"{path}: not valid YAML ({e})") from None
    if not isinstance(spec, dict):
        raise AcqsynthError(f"{path}: expected a mapping of fields ({', '.join(YAML_FIELDS)})")
    unknown = sorted(set(spec) - set(YAML_FIELDS))
    if unknown:
        raise AcqsynthError(f"{path}: unknown field {unknown[0]!r}; valid fields: {', '.join(YAML_FIELDS)}")

    def text_field(key: str, required: bool = False) -> str | None:
        value = spec.get(key)
        if value is None:
            if required:
                raise AcqsynthError(f"{path}: field {key!r} is required")
            return None
        if not isinstance(value, str) or not value.strip():
            raise AcqsynthError(f"{path}: field {key!r} must be a non-empty string")
        return value

    name = text_field("name", required=True)
    base = text_field("base", required=True)
    assert name is not None and base is not None
    if base not in BASES:
        raise AcqsynthError(f"{path}: field 'base' is {base!r}; valid bases: {', '.join(sorted(BASES))}")
    text_field("description")
    kwargs: dict[str, Any] = {"name": name}
    system = text_field("system")
    if system is not None:
        kwargs["system"] = system
    instruction = text_field("instruction")
    if instruction is not None:
        missing = [s for s in _REQUIRED_SLOTS[base] if "{" + s + "}" not in instruction]
        if missing:
            slots = ", ".join("{" + s + "}" for s in missing)
            raise AcqsynthError(f"{path}: field 'instruction' must contain {slots} for base {base!r}")
        kwargs["instruction"] = instruction
    pattern = text_field("answer_pattern")
    if pattern is not None:
        kwargs["answer_pattern"] = pattern
    norm = spec.get("normalize")
    if norm is not None:
        if base != "exact":
            raise AcqsynthError(
                f"{path}: field 'normalize' applies to base 'exact' only (base {base!r} has its own normalisation)"
            )
        if not isinstance(norm, dict):
            raise AcqsynthError(
                f"{path}: field 'normalize' must be a mapping of {', '.join(NORMALIZE_OPTIONS)}"
            )
        for key, value in norm.items():
            if key not in NORMALIZE_OPTIONS:
                raise AcqsynthError(
                    f"{path}: field 'normalize.{key}' is unknown; valid options: {', '.join(NORMALIZE_OPTIONS)}"
                )
            if not isinstance(value, bool):
                raise AcqsynthError(f"{path}: field 'normalize.{key}' must be true or false")
            kwargs[key] = value
    try:
        return BASES[base](**kwargs)
    except AcqsynthError as e:
        field = "answer_pattern" if "answer_pattern" in str(e) else "instruction"
        raise AcqsynthError(f"{path}: field {field!r}: {e}") from None


def load_python_task(path: str | Path) -> Task:
    """Import a `.py` file by path and return its module-level `TASK` (checked against the protocol)."""
    path = Path(path).resolve()
    module = import_user_file(path, "task")
    task = getattr(module, "TASK", None)
    if task is None:
        raise AcqsynthError(f"{path}: defines no module-level TASK object")
    missing = [m for m in _PROTOCOL_MEMBERS if not hasattr(task, m)]
    if missing or not isinstance(task, Task):
        raise AcqsynthError(f"{path}: TASK does not satisfy the Task protocol; missing: {', '.join(missing)}")
    not_callable = [m for m in _PROTOCOL_MEMBERS[1:] if not callable(getattr(task, m))]
    if not_callable or not isinstance(task.name, str):
        bad = not_callable or ["name (must be a string)"]
        raise AcqsynthError(f"{path}: TASK does not satisfy the Task protocol; bad: {', '.join(bad)}")
    return task
