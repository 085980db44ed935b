"""acqsynth: synthetic training data targeted at one student model, scored by acquisition functions."""

from __future__ import annotations

from typing import Any

__all__ = ["Sample", "read_samples", "to_dataset", "write_samples"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import `acqsynth.samples` (and with it `datasets`) on first use, not on `import acqsynth`.

    The CLI starts without the heavy imports, so a Ctrl-C in its first seconds is handled like any
    other (a message and the resume command) rather than surfacing as a traceback from an import."""
    if name in __all__:
        from acqsynth import samples

        return getattr(samples, name)
    raise AttributeError(f"module 'acqsynth' has no attribute {name!r}")
