"""Transfer (AcquisitionSynthesis §4): a generator trained with GRPO against student A writes data for
student B, or a generator trained in a low-resource setting (few prompts) serves a larger budget.

Transfer needs no special machinery: point `generator.model` of any strategy at the trained
generator's directory. This module reads the provenance `acqsynth grpo` saves beside the generator
and states what kind of transfer a run is, so the report says it and results are not mixed up.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from acqsynth.strategies.grpo import PROVENANCE_FILE


def generator_provenance(generator: str) -> dict[str, Any] | None:
    """What a trained generator was trained against, or None for an untrained one (or no such file)."""
    path = Path(generator) / PROVENANCE_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def describe_transfer(generator: str, student: str, samples: int) -> dict[str, Any] | None:
    """The transfer setting of a run: `student` (this run's student) against the generator's own
    training student, and this run's sample budget against the generator's training prompts."""
    prov = generator_provenance(generator)
    if prov is None:
        return None
    return {
        **prov,
        "cross_student": prov["student"] != student,
        "this_student": student,
        "budget_samples": samples,
        "budget_over_training_prompts": round(samples / prov["prompts"], 3) if prov.get("prompts") else None,
    }
