"""Verifiable tasks: built-ins by name, or user tasks from a `.yaml` / `.py` file (see docs/tasks.md)."""

from __future__ import annotations

from pathlib import Path

from acqsynth.errors import unknown_name
from acqsynth.tasks.base import Messages, Task, Verdict, task_kind
from acqsynth.tasks.code import CodeTask
from acqsynth.tasks.exact import ExactTask
from acqsynth.tasks.math import MathAnswerTask, MathTask
from acqsynth.tasks.mcqa import MCQATask
from acqsynth.tasks.user import load_python_task, load_yaml_task

TASKS: dict[str, type] = {"math": MathTask, "math-answer": MathAnswerTask, "mcqa": MCQATask, "code": CodeTask, "exact": ExactTask}
"""Built-in task classes by name; each constructs with no arguments."""


def get_task(name_or_path: str | Path) -> Task:
    """A task from a built-in name (`math`, `math-answer`, `mcqa`, `code`, `exact`), a `.yaml`/`.yml` file or a `.py` file."""
    key = str(name_or_path)
    suffix = Path(key).suffix.lower()
    if suffix in (".yaml", ".yml"):
        return load_yaml_task(key)
    if suffix == ".py":
        return load_python_task(key)
    if key in TASKS:
        return TASKS[key]()
    err = unknown_name("task", key, TASKS)
    raise type(err)(f"{err} (or give the path of a .yaml or .py task file)")


__all__ = [
    "TASKS",
    "CodeTask",
    "ExactTask",
    "MCQATask",
    "MathAnswerTask",
    "MathTask",
    "Messages",
    "Task",
    "Verdict",
    "get_task",
    "load_python_task",
    "load_yaml_task",
    "task_kind",
]
