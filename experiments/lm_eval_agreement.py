"""Cross-check acqsynth's cloze multiple-choice scores against lm-evaluation-harness.

Both tools score the same items with the same SmolLM2-135M-Instruct weights (the fp32 checkpoint
acqsynth converts from the bundled GGUF), using lm-eval's cloze convention: "Question: {q}\\nAnswer:"
followed by " " + each option's text. lm-eval runs from its own virtualenv (created here on first use:
`pip install torch==2.13.0 lm-eval[hf]==0.4.13`) on a local JSONL task, with the hubs switched off.
Printed: each tool's acc and acc_norm per dataset, their difference in points, the item-level
agreement of the picks, and the largest difference of an option's log-likelihood; the last line is
one JSON object with every figure.

    .venv/bin/python experiments/lm_eval_agreement.py [--n 500] [--lm-eval-venv .lmeval-venv]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from acqsynth.data import load_data
from acqsynth.evaluation.cloze import CLOZE_TEMPLATE, cloze_scores, pick_options
from acqsynth.models.aliases import hf_model_path
from acqsynth.models.loader import load_student
from acqsynth.samples import Sample, iter_samples
from acqsynth.tasks.mcqa import LETTERS, gold_letter

LM_EVAL = "lm-eval[hf]==0.4.13"
BARE_TEMPLATE = "{question}\nAnswer:"
"""The prompt without lm-eval's "Question: " prefix, scored by acqsynth only, to show what the prefix is worth."""
DATASETS = {"arc_easy": "arc-easy", "mmlu": "mmlu"}
TASK_YAML = """task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: multiple_choice
doc_to_text: "{template}"
doc_to_target: gold
doc_to_choice: "{{{{choices}}}}"
target_delimiter: " "
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
"""


def items(name: str, n: int) -> list[Sample]:
    """`n` evaluation items of a built-in dataset: the first n of ARC-Easy; for MMLU, a seeded draw
    across its 57 subjects (its eval split is ordered by subject)."""
    data = load_data(name, split="eval")
    if name == "mmlu":
        data = data.shuffle(seed=0)
    return list(iter_samples(data.select(range(min(n, len(data))))))


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not (venv / "bin" / "lm_eval").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, "torch==2.13.0"], check=True)
        subprocess.run([*pip, LM_EVAL], check=True)
    return venv / "bin" / "lm_eval"


OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
"""lm-eval runs with the hubs switched off: every model and data file is local."""


def lm_eval_cli(lm_eval: Path, model_args: str, tasks: list[str], include: Path, out: Path, batch: int,
                *extra: str) -> None:
    """Run lm-eval's CLI on CPU on local tasks (from `include`), logging every sample into `out`."""
    cmd = [str(lm_eval), "--model", "hf", "--model_args", model_args, "--tasks", ",".join(tasks),
           "--include_path", str(include), "--device", "cpu", "--batch_size", str(batch), "--log_samples",
           "--output_path", str(out), *extra]
    print("running:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, env={**os.environ, **OFFLINE})


def latest_samples(out: Path, task: str) -> Path:
    """The newest per-sample log lm-eval wrote for `task` under `out`."""
    [found] = sorted(out.rglob(f"samples_{task}_*.jsonl"))[-1:]
    return found


def run_lm_eval(lm_eval: Path, model_dir: str, sets: dict[str, list[Sample]], work: Path, batch: int,
                reuse: bool = False) -> dict:
    """Per-dataset lm-eval results: acc, acc_norm and, per doc id, the option log-likelihoods. With
    `reuse`, an lm-eval output already in `work` (same items: checked by doc id) is read, not rerun."""
    tasks = work / "tasks"
    tasks.mkdir(parents=True, exist_ok=True)
    for key, samples in sets.items():
        path = work / f"{key}.jsonl"
        with path.open("w") as f:
            for s in samples:
                f.write(json.dumps({"id": s.id, "question": s.question, "choices": s.choices,
                                    "gold": LETTERS.index(gold_letter(s))}) + "\n")
        template = CLOZE_TEMPLATE.replace("{question}", "{{question}}").replace("\n", "\\n")
        (tasks / f"acqsynth_{key}.yaml").write_text(TASK_YAML.format(task=f"acqsynth_{key}", path=path,
                                                                       template=template))
    out = work / "lm_eval_out"
    if reuse and list(out.rglob("results_*.json")):
        print(f"reusing the lm-eval output in {out}", flush=True)
    else:
        lm_eval_cli(lm_eval, f"pretrained={model_dir},dtype=float32", [f"acqsynth_{k}" for k in sets], tasks, out,
                    batch)
    results: dict = {}
    for key in sets:
        [agg] = list(out.rglob("results_*.json"))[-1:]
        summary = json.loads(agg.read_text())["results"][f"acqsynth_{key}"]
        docs = {}
        for line in latest_samples(out, f"acqsynth_{key}").read_text().splitlines():
            rec = json.loads(line)
            lls = [float(r[0][0]) for r in rec["resps"]]
            docs[rec["doc"]["id"]] = {"loglik": lls, "acc": rec["acc"], "acc_norm": rec["acc_norm"]}
        if set(docs) != {s.id for s in sets[key]}:
            raise SystemExit(f"the lm-eval output in {out} is for other {key} items: rerun without --reuse-lm-eval")
        results[key] = {"acc": summary["acc,none"], "acc_norm": summary["acc_norm,none"], "docs": docs}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="items per dataset (default 500)")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--lm-eval-venv", default=".lmeval-venv", help="virtualenv for lm-eval (made if missing)")
    parser.add_argument("--work", default="runs/lm-eval-agreement")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--reuse-lm-eval", action="store_true", help="read lm-eval's output in --work if present")
    args = parser.parse_args()

    work = Path(args.work)
    sets = {key: items(name, args.n) for key, name in DATASETS.items()}
    model_dir = hf_model_path(args.model)
    lm_eval = ensure_venv(Path(args.lm_eval_venv))
    start = time.perf_counter()
    theirs = run_lm_eval(lm_eval, model_dir, sets, work, args.batch_size, reuse=args.reuse_lm_eval)
    lm_eval_s = time.perf_counter() - start

    student = load_student(args.model, batch_size=args.batch_size)
    figures: dict = {"model": args.model, "n": args.n, "lm_eval": LM_EVAL, "lm_eval_s": round(lm_eval_s, 1)}
    for key, samples in sets.items():
        start = time.perf_counter()
        ours = cloze_scores(student, samples)
        ours_s = time.perf_counter() - start
        docs = theirs[key]["docs"]
        their_ll = [np.array(docs[s.id]["loglik"]) for s in samples]
        their_pick, their_norm = pick_options(their_ll, [s.choices for s in samples])
        max_ll = max(float(np.abs(a - b).max()) for a, b in zip(ours.loglik, their_ll, strict=True))
        row = {
            "acqsynth_acc": float(ours.correct.mean()), "lm_eval_acc": float(theirs[key]["acc"]),
            "acqsynth_acc_norm": float(ours.correct_norm.mean()), "lm_eval_acc_norm": float(theirs[key]["acc_norm"]),
            "agree_acc": float((ours.pick == their_pick).mean()),
            "agree_acc_norm": float((ours.pick_norm == their_norm).mean()),
            "agree_correct": float(np.mean([(a == docs[s.id]["acc"]) and (b == docs[s.id]["acc_norm"])
                                            for s, a, b in zip(samples, ours.correct, ours.correct_norm,
                                                               strict=True)])),
            "max_abs_loglik_diff": max_ll, "acqsynth_s": round(ours_s, 1),
        }
        if key == "arc_easy":  # lm-eval's ARC prompt against the same prompt without "Question: "
            row["bare_prompt_acc_norm"] = float(cloze_scores(student, samples, template=BARE_TEMPLATE).correct_norm.mean())
        row["diff_acc_points"] = 100 * (row["acqsynth_acc"] - row["lm_eval_acc"])
        row["diff_acc_norm_points"] = 100 * (row["acqsynth_acc_norm"] - row["lm_eval_acc_norm"])
        figures[key] = row
        print(f"{key}: acc acqsynth {row['acqsynth_acc']:.4f} lm-eval {row['lm_eval_acc']:.4f} "
              f"({row['diff_acc_points']:+.2f} points); acc_norm acqsynth {row['acqsynth_acc_norm']:.4f} "
              f"lm-eval {row['lm_eval_acc_norm']:.4f} ({row['diff_acc_norm_points']:+.2f} points); "
              f"item agreement acc {row['agree_acc']:.4f}, acc_norm {row['agree_acc_norm']:.4f}; "
              f"max |Δ loglik| {max_ll:.2e}", flush=True)
        if "bare_prompt_acc_norm" in row:
            print(f"{key}: acc_norm with the bare prompt \"{{question}}\\nAnswer:\" {row['bare_prompt_acc_norm']:.4f}")
    rows = [figures[k] for k in sets]
    figures["goal_met"] = all(abs(r["diff_acc_points"]) <= 0.5 and abs(r["diff_acc_norm_points"]) <= 0.5
                              and r["agree_acc"] >= 0.99 and r["agree_acc_norm"] >= 0.99 for r in rows)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
