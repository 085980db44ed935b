"""The forgetting suite's signal: a student's cloze acc_norm on it, per source and overall, beside chance.

A forgetting suite only shows forgetting if the untrained student is measurably above chance on it.
This prints, for each source and for the whole suite, the number of items, chance (the mean of
1 / options), the student's acc_norm with a 95% bootstrap interval, and whether the interval lies
above chance; also the letter log-likelihood accuracy the suite used before, for comparison. The last
line is one JSON object with every figure.

    .venv/bin/python experiments/forgetting_baseline.py [--student smollm2-135m-instruct] [--per-source 100]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from acqsynth.evaluation.accuracy import option_loglik_predictions
from acqsynth.evaluation.cloze import chance, cloze_scores
from acqsynth.evaluation.forgetting import DEFAULT_PER_SOURCE, FORGETTING_SOURCES, forgetting_suite
from acqsynth.evaluation.stats import bootstrap_mean
from acqsynth.models.loader import load_student
from acqsynth.tasks import get_task
from acqsynth.tasks.mcqa import gold_letter


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--student", default="smollm2-135m-instruct")
    parser.add_argument("--per-source", type=int, default=DEFAULT_PER_SOURCE)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args()

    student = load_student(args.student, batch_size=args.batch_size)
    task = get_task("mcqa")
    figures: dict = {"student": args.student, "per_source": args.per_source, "sources": {}}
    all_norm, all_letter, all_chance = [], [], []
    start = time.perf_counter()
    print(f"{'source':<30} {'n':>4} {'chance':>7}  {'acc_norm [95% CI]':<26} {'above':>5}  letter")
    for source in FORGETTING_SOURCES:
        suite = forgetting_suite(args.per_source, [source])
        res = cloze_scores(student, suite)
        letters = option_loglik_predictions(student, task, suite)
        letter_hits = np.array([p == gold_letter(s) for p, s in zip(letters, suite, strict=True)], dtype=float)
        est = bootstrap_mean(res.correct_norm)
        ch = chance(suite)
        all_norm += res.correct_norm.tolist()
        all_letter += letter_hits.tolist()
        all_chance += [chance([s]) for s in suite]
        figures["sources"][source] = {"n": len(suite), "chance": ch, "acc_norm": est.mean, "lo": est.lo,
                                      "hi": est.hi, "acc": float(res.correct.mean()),
                                      "letter": float(letter_hits.mean())}
        print(f"{source:<30} {len(suite):>4} {ch:>7.4f}  {est.mean:.4f} [{est.lo:.4f}, {est.hi:.4f}]    "
              f"{'yes' if est.lo > ch else 'no':>5}  {letter_hits.mean():.4f}")
    total = bootstrap_mean(np.array(all_norm))
    letter = bootstrap_mean(np.array(all_letter))
    ch = float(np.mean(all_chance))
    figures.update({"n": len(all_norm), "chance": ch, "acc_norm": total.mean, "lo": total.lo, "hi": total.hi,
                    "above_chance": total.lo > ch, "letter": letter.mean, "letter_lo": letter.lo,
                    "letter_hi": letter.hi, "wall_s": round(time.perf_counter() - start, 1)})
    print(f"{'suite':<30} {len(all_norm):>4} {ch:>7.4f}  {total.mean:.4f} [{total.lo:.4f}, {total.hi:.4f}]    "
          f"{'yes' if total.lo > ch else 'no':>5}  {letter.mean:.4f} [{letter.lo:.4f}, {letter.hi:.4f}]")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
