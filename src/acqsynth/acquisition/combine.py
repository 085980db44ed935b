"""Normalisation and weighted combination of acquisition scores: `0.5*loss + 0.5*diversity`.

Scores of different functions live on different scales (a loss in nats, a margin inverse up to
1e6, a fraction in [0, 1]), so each term is normalised over the batch before weighting. NaN stays
NaN: a sample whose any term is undefined has an undefined combination.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy.stats import rankdata

from acqsynth.acquisition.base import FunctionAcquisition, ScoringContext, spec_of
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample

NORMALIZERS = ("none", "minmax", "zscore", "rank")


def normalize(scores: np.ndarray, method: str) -> np.ndarray:
    """Scores rescaled over the finite entries: 'minmax' to [0, 1], 'zscore' to mean 0 / std 1, 'rank' to
    [0, 1] by average rank, 'none' unchanged. A constant batch maps to 0 (no signal); NaN/inf stay as
    they are (so they are still reported and ranked last)."""
    x = np.asarray(scores, dtype=np.float64)
    if method == "none":
        return x.copy()
    if method not in NORMALIZERS:
        raise AcqsynthError(f"unknown normalisation {method!r}; valid: {', '.join(NORMALIZERS)}")
    out = x.copy()
    ok = np.isfinite(x)
    v = x[ok]
    if v.size == 0:
        return out
    if method == "minmax":
        span = v.max() - v.min()
        out[ok] = (v - v.min()) / span if span > 0 else 0.0
    elif method == "zscore":
        std = v.std()
        out[ok] = (v - v.mean()) / std if std > 0 else 0.0
    else:
        out[ok] = (rankdata(v) - 1) / (v.size - 1) if v.size > 1 else 0.0
    return out


@dataclass
class Combination:
    """A weighted sum of normalised acquisition scores."""

    name: ClassVar[str] = "combination"
    terms: list[tuple[float, Any]] = field(default_factory=list)
    """(weight, acquisition function) pairs."""
    normalize: str = "minmax"
    """How each term is normalised over the batch first: none, minmax, zscore or rank."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        total = np.zeros(len(samples))
        for weight, acq in self.terms:
            total = total + weight * normalize(acq.score(samples, ctx), self.normalize)
        return total

    @property
    def spec(self) -> str:
        """The expression this combination was parsed from, in canonical form."""
        parts = [f"{w:g}*{column_name(a)}" for w, a in self.terms]
        expr = " + ".join(parts).replace("+ -", "- ")
        return expr if self.normalize == "minmax" else f"{expr} [normalize={self.normalize}]"


def column_name(acq: Any) -> str:
    """The Dataset column an acquisition's scores are written to: its name and non-default parameters."""
    if isinstance(acq, Combination):
        return acq.spec
    if isinstance(acq, FunctionAcquisition):
        return acq.label
    return spec_of(acq)


def split_top_level(text: str, seps: str) -> list[tuple[str, str]]:
    """Split `text` at characters in `seps` outside parentheses; returns (separator before, piece)."""
    pieces, depth, start, sep = [], 0, 0, ""
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif depth == 0 and ch in seps:
            prev = text[:i].rstrip()
            if ch in "+-" and (not prev or prev[-1] in "*(+-"):
                continue  # a sign, not an operator
            if ch == "+" and len(prev) >= 2 and prev[-1] in "eE" and prev[-2].isdigit():
                continue  # an exponent: 1e+3
            if ch == "-" and not (text[i - 1].isspace() or text[i + 1 : i + 2].isspace()):
                continue  # inside a name (answer-variance) or an exponent (1e-3): subtract with spaces
            pieces.append((sep, text[start:i]))
            sep, start = ch, i + 1
    if depth != 0:
        raise AcqsynthError(f"unbalanced parentheses in {text!r}")
    pieces.append((sep, text[start:]))
    return pieces


def parse_expression(expr: str, parse_one: Callable[[str], Any], normalize: str = "minmax") -> Any:
    """One acquisition (`loss`, `answer-variance(k=8)`) or a weighted sum (`0.5*loss - 0.2*diversity`).

    Subtraction needs a space on one side of the minus, since names contain hyphens.
    """
    terms = split_top_level(expr.strip(), "+-")
    if len(terms) == 1 and "*" not in _outside_parens(terms[0][1]):
        return parse_one(terms[0][1].strip())
    parsed = []
    for sep, term in terms:
        term = term.strip()
        if not term:
            raise AcqsynthError(f"empty term in acquisition expression {expr!r}")
        factors = [f.strip() for _, f in split_top_level(term, "*")]
        weight, names = 1.0, []
        for f in factors:
            try:
                weight *= float(f)
            except ValueError:
                names.append(f)
        if len(names) != 1:
            raise AcqsynthError(
                f"term {term!r} of {expr!r} must be `weight*name` or `name`, with exactly one acquisition name "
                "(write subtraction with a space: `loss - 0.5*diversity`)"
            )
        if not math.isfinite(weight):  # nan or inf would turn every combined score into NaN
            raise AcqsynthError(f"term {term!r} of {expr!r}: the weight must be a finite number, got {weight}")
        parsed.append((-weight if sep == "-" else weight, parse_one(names[0])))
    return Combination(terms=parsed, normalize=normalize)


def _outside_parens(text: str) -> str:
    depth, out = 0, []
    for ch in text:
        depth += ch == "("
        if depth == 0:
            out.append(ch)
        depth -= ch == ")"
    return "".join(out)
