#!/usr/bin/env bash
# Set up (if needed) and run acqsynth's main job on the embedded default. Extra arguments go to `acqsynth run`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${ACQSYNTH_VENV:-.venv}"
exec "$venv/bin/acqsynth" run "$@"
