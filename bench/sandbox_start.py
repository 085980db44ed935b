"""Start-up cost of one sandboxed program: a bare interpreter, bubblewrap's isolation around it, and
acqsynth's whole `run_python` (isolation, monitor, output capture, clean-up), on `pass`.

Prints one JSON line: the fastest and the median of N runs of each, in milliseconds, and the ratio of
`run_python` to bubblewrap (skipped when `bwrap` is not installed: Debian's `bubblewrap` package).

Usage: python bench/sandbox_start.py [--n 20]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time

from acqsynth.sandbox import isolation, run_python

BWRAP = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/home",
         "--unshare-all", "--die-with-parent", "--new-session", "--uid", "65001", "--gid", "65001", "--cap-drop", "ALL"]


def timed(run, n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    times.sort()
    return {"min_ms": round(1000 * times[0], 1), "median_ms": round(1000 * times[n // 2], 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args()
    python = [sys.executable, "-I", "-c", "pass"]
    figures: dict[str, object] = {"bare_python": timed(lambda: subprocess.run(python, check=True), args.n)}
    if shutil.which("bwrap"):
        figures["bwrap_python"] = timed(lambda: subprocess.run(BWRAP + python, check=True, capture_output=True), args.n)
    figures["run_python"] = timed(lambda: run_python("pass"), args.n)
    if "bwrap_python" in figures:
        figures["ratio_run_python_to_bwrap_min"] = round(
            figures["run_python"]["min_ms"] / figures["bwrap_python"]["min_ms"], 2)  # type: ignore[index]
    print(json.dumps({**figures, "isolation": isolation(), "n": args.n}))


if __name__ == "__main__":
    main()
