#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite: lint, unit tests, integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
venv="${ACQSYNTH_VENV:-.venv}"
"$venv/bin/ruff" check src tests
"$venv/bin/python" -m pytest -q -p no:cacheprovider --timeout=900 --durations=10 tests "$@"
