"""Cross-check a finished cell's generate-and-grade accuracy against lm-evaluation-harness.

The pool and transfer studies measure a student by generating an answer to each eval item and grading it.
Here lm-eval repeats that measurement with its own code: it loads the same weights (the cell's student
base plus the round's LoRA adapter, through peft), renders each prompt with the tokenizer's chat template
itself (`--apply_chat_template`), generates greedily with the same token budget, and grades with its GSM8K
rules (`strict-match`: the number after "####"; `flexible-extract`: the last number; exact match after
removing commas, "$" and a trailing period). The user message is the task's instruction filled with the
question, as the cell's config gives it.

Printed per cell: acqsynth's accuracy (its eval.jsonl), lm-eval's strict and flexible accuracy, the same
generations graded by acqsynth's grader (which separates generation from grading), the share of items
whose generated text is identical, the item agreement of the verdicts, and every disagreement; the last
line is one JSON object with every figure. lm-eval runs from its own virtualenv (made on first use).

    .venv/bin/python experiments/lm_eval_generate_agreement.py runs/pool-2d/cells/diverse-loss/b0512-s1 \\
        [more cell dirs] [--round N] [--lm-eval-venv .lmeval-venv]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import yaml

from acqsynth.models.aliases import hf_model_path
from acqsynth.samples import Sample
from acqsynth.tasks import get_task

sys.path.insert(0, str(Path(__file__).parent))
from lm_eval_agreement import LM_EVAL, ensure_venv, latest_samples, lm_eval_cli  # noqa: E402

TASK_YAML = r"""task: {task}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {path}
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{answer}}}}"
generation_kwargs:
  until: []
  do_sample: false
  temperature: 0.0
  max_gen_toks: {max_new_tokens}
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "#### (\\-?[0-9\\.\\,]+)"
      - function: take_first
  - name: flexible-extract
    filter:
      - function: regex
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore: [",", "\\$", "(?s).*#### ", "\\.$"]
"""
"""A local generate_until task with lm-eval's own GSM8K filters and metric (its gsm8k.yaml)."""


def last_round(cell: Path) -> int:
    """The cell's last round that saved an adapter: the student its result is measured on."""
    rounds = sorted(int(p.parent.parent.name.split("-")[1]) for p in cell.glob("round-*/adapter/adapter_config.json"))
    if not rounds:
        raise SystemExit(f"{cell} has no round with an adapter: give a finished cell directory")
    return rounds[-1]


def cell_setup(cell: Path, round_: int | None) -> tuple[dict, Path, list[dict]]:
    """The cell's config, the round's adapter and its eval rows (with acqsynth's predictions and verdicts)."""
    config = yaml.safe_load((cell / "config.yaml").read_text())
    rdir = cell / f"round-{last_round(cell) if round_ is None else round_:02d}"
    adapter, rows_file = rdir / "adapter", rdir / "eval.jsonl"
    for path in (adapter / "adapter_config.json", rows_file):
        if not path.exists():
            raise SystemExit(f"{path} is missing: give a finished cell and a round that trained an adapter")
    rows = [json.loads(line) for line in rows_file.read_text().splitlines() if line.strip()]
    return config, adapter, rows


def user_message(task: object, row: dict) -> str:
    """The task's single user turn for an item; a system turn would need lm-eval's --system_instruction."""
    sample = Sample(id=row["id"], question=row["question"], answer=row["answer"])
    messages = task.prompt(sample)  # type: ignore[attr-defined]
    if [m["role"] for m in messages] != ["user"]:
        raise SystemExit(f"the task's prompt has turns {[m['role'] for m in messages]}; this check handles one user turn")
    return messages[0]["content"]


def run_lm_eval(lm_eval: Path, base: str, adapter: Path, rows: list[dict], task: object, max_new_tokens: int,
                work: Path, batch: int, limit: int | None) -> dict[str, dict]:
    """lm-eval's response and strict/flexible verdicts per item id."""
    work.mkdir(parents=True, exist_ok=True)
    data = work / "items.jsonl"
    with data.open("w") as f:
        for row in rows:
            f.write(json.dumps({"id": row["id"], "prompt": user_message(task, row), "answer": row["answer"]}) + "\n")
    tasks = work / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "acqsynth_cell.yaml").write_text(TASK_YAML.format(task="acqsynth_cell", path=data,
                                                                max_new_tokens=max_new_tokens))
    out = work / "lm_eval_out"
    lm_eval_cli(lm_eval, f"pretrained={base},peft={adapter},dtype=float32", ["acqsynth_cell"], tasks, out, batch,
                "--apply_chat_template", *(["--limit", str(limit)] if limit else []))
    found: dict[str, dict] = {}
    for line in latest_samples(out, "acqsynth_cell").read_text().splitlines():
        rec = json.loads(line)
        item = found.setdefault(rec["doc"]["id"], {"text": rec["resps"][0][0]})
        item[rec["filter"]] = bool(rec["exact_match"])
    return found


def compare(rows: list[dict], theirs: dict[str, dict], task: object) -> dict:
    """Accuracy of both tools over the items lm-eval answered, text identity and verdict agreement."""
    rows = [r for r in rows if r["id"] in theirs]
    n = len(rows)
    ours = [bool(r["correct"]) for r in rows]
    strict = [theirs[r["id"]]["strict-match"] for r in rows]
    flexible = [theirs[r["id"]]["flexible-extract"] for r in rows]
    regraded = [task.grade(theirs[r["id"]]["text"], Sample(id=r["id"], question=r["question"],  # type: ignore[attr-defined]
                                                          answer=r["answer"])).correct for r in rows]
    same_text = [theirs[r["id"]]["text"].strip() == (r["prediction"] or "").strip() for r in rows]
    disagreements = [{"id": r["id"], "answer": r["answer"], "acqsynth": r["prediction"], "acqsynth_correct": o,
                      "lm_eval": theirs[r["id"]]["text"], "lm_eval_strict": s}
                     for r, o, s in zip(rows, ours, strict, strict=True) if o != s]
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    return {
        "n": n,
        "acqsynth": mean(ours), "lm_eval_strict": mean(strict), "lm_eval_flexible": mean(flexible),
        "lm_eval_text_acqsynth_grader": mean(regraded),
        "diff_strict_points": 100 * (mean(ours) - mean(strict)),
        "same_text": mean(same_text),
        "agree_strict": mean([o == s for o, s in zip(ours, strict, strict=True)]),
        "agree_regraded": mean([o == g for o, g in zip(ours, regraded, strict=True)]),
        "disagreements": disagreements,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cells", nargs="+", type=Path, help="finished cell directories (runs/EXP/cells/METHOD/CELL)")
    parser.add_argument("--round", type=int, default=None,
                        help="the round whose adapter and eval are checked (default: each cell's last)")
    parser.add_argument("--lm-eval-venv", default=".lmeval-venv", help="virtualenv for lm-eval (made if missing)")
    parser.add_argument("--work", type=Path, default=Path("runs/lm-eval-generate"))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--limit", type=int, default=None, help="only the first N items (a quick trial)")
    args = parser.parse_args()

    lm_eval = ensure_venv(Path(args.lm_eval_venv))
    figures: dict = {"lm_eval": LM_EVAL, "cells": {}}
    for cell in args.cells:
        config, adapter, rows = cell_setup(cell, args.round)
        print(f"{cell}: {adapter.parent.name}", flush=True)
        task = get_task(config["data"]["task"])
        start = time.perf_counter()
        theirs = run_lm_eval(lm_eval, hf_model_path(config["student"]["model"]), adapter, rows, task,
                             int(config["eval"]["max_new_tokens"]), args.work / cell.parent.name / cell.name / adapter.parent.name,
                             args.batch_size, args.limit)
        row = compare(rows, theirs, task)
        row["lm_eval_s"] = round(time.perf_counter() - start, 1)
        row["round"] = adapter.parent.name
        figures["cells"][str(cell)] = row
        print(f"{cell}: n {row['n']}; accuracy acqsynth {row['acqsynth']:.4f}, lm-eval strict "
              f"{row['lm_eval_strict']:.4f} ({row['diff_strict_points']:+.2f} points), flexible "
              f"{row['lm_eval_flexible']:.4f}; lm-eval's texts by acqsynth's grader {row['lm_eval_text_acqsynth_grader']:.4f}; "
              f"identical texts {row['same_text']:.4f}; verdict agreement {row['agree_strict']:.4f}", flush=True)
        for d in row["disagreements"]:
            print(f"  {d['id']} (answer {d['answer']}): acqsynth {d['acqsynth']!r} {d['acqsynth_correct']}; "
                  f"lm-eval {d['lm_eval']!r} {d['lm_eval_strict']}")
    rows = list(figures["cells"].values())
    figures["goal_met"] = all(abs(r["diff_strict_points"]) <= 0.5 and r["agree_strict"] >= 0.99 for r in rows)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
