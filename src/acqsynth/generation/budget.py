"""Budget accounting: what generation cost per model, and whether a limit leaves room for more.

Limits are checked *before* work is requested, against the worst case, so a run stops exactly at a
budget and never over it: a batch of generator calls is only sent if every completion in it could
reach `max_new_tokens` and the token budget would still hold.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import Completion


@dataclass
class Budget:
    """Limits on one generation run; None means unlimited."""

    accepted: int
    """Samples to deliver: the run stops as soon as this many are accepted."""
    generated: int | None = None
    """Most generator completions to request (accepted or not)."""
    tokens: int | None = None
    """Most completion tokens (generator and answer model together) to request."""

    def __post_init__(self) -> None:
        if self.accepted < 1:
            raise AcqsynthError(f"budget: the number of samples must be >= 1, got {self.accepted}")
        for name in ("generated", "tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise AcqsynthError(f"budget: {name} must be >= 1 or unset, got {value}")


@dataclass
class ModelUsage:
    """What one model cost in a run."""

    calls: int = 0
    """Completions produced (cached ones included)."""
    cached: int = 0
    """Of those, completions that came from the cache."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    fresh_completion_tokens: int = 0
    """Completion tokens generated in this run (not from the cache)."""
    seconds: float = 0.0
    """Wall time spent generating the fresh completions."""

    def tokens_per_s(self) -> float:
        """Fresh completion tokens per second of generation wall time."""
        return self.fresh_completion_tokens / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Ledger:
    """Running totals of a run, per model, plus the sample counts."""

    budget: Budget
    generated: int = 0
    """Generator completions consumed (counted whether accepted or rejected)."""
    accepted: int = 0
    rejected: int = 0
    usage: dict[str, ModelUsage] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def record(
        self, model: str, completions: Sequence[Completion], seconds: float, fresh: Sequence[bool]
    ) -> None:
        """Add a batch of completions of `model`; `fresh[i]` says completion i was generated now (not cached)."""
        u = self.usage.setdefault(model, ModelUsage())
        u.calls += len(completions)
        u.cached += sum(not f for f in fresh)
        u.prompt_tokens += sum(c.prompt_tokens for c in completions)
        u.completion_tokens += sum(c.completion_tokens for c in completions)
        u.fresh_completion_tokens += sum(c.completion_tokens for c, f in zip(completions, fresh, strict=True) if f)
        u.seconds += seconds

    @property
    def tokens(self) -> int:
        """Completion tokens of every model so far."""
        return sum(u.completion_tokens for u in self.usage.values())

    def room(self, completions: int, worst_tokens: int) -> int:
        """How many of `completions` more generator completions the budget can still pay for, when
        each may cost up to `worst_tokens` completion tokens (its own plus any labelling)."""
        n = completions
        if self.budget.generated is not None:
            n = min(n, self.budget.generated - self.generated)
        if self.budget.tokens is not None:
            n = min(n, (self.budget.tokens - self.tokens) // max(1, worst_tokens))
        return max(0, n)

    def tokens_left(self) -> int | None:
        return None if self.budget.tokens is None else self.budget.tokens - self.tokens

    def done(self) -> bool:
        return self.accepted >= self.budget.accepted

    def to_dict(self) -> dict[str, Any]:
        wall = time.perf_counter() - self.started
        return {
            "budget": asdict(self.budget),
            "generated": self.generated,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "acceptance_rate": self.accepted / self.generated if self.generated else 0.0,
            "completion_tokens": self.tokens,
            "wall_s": round(wall, 3),
            "models": {
                name: {**asdict(u), "seconds": round(u.seconds, 3), "tokens_per_s": round(u.tokens_per_s(), 2)}
                for name, u in self.usage.items()
            },
        }
