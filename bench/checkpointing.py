"""Training with and without activation (gradient) checkpointing: time per step and the losses.

TRL turns checkpointing on by default; acqsynth turns it off on CPU (`train.gradient_checkpointing:
null`), where a 135M student's activations are small and recomputing them only costs time. This
bench finetunes the same LoRA student on the same rows both ways and prints one JSON line: seconds
per optimiser step each way (the fastest of --repeats alternated runs, after one warm-up), the speed-up of "off" over "on" (the baseline, measured in the same
run), and whether the two loss curves are identical (they should be: the recomputed forward pass
is the same computation).

Usage: python bench/checkpointing.py [--rows 64] [--batch-size 8] [--threads 1] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch

from acqsynth.data import load_data
from acqsynth.models.aliases import hf_model_path
from acqsynth.models.causal_lm import load_causal_lm
from acqsynth.tasks import get_task
from acqsynth.training import TrainConfig, train_student


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--student", default="smollm2-135m-instruct")
    ap.add_argument("--data", default="arithmetic-2d")
    ap.add_argument("--task", default="math-answer")
    ap.add_argument("--rows", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=2, help="timed runs each way; the fastest counts")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_causal_lm(hf_model_path(args.student))
    rows = load_data(args.data, split="pool").select(range(args.rows))
    task = get_task(args.task)

    def run(checkpointing: bool) -> tuple[float, list[float], int]:
        config = TrainConfig(epochs=1, batch_size=args.batch_size, gradient_checkpointing=checkpointing)
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            result = train_student(model, tokenizer, rows, task, config, out, save=False)
            return time.perf_counter() - start, result.losses, result.steps

    run(False)  # warm-up: the first finetune of a process pays one-off costs
    times: dict[bool, list[float]] = {True: [], False: []}
    losses: dict[bool, list[float]] = {}
    for _ in range(args.repeats):  # alternate, so drift in the machine's speed hits both alike
        for checkpointing in (True, False):  # the baseline (TRL's default) first
            wall, losses[checkpointing], steps = run(checkpointing)
            times[checkpointing].append(wall)
    on, off = min(times[True]), min(times[False])
    print(json.dumps({
        "s_per_step_checkpointing": round(on / steps, 3),
        "s_per_step_no_checkpointing": round(off / steps, 3),
        "speedup_no_checkpointing": round(on / off, 3),
        "identical_losses": losses[True] == losses[False],
        "steps": steps, "repeats": args.repeats, "rows": args.rows, "batch_size": args.batch_size,
        "threads": args.threads,
        "student": args.student, "data": args.data, "task": args.task,
    }))


if __name__ == "__main__":
    main()
