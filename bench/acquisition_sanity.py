"""Sanity of acquisition scores on real data: Spearman correlations between functions over GSM8K.

Scores the first N GSM8K eval questions (math task prompts) with the forward-pass functions on the
reference answers and, on the student's own sampled answers, loss and confidence; answer variance
and semantic entropy on the first M. Prints one JSON line: the correlation matrix, samples/s per
function (shared work is charged to the first function that needs it) and the settings.

Usage: python bench/acquisition_sanity.py [--n 200] [--m 50] [--k 4] [--max-new-tokens 128]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from scipy.stats import spearmanr

from acqsynth.acquisition import ScoringContext, parse_acquisitions
from acqsynth.acquisition.scoring import score_samples
from acqsynth.data import load_data
from acqsynth.models.embedder import SentenceTransformerEmbedder
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import load_student
from acqsynth.samples import iter_samples
from acqsynth.tasks import get_task


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", default="smollm2-135m-instruct")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--m", type=int, default=50)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    samples = list(iter_samples(load_data("gsm8k", split="eval").select(range(args.n))))
    seeds = load_data("gsm8k", split="seed")
    ctx = ScoringContext(
        student=load_student(args.student, device="cpu", batch_size=args.batch_size),
        task=get_task("math"),
        embedder=SentenceTransformerEmbedder(),
        reference=list(seeds["question"]),
        seed=args.seed,
        answer_params=GenerationParams(max_new_tokens=args.max_new_tokens, temperature=0.7),
    )
    forward = parse_acquisitions(
        "loss(answer=reference),confidence(answer=reference),least-confidence(answer=reference),"
        "entropy(answer=reference),el2n,gradient(answer=reference),gradient,badge(answer=reference),proximity,"
        "diversity,random,"
        "loss,confidence,entropy"
    )
    t0 = time.perf_counter()
    scores, reports = score_samples(samples, forward, ctx, progress=True)
    sampled = parse_acquisitions(f"answer-variance(k={args.k}),semantic-entropy(k={args.k})")
    s2, r2 = score_samples(samples[: args.m], sampled, ctx, progress=True)
    wall = time.perf_counter() - t0
    names = list(scores)
    mat = spearmanr(np.column_stack([scores[c] for c in names]), nan_policy="omit").statistic
    corr = {a: {b: round(float(mat[i, j]), 3) for j, b in enumerate(names)} for i, a in enumerate(names)}
    sub = {c: scores[c][: args.m] for c in ("loss", "confidence", "entropy")} | s2
    sub_names = list(sub)
    mat2 = spearmanr(np.column_stack([sub[c] for c in sub_names]), nan_policy="omit").statistic
    corr2 = {a: {b: round(float(mat2[i, j]), 3) for j, b in enumerate(sub_names)} for i, a in enumerate(sub_names)}
    print(json.dumps({
        "n": args.n, "m": args.m, "k": args.k, "max_new_tokens": args.max_new_tokens, "wall_s": round(wall, 1),
        "spearman": corr, "spearman_sampled_subset": corr2,
        "samples_per_s": {r.column: round(r.samples_per_s, 3) for r in reports + r2},
        "means": {c: round(float(np.nanmean(v)), 4) for c, v in (scores | s2).items()},
    }))


if __name__ == "__main__":
    main()
