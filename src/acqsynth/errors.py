"""The one exception type users see: a problem with their input, stated so they can fix it."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable


class AcqsynthError(Exception):
    """A user-facing error: bad input, unknown name, missing file. The CLI prints it without a traceback."""


def _plural(kind: str) -> str:
    """`strategy` → `strategies`, `model alias` → `model aliases`, `task` → `tasks`."""
    if kind.endswith("y") and kind[-2:-1] not in "aeiou":
        return kind[:-1] + "ies"
    return kind + ("es" if kind.endswith(("s", "x", "ch", "sh")) else "s")


def closest(name: object, valid: Iterable[str]) -> str | None:
    """The valid name closest to `name` (difflib), else the only one that starts with it, else None."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    if close:
        return close[0]
    starting = [v for v in valid if str(name) and v.startswith(str(name))]
    return starting[0] if len(starting) == 1 else None


def suggest(name: object, valid: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the valid name closest to `name`, or "" when none is close."""
    close = closest(name, valid)
    return f" (did you mean {close!r}?)" if close else ""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> AcqsynthError:
    """An error for an unknown `kind` called `name` that lists the valid names and the closest match."""
    valid = sorted(valid)
    close = closest(name, valid)
    hint = f" Did you mean {close!r}?" if close else ""
    return AcqsynthError(f"unknown {kind} {name!r}.{hint} Valid {_plural(kind)}: {', '.join(valid)}")


def _num(x: float) -> str:
    """A bound as written: `4294967295`, `0.5`, `1e-06`."""
    return str(int(x)) if float(x).is_integer() and abs(x) < 1e16 else f"{x:g}"


def check_range(
    key: str,
    value: float | None,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> None:
    """Raise an error naming `key`, its value and the allowed range unless `value` lies in it.

    None passes (an unset optional field); NaN never does. Why: a negative budget or a probability
    above 1 should stop a run at once, not an hour later deep in training."""
    if value is None:
        return
    ok = not (isinstance(value, float) and math.isnan(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    if low is not None and high is not None:
        allowed = f"in {'(' if low_open else '['}{_num(low)}, {_num(high)}{')' if high_open else ']'}"
    elif low is not None:
        allowed = f"{'>' if low_open else '>='} {_num(low)}"
    elif high is not None:
        allowed = f"{'<' if high_open else '<='} {_num(high)}"
    else:  # no bounds: only NaN fails
        allowed = "a number"
    raise AcqsynthError(f"{key} must be {allowed}, got {value!r}")
