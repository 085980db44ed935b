"""Acquisition functions: how valuable each sample is to one student (see docs/acquisition.md).

`ACQUISITIONS` maps each config name to its dataclass; `parse_acquisition("answer-variance(k=8)")`
builds one, `parse_acquisition("0.5*loss + 0.5*diversity")` a normalised weighted combination, and
`parse_acquisition("my_scores.py:hardness")` loads a user's own function or class from a file.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

import yaml

from acqsynth.acquisition.badge import Badge
from acqsynth.acquisition.base import Acquisition, FunctionAcquisition, ScoringContext, params_of, spec_of
from acqsynth.acquisition.combine import (
    Combination,
    column_name,
    normalize,
    parse_expression,
    split_top_level,
)
from acqsynth.acquisition.embedding import ArchiveDiversity, Diversity, Proximity, reference_centroids
from acqsynth.acquisition.gradient import GradientNorm, coverage, per_sample_grad_norms
from acqsynth.acquisition.judge import LLMJudge
from acqsynth.acquisition.learnability import Learnability
from acqsynth.acquisition.random_score import RandomScore
from acqsynth.acquisition.reward_model import RewardModel
from acqsynth.acquisition.uncertainty import EL2N, Confidence, LeastConfidence, Loss, TokenEntropy
from acqsynth.acquisition.variance import AnswerVariance, SemanticEntropy, cluster_labels
from acqsynth.acquisition.vendi import g_vendi, vendi_score
from acqsynth.errors import AcqsynthError, unknown_name
from acqsynth.userfile import import_user_file

ACQUISITIONS: dict[str, type] = {
    cls.name: cls
    for cls in (
        Confidence,
        Loss,
        LeastConfidence,
        TokenEntropy,
        EL2N,
        Learnability,
        GradientNorm,
        Badge,
        Proximity,
        Diversity,
        ArchiveDiversity,
        AnswerVariance,
        SemanticEntropy,
        LLMJudge,
        RewardModel,
        RandomScore,
    )
}
"""Built-in acquisition functions by config name."""


def parse_acquisition(spec: str, normalize: str = "minmax") -> Any:
    """An acquisition function from a config string: a name with optional `(key=value,…)` parameters,
    a weighted sum of those, or `file.py:name` (a class, instance or function in a Python file)."""
    return parse_expression(spec, _parse_one, normalize=normalize)


def parse_acquisitions(specs: str | Sequence[str], normalize: str = "minmax") -> list[Any]:
    """Several acquisitions from a list or a comma-separated string (commas inside `(...)` are parameters)."""
    if isinstance(specs, str):
        specs = [piece.strip() for _, piece in split_top_level(specs, ",")]
    items = [s for s in specs if s.strip()]
    if not items:
        raise AcqsynthError(f"no acquisition given; valid names: {', '.join(sorted(ACQUISITIONS))}")
    return [parse_acquisition(s, normalize) for s in items]


def _parse_one(spec: str) -> Any:
    spec = spec.strip()
    name, params = spec, {}
    if "(" in spec:
        if not spec.endswith(")"):
            raise AcqsynthError(f"acquisition {spec!r}: parameters go in parentheses at the end, e.g. loss(answer=own)")
        name, inner = spec[: spec.index("(")].strip(), spec[spec.index("(") + 1 : -1]
        for _, item in split_top_level(inner, ","):
            if not item.strip():
                continue
            if "=" not in item:
                raise AcqsynthError(f"acquisition {spec!r}: parameter {item.strip()!r} is not key=value")
            key, value = item.split("=", 1)
            try:
                params[key.strip()] = yaml.safe_load(value.strip())
            except (yaml.YAMLError, ValueError, RecursionError):
                raise AcqsynthError(f"acquisition {spec!r}: parameter {item.strip()!r} has an unreadable value "
                                    "(a number, true/false, a word or a [list])") from None
    if ".py:" in name:
        return _load_user(name, params)
    if name not in ACQUISITIONS:
        raise unknown_name("acquisition", name, ACQUISITIONS)
    return _build(ACQUISITIONS[name], params, name)


def _build(cls: type, params: dict[str, Any], label: str) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init} if dataclasses.is_dataclass(cls) else {}
    hints = typing.get_type_hints(cls) if fields else {}
    for key, value in params.items():
        if fields and key not in fields:
            valid = ", ".join(fields) or "none"
            raise AcqsynthError(f"acquisition {label!r} has no parameter {key!r}; its parameters: {valid}")
        want = hints.get(key)
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            params[key] = float(value)
        elif want in (int, float, str, bool) and not isinstance(params[key], want):
            raise AcqsynthError(
                f"acquisition {label!r}: parameter {key}={value!r} should be {want.__name__}"
            )
        _check_param(label, key, params[key], want)
    return cls(**params)


_ZERO_ALLOWED = {"label", "retries", "seed"}
"""Integer parameters that may be 0; every other integer (k, batch sizes, lengths) must be >= 1."""


def _check_param(label: str, key: str, value: Any, want: Any) -> None:
    """Range checks at parse time, so `answer-variance(k=0)` fails when the config loads, not mid-run."""
    import math

    if want is int and value < (0 if key in _ZERO_ALLOWED else 1):
        low = 0 if key in _ZERO_ALLOWED else 1
        raise AcqsynthError(f"acquisition {label!r}: parameter {key}={value!r} must be >= {low}")
    if want is float and not (math.isfinite(value) and value >= 0):
        raise AcqsynthError(f"acquisition {label!r}: parameter {key}={value!r} must be a finite number >= 0")


def _load_user(target: str, params: dict[str, Any]) -> Any:
    path, attr = target.rsplit(":", 1)
    module = import_user_file(path, "acquisition")
    if not hasattr(module, attr):
        raise AcqsynthError(f"{path} defines no {attr!r}")
    obj = getattr(module, attr)
    if isinstance(obj, type):
        return _build(obj, params, target)
    if params:
        raise AcqsynthError(f"{target} is a function: it takes no (key=value) parameters")
    if hasattr(obj, "score") and hasattr(obj, "name"):
        return obj
    if callable(obj):
        return FunctionAcquisition(fn=obj, label=attr)
    raise AcqsynthError(f"{target} is neither an acquisition class, an object with .score, nor a function")


__all__ = [
    "ACQUISITIONS",
    "EL2N",
    "Acquisition",
    "AnswerVariance",
    "ArchiveDiversity",
    "Badge",
    "Combination",
    "Confidence",
    "Diversity",
    "FunctionAcquisition",
    "GradientNorm",
    "LLMJudge",
    "Learnability",
    "LeastConfidence",
    "Loss",
    "Proximity",
    "RandomScore",
    "RewardModel",
    "ScoringContext",
    "SemanticEntropy",
    "TokenEntropy",
    "cluster_labels",
    "column_name",
    "coverage",
    "g_vendi",
    "normalize",
    "params_of",
    "parse_acquisition",
    "parse_acquisitions",
    "per_sample_grad_norms",
    "reference_centroids",
    "spec_of",
    "vendi_score",
]
