"""`arithmetic-2d`: exact `Calculate a op b =` items with operands of at most two digits, made in code.

Why: a 135M student needs a task it can learn. The bundled Ai2 `arithmetic` set mixes in operands of
3 to 6 digits (279 of its 500 eval items); the main job's trained student got none of its `hard`
items right (docs/results.md). Here every operand is 0..99 and every label is exact.

The procedure (no files, no network, no RNG whose stream could change with the Python version):

1. Operations `+ - * /`; operands `a, b` in 0..99. `-` may go negative (`7 - 85 = -78`); `/` keeps
   only exact pairs (`1 <= b`, `b` divides `a`: 572 pairs, `0 / b` included), so every answer is an
   integer.
2. Each pair falls in one *stratum*: its operation x its size class, `2d` when both operands have
   two digits (10..99), `1d` when at least one has one digit (0..9). Eight strata, e.g. `plus-2d`.
3. `+ - *`: each stratum keeps the `STRATUM_SIZE` pairs of its class that come first in
   `sha256(f"{SEED}/{id}")` order, a seeded sample of the 1,900 (`1d`) or 8,100 (`2d`) pairs.
   `/`: every exact pair (376 in `div-1d`, 196 in `div-2d`).
4. Splits (`acqsynth.data.splits`, fixed counts per unit, the stratum being the unit): the first
   `EVAL_PER_STRATUM` ids of each stratum in sha256(id) order are eval, the next `SEED_PER_STRATUM`
   seed, the rest pool. Eval is 1,000 items, 125 per stratum; seed 200; pool 5,372.

Why operation x size class: equal counts per operation keep one operation from dominating the
score (a uniform draw would make division 2 % of the items, and 81 % of each other operation's
pairs have two 2-digit operands), and splitting each operation into a one-digit and a two-digit half
puts every operation's easy and hard ends in eval equally, so a change in accuracy can be traced to
where it happened. Finer strata (the four digit classes) do not work: division has 32 `1d1d` pairs
and only `0 / b` in `1d2d`. Division's 572 pairs cap the pool: it holds 272 division items, so the
pool is mostly `+ - *` (eval's mix is 25 % each).
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable

from acqsynth.samples import Sample

NAME = "arithmetic-2d"
SEED = 0
"""Salt of the sha256 order that samples the `+ - *` strata; changing it changes the dataset."""
STRATUM_SIZE = 1000
"""Items kept per `+ - *` stratum (division keeps every exact pair)."""
EVAL_PER_STRATUM, SEED_PER_STRATUM = 125, 25
"""Rows of each stratum in the eval and seed splits; the rest is pool."""
MAX_OPERAND = 99

OPERATIONS: dict[str, tuple[str, Callable[[int, int], int]]] = {
    "+": ("plus", operator.add),
    "-": ("minus", operator.sub),
    "*": ("times", operator.mul),
    "/": ("div", operator.floordiv),
}
"""Symbol -> (name used in ids and strata, exact integer operation; `/` is only asked where exact)."""
DIFFICULTY = {"1d1d": "easy", "1d2d": "medium", "2d1d": "medium", "2d2d": "hard"}
"""By operand digit counts: both one digit, one of each, both two digits."""


def digits(a: int, b: int) -> str:
    """The operands' digit counts, `2d1d` for `23 - 5`."""
    return f"{len(str(a))}d{len(str(b))}d"


def stratum(op: str, a: int, b: int) -> str:
    """`<operation name>-2d` when both operands have two digits, else `<operation name>-1d`."""
    return f"{OPERATIONS[op][0]}-{'2d' if digits(a, b) == '2d2d' else '1d'}"


def item_id(op: str, a: int, b: int) -> str:
    """The stable id that spells the item: `arithmetic-2d/23-minus-5`."""
    return f"{NAME}/{a}-{OPERATIONS[op][0]}-{b}"


def make_sample(op: str, a: int, b: int) -> Sample:
    """One item in the bundled `arithmetic` format: "Calculate 23 - 5 =" -> "18"."""
    if op == "/" and (b == 0 or a % b):
        raise ValueError(f"{a} / {b} is not an exact division")
    cls = digits(a, b)
    return Sample(
        id=item_id(op, a, b),
        question=f"Calculate {a} {op} {b} =",
        answer=str(OPERATIONS[op][1](a, b)),
        source=NAME,
        metadata={"operation": op, "digits": cls, "difficulty": DIFFICULTY[cls], "stratum": stratum(op, a, b)},
    )


def _pairs(op: str) -> list[tuple[int, int]]:
    """Every admissible (a, b) of `op`: all of 0..99 x 0..99, for `/` only the exact ones with b >= 1."""
    r = range(MAX_OPERAND + 1)
    if op == "/":
        return [(a, b) for a in r for b in r if b >= 1 and a % b == 0]
    return [(a, b) for a in r for b in r]


def _sample_key(op: str, a: int, b: int) -> str:
    return hashlib.sha256(f"{SEED}/{item_id(op, a, b)}".encode()).hexdigest()


def load_arithmetic_2d() -> list[Sample]:
    """Every item (6,572), ordered by operation (+ - * /), then a, then b."""
    out = []
    for op in OPERATIONS:
        by_stratum: dict[str, list[tuple[int, int]]] = {}
        for a, b in _pairs(op):
            by_stratum.setdefault(stratum(op, a, b), []).append((a, b))
        kept = []
        for pairs in by_stratum.values():
            if op != "/":
                pairs = sorted(pairs, key=lambda p: _sample_key(op, *p))[:STRATUM_SIZE]
            kept += pairs
        out += [make_sample(op, a, b) for a, b in sorted(kept)]
    return out
