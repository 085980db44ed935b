"""What a run records: one `RoundRecord` per round (round.json) and the `RunSummary` of the whole
run (metrics.json, the report)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


@dataclass
class RoundRecord:
    """What one round did (round 0 is the evaluation before any training)."""

    round: int
    new_samples: int
    total_samples: int
    generated: int = 0
    teacher_tokens: int = 0
    accuracy: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    stop_reason: str | None = None
    wall_s: float = 0.0
    forgetting: dict[str, Any] = field(default_factory=dict)
    seeds: dict[str, Any] = field(default_factory=dict)
    """The seeds the round used (`RunConfig.round_seeds`; train None when it did not train); empty in
    rounds recorded before seeds were."""
    warmup: dict[str, Any] = field(default_factory=dict)
    """Round 0 with a warm start (`data.warmup`): the warm-up's sample count, key (what decides the
    warmed student) and training metrics; empty otherwise, and then not written."""

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        if not self.warmup:  # round.json and metrics.json without a warm start stay as they always were
            del out["warmup"]
        return out


@dataclass(kw_only=True)
class RunSummary:
    """The outcome of a run, as metrics.json holds it (its keys in this order)."""

    strategy: str
    """The config's `strategy`."""
    student: str
    """The student model spec."""
    generator: str | None
    """The generator model spec; None for a strategy that trains on real pool samples."""
    transfer: dict[str, Any] | None = None
    """What the generator was trained against with GRPO (`strategies.transfer.describe_transfer`); None
    for an untrained generator."""
    data: str
    """The dataset."""
    budget: dict[str, Any]
    """The config's `budget`."""
    samples: int
    """Training samples made (the warm-up samples not counted)."""
    warmup: dict[str, Any] | None = None
    """With a warm start (`data.warmup`): the warm-up samples (count, file), the training seed and
    losses; None, and left out of metrics.json, without one."""
    unique_ids: bool
    """Whether every training sample's id is unique (the warm-up samples included)."""
    generated: int
    """Generator completions spent, rejected ones included."""
    teacher_tokens: int
    """Generator and answer-model completion tokens spent."""
    accuracy_before: dict[str, Any]
    """The untrained student's accuracy (mean, lo, hi, n: a bootstrap interval over evaluation items)."""
    accuracy_after: dict[str, Any]
    """The final student's accuracy."""
    forgetting_before: dict[str, Any] | None = None
    """The untrained student on the forgetting suite; None when it is off."""
    forgetting_after: dict[str, Any] | None = None
    """The final student on the forgetting suite; None when it is off."""
    stop_reason: str | None = None
    """Why the run stopped before its last round (a budget, no samples), or None."""
    wall_s_this_invocation: float
    """Seconds this invocation took (a resumed run counts only its own)."""
    seeds: dict[str, Any] = field(default_factory=dict)
    """Every seed the run used (`Job.seeds_used`)."""
    rounds: list[RoundRecord]
    """Every round, round 0 first."""

    def to_dict(self) -> dict[str, Any]:
        """The summary as metrics.json holds it."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if self.warmup is None:  # without a warm start, the keys metrics.json always had
            del out["warmup"]
        out["rounds"] = [r.to_dict() for r in self.rounds]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunSummary:
        """A summary read back from metrics.json (keys it does not know are left out)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["rounds"] = [RoundRecord(**r) for r in data["rounds"]]
        return cls(**values)
