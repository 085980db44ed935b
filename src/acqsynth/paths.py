"""Where acqsynth keeps converted models and other caches (never inside a hub cache)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user cache root: `$ACQSYNTH_CACHE`, else `$XDG_CACHE_HOME/acqsynth`, else `~/.cache/acqsynth`."""
    if env := os.environ.get("ACQSYNTH_CACHE"):
        root = Path(env)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "acqsynth"
    root.mkdir(parents=True, exist_ok=True)
    return root
