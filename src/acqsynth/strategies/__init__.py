"""Strategies: how `acqsynth run` makes a round's training data, one module each (docs/strategies.md).

`STRATEGIES` maps each config name to its `Strategy`: `random` (real pool samples, the baseline),
`static` (one-shot generation, no student feedback), `rejection` (oversample from the generator,
keep the candidates the student values most), `active` (the student picks the seeds the generator
writes from, round after round), `mistakes` (the generator sees the student's wrong answers) and
`filtered` (the top of the real pool by acquisition) and `filtered-active` (the same in rounds, the
retrained student rescoring the rest of the pool). `get_strategy("my.py:Mine")` loads a user's
own from a file. `acqsynth.run.job` runs the rounds, trains and evaluates around them.

Beside them, `grpo` trains a generator against a frozen student (`acqsynth grpo`) and `transfer`
describes a run whose generator was trained so.
"""

from __future__ import annotations

from acqsynth.errors import AcqsynthError, suggest
from acqsynth.strategies.active import Active
from acqsynth.strategies.base import GenerationBudget, RoundContext, RoundResult, Strategy, protocol_gaps
from acqsynth.strategies.filtered import Filtered, FilteredActive
from acqsynth.strategies.mistakes import Mistakes
from acqsynth.strategies.random_real import RandomReal
from acqsynth.strategies.rejection import Rejection
from acqsynth.strategies.static import Static
from acqsynth.userfile import import_user_file

STRATEGIES: dict[str, Strategy] = {
    "active": Active(),
    "static": Static(),
    "rejection": Rejection(),
    "random": RandomReal(),
    "mistakes": Mistakes(),
    "filtered": Filtered(),
    "filtered-active": FilteredActive(),
}
"""Built-in strategies by config name."""


def get_strategy(spec: str) -> Strategy:
    """The strategy a config's `strategy` names: a built-in one, or `FILE.py:NAME`, a user's class
    (built with no arguments) or object in a Python file."""
    if spec in STRATEGIES:
        return STRATEGIES[spec]
    if ".py:" in spec:
        return _load_user(spec)
    raise AcqsynthError(f"strategy {spec!r} is unknown{suggest(spec, STRATEGIES)}; choose one of "
                        f"{', '.join(STRATEGIES)}, or give your own as FILE.py:NAME")


def _load_user(spec: str) -> Strategy:
    path, attr = spec.rsplit(":", 1)
    module = import_user_file(path, "strategy")
    if not hasattr(module, attr):
        raise AcqsynthError(f"strategy {spec}: {path} defines no {attr!r}")
    obj = getattr(module, attr)
    if isinstance(obj, type):
        try:
            obj = obj()
        except TypeError as e:
            raise AcqsynthError(f"strategy {spec}: the class {attr} must be built without arguments "
                                f"({e})") from None
    gaps = protocol_gaps(obj)
    if gaps:
        raise AcqsynthError(f"strategy {spec}: {attr} in {path} is not a Strategy; it lacks "
                            f"{', '.join(gaps)} (see docs/strategies.md)")
    return obj


__all__ = ["STRATEGIES", "GenerationBudget", "RoundContext", "RoundResult", "Strategy", "get_strategy"]
