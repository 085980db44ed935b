"""Acquisition-function speed on the real student, as ratios measured in this run.

Prints one JSON line at the end with:
- `grad_speedup`: per-sample gradient norms from one batched pass vs one backward per sample (the
  baseline), and `grad_max_rel_err` between the two;
- `forward_fraction`: for each forward-only function, bare-forward time / function time over the
  same batch (1.0 = free on top of the forward pass);
- `samples_per_s`: each function alone, including the ones that sample the student's answers.

Usage: python bench/acquisition.py [--student ALIAS] [--batch 16] [--tokens 256] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

from acqsynth.acquisition import ScoringContext, parse_acquisition
from acqsynth.acquisition.gradient import per_sample_grad_norms
from acqsynth.data import load_data
from acqsynth.models.causal_lm import left_pad
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import load_student
from acqsynth.samples import Sample, iter_samples


def make_samples(student, n: int, tokens: int) -> list[Sample]:
    """n GSM8K pool questions whose chat prompt + reference answer is `tokens` tokens long (prompt ~half)."""
    tok = student.tokenizer
    filler = " Then check the arithmetic step by step and write each intermediate result."
    out = []
    for s in list(iter_samples(load_data("gsm8k", split="pool")))[:n]:
        prompt_ids = student._ids(student.format_prompt([{"role": "user", "content": s.question}]))
        answer = s.reasoning + f"\n#### {s.answer}"
        while len(student._ids(answer)) + len(prompt_ids) < tokens:
            answer += filler
        ids = student._ids(answer)[: tokens - len(prompt_ids)]
        out.append(Sample(id=s.id, question=s.question, answer=tok.decode(ids)))
    return out


def pairs_of(student, ctx: ScoringContext, samples: list[Sample]) -> list[tuple[list[int], list[int]]]:
    return [
        (student._ids(ctx.prompt_text(s, by="bench")), student._ids(ctx.reference_answer(s, by="bench")))
        for s in samples
    ]


def bare_forward(student, pairs) -> float:
    """Seconds for the forward pass alone over the batch (same padding and kept logits as scoring)."""
    max_cont = max(len(c) for _, c in pairs)
    ids, mask, pos = left_pad([p + c for p, c in pairs], student.pad_id)
    t0 = time.perf_counter()
    with torch.inference_mode():
        student.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=max_cont + 1)
    return time.perf_counter() - t0


def naive_grad_norms(model, pairs) -> tuple[np.ndarray, float]:
    """The baseline: one forward and one backward per sample; norm over all parameter gradients."""
    t0 = time.perf_counter()
    out = []
    for p, c in pairs:
        model.zero_grad(set_to_none=True)
        logits = model(torch.tensor([p + c]), logits_to_keep=len(c) + 1).logits[0, :-1]
        torch.nn.functional.cross_entropy(logits.float(), torch.tensor(c)).backward()
        out.append(float(torch.sqrt(sum(q.grad.double().square().sum() for q in model.parameters() if q.grad is not None))))
    model.zero_grad(set_to_none=True)
    return np.array(out), time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", default="smollm2-135m-instruct")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=3, help="timings take the best of this many runs")
    ap.add_argument("--sample-tokens", type=int, default=32, help="max_new_tokens for sampled answers")
    ap.add_argument("--k", type=int, default=4, help="answers per question for answer-variance / semantic-entropy")
    args = ap.parse_args()
    torch.manual_seed(0)
    student = load_student(args.student, device="cpu", batch_size=args.batch, max_length=4096)
    samples = make_samples(student, args.batch, args.tokens)
    ctx0 = ScoringContext(student=student)
    pairs = pairs_of(student, ctx0, samples)
    lengths = [len(p) + len(c) for p, c in pairs]
    figures: dict = {
        "student": args.student, "batch": args.batch, "tokens_per_sample": [min(lengths), max(lengths)],
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
    }

    # Per-sample gradient norms: ours (one batched pass) vs one backward per sample.
    ours_t, base_t = [], []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ours = per_sample_grad_norms(student.model, pairs, student.pad_id)
        ours_t.append(time.perf_counter() - t0)
        base, t = naive_grad_norms(student.model, pairs)
        base_t.append(t)
    figures["grad_batched_s"] = round(min(ours_t), 3)
    figures["grad_one_backward_per_sample_s"] = round(min(base_t), 3)
    figures["grad_speedup"] = round(min(base_t) / min(ours_t), 3)
    figures["grad_max_rel_err"] = float(np.max(np.abs(ours - base) / base))

    # Forward-only functions vs a bare forward pass over the same batch, timed back to back in
    # each repeat so that machine noise hits both alike.
    forward_fns = ["loss(answer=reference)", "confidence(answer=reference)", "least-confidence(answer=reference)",
                   "entropy(answer=reference)", "el2n", "badge(answer=reference)", "random"]
    fraction, per_s, bares = {}, {}, []
    for spec in forward_fns:
        acq = parse_acquisition(spec)
        times, bare = [], []
        for _ in range(args.repeats):
            bare.append(bare_forward(student, pairs))
            ctx = ScoringContext(student=student)  # fresh: nothing cached
            t0 = time.perf_counter()
            acq.score(samples, ctx)
            times.append(time.perf_counter() - t0)
        bares += bare
        fraction[spec] = round(min(bare) / min(times), 3)
        per_s[spec] = round(len(samples) / min(times), 3)
    figures["bare_forward_s"] = round(min(bares), 3)
    per_s["gradient"] = round(len(samples) / min(ours_t), 3)
    figures["forward_fraction"] = fraction

    # Functions that sample the student's own answers (sampling dominates; settings reported).
    from acqsynth.acquisition.scoring import answers_needed

    params = GenerationParams(max_new_tokens=args.sample_tokens, temperature=0.7)
    for spec in ["loss", "confidence", f"answer-variance(k={args.k})", f"semantic-entropy(k={args.k})"]:
        try:
            acq = parse_acquisition(spec)
        except Exception as e:  # a function not built yet
            per_s[spec] = f"unavailable: {e}"
            continue
        from acqsynth.models.embedder import SentenceTransformerEmbedder

        ctx = ScoringContext(student=student, answer_params=params, embedder=SentenceTransformerEmbedder())
        ctx.max_answers = answers_needed(acq)
        t0 = time.perf_counter()
        acq.score(samples, ctx)
        per_s[spec] = round(len(samples) / (time.perf_counter() - t0), 3)
    figures["samples_per_s"] = per_s
    figures["sampled_answer_settings"] = {"max_new_tokens": args.sample_tokens, "k": args.k, "temperature": 0.7}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
