"""Import a user's Python file by path (their own task, acquisition function or generator)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from acqsynth.errors import AcqsynthError


def import_user_file(path: str | Path, what: str) -> ModuleType:
    """The module in `path`, registered in `sys.modules` (dataclasses look their module up there).

    `what` names the kind of file in error messages ("task", "generator", ...)."""
    path = Path(path).resolve()
    if not path.is_file():
        raise AcqsynthError(f"{path}: no such {what} file")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"acqsynth_user_{what}_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise AcqsynthError(f"{path}: cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise AcqsynthError(f"{path}: importing the {what} file failed: {type(e).__name__}: {e}") from e
    return module
