"""Shared fixtures: a tiny random model directory (built once per session) and an isolated cache."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from tiny import make_tiny_model  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer random Llama with a trained tokenizer and chat template, saved once per test session."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny-llama"))
