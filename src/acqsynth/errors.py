"""The one exception type users see: a problem with their input, stated so they can fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AcqsynthError(Exception):
    """A user-facing error: bad input, unknown name, missing file. The CLI prints it without a traceback."""


def unknown_name(kind: str, name: str, valid: Iterable[str]) -> AcqsynthError:
    """An error for an unknown `kind` called `name` that lists the valid names and the closest match."""
    valid = sorted(valid)
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return AcqsynthError(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}")
