#!/usr/bin/env bash
# SIGKILL `acqsynth run` (the embedded default as the synthetic loop in two rounds: strategy=active
# rounds=2 budget.samples=48) in the middle of round 2's generation, rerun the same command, and print
# what the resumed run produced. Usage: bash scripts/resume_check.sh [RUN_DIR] [acqsynth run args...]
set -u
cd "$(dirname "$0")/.."
out="${1:-runs/resume-check}"; shift || true
acq="${ACQSYNTH_VENV:-.venv}/bin/acqsynth"
loop=(strategy=active rounds=2 budget.samples=48)
rm -rf "$out"
"$acq" run --quiet --output "$out" "${loop[@]}" "$@" > "$out.first.log" 2>&1 &
pid=$!
while [ ! -f "$out/round-02/generation/stats.json" ]; do
  kill -0 "$pid" 2>/dev/null || { echo "the run ended before round 2 started"; exit 1; }
  sleep 1
done
sleep 20
kill -9 "$pid"; wait "$pid" 2>/dev/null
echo "killed at $(date +%T); round 2 finished before the kill: $([ -f "$out/round-02/round.json" ] && echo yes || echo no)"
"$acq" run --quiet --output "$out" "${loop[@]}" "$@" > "$out.rerun.log" 2>&1 || { echo "rerun failed: see $out.rerun.log"; exit 1; }
"${ACQSYNTH_VENV:-.venv}/bin/python" - "$out" <<'PY'
import json, sys
out = sys.argv[1]
ids = [json.loads(line)["id"] for line in open(f"{out}/data.jsonl")]
m = json.load(open(f"{out}/metrics.json"))
usage = next(iter(json.load(open(f"{out}/round-02/generation/stats.json"))["models"].values()))
print(f"samples {len(ids)} (unique {len(set(ids))}), budget {m['budget']}, generator completions {m['generated']}")
print(f"round 2 redone: {usage['calls']} generator calls, {usage['cached']} from the cache")
PY
