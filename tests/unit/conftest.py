"""Fixtures shared by the unit tests of `acqsynth run`."""

from __future__ import annotations

from typing import Any

import pytest

from acqsynth.run import job as job_module
from acqsynth.samples import Sample


@pytest.fixture
def trainings(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ids each `train_student` call of the job trained on, in call order."""
    calls: list[list[str]] = []
    real = job_module.train_student

    def counting(base: Any, tok: Any, samples: list[Sample], *a: Any, **kw: Any) -> Any:
        calls.append([s.id for s in samples])
        return real(base, tok, samples, *a, **kw)

    monkeypatch.setattr(job_module, "train_student", counting)
    return calls
