#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: lint, type check, unit tests, integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
venv="${ACQSYNTH_VENV:-.venv}"
"$venv/bin/ruff" check src tests scripts experiments bench
"$venv/bin/mypy"  # configured in pyproject.toml: src/ must type-check clean
"$venv/bin/python" -m pytest -q -p no:cacheprovider --timeout=900 --durations=10 tests "$@"
