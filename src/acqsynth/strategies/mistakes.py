"""A mistake-targeted teacher (as in DataEnvGym): the current student answers the seed questions,
and the generator is shown each seed the student got wrong *together with the student's wrong
answer*, and asked for a new problem that practises what went wrong.

The student's answer reaches the prompt through the `{student_answer}` slot of a mistakes template
(`arithmetic-mistakes`, `math-mistakes`, or a user's file with that slot). A round whose student
answers every seed correctly has nothing to target and ends the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from acqsynth.errors import AcqsynthError
from acqsynth.evaluation.accuracy import EvalConfig, evaluate
from acqsynth.models.hf_generator import HFGenerator
from acqsynth.samples import Sample, to_dataset, write_samples
from acqsynth.strategies.base import RoundContext, RoundResult
from acqsynth.strategies.static import generate, generation_result

STUDENT_ANSWER_KEY = "student_answer"
"""Seed metadata key the prompt builder fills the `{student_answer}` slot from."""
MISTAKES_TEMPLATES = {"arithmetic": "arithmetic-mistakes", "math": "math-mistakes"}
"""The built-in mistakes template for a template kind or built-in template name."""
_MAX_ANSWER_CHARS = 400


def mistakes_template(template: str | None, kind: str) -> str:
    """The template a mistakes round uses: a built-in mistakes template or a user's file as given
    (the file must have a `{student_answer}` slot), else the mistakes version of the built-in
    template `template` or, when None, of the task's template kind."""
    if template is not None and template in MISTAKES_TEMPLATES.values():
        return template
    if template is not None and template not in MISTAKES_TEMPLATES and Path(template).is_file():
        if "{student_answer}" not in Path(template).read_text(encoding="utf-8"):
            raise AcqsynthError(f"generator template {template}: strategy 'mistakes' needs a {{student_answer}} slot")
        return template
    name = MISTAKES_TEMPLATES.get(template or kind)
    if name is None:
        raise AcqsynthError(
            f"strategy 'mistakes' has no built-in template for {template or kind!r}; set generator.template "
            "to a template file with a {student_answer} slot"
        )
    return name


def find_mistakes(
    student: Any, task: Any, seeds: Sequence[Sample], max_new_tokens: int, batch_size: int, progress: bool = True,
) -> tuple[list[Sample], datasets.Dataset]:
    """The student answers every seed greedily; returns the seeds it got wrong (each carrying its
    answer in metadata) and the graded table of all seeds."""
    gen = HFGenerator((student.model, student.tokenizer), batch_size=batch_size)
    config = EvalConfig(max_new_tokens=max_new_tokens, batch_size=batch_size, loglik=False)
    table, _ = evaluate(student, gen, task, to_dataset(list(seeds)), config, progress=progress)
    wrong = []
    for seed, pred, ok in zip(seeds, table["prediction"], table["correct"], strict=True):
        if not ok:
            answer = " ".join(pred.split())[:_MAX_ANSWER_CHARS] or "(no answer)"
            wrong.append(replace(seed, metadata={**seed.metadata, STUDENT_ANSWER_KEY: answer}))
    return wrong, table


def pick_mistakes(wrong: Sequence[Sample], n: int, seed: int) -> list[Sample]:
    """Up to `n` of the wrong seeds in a seeded random order (the generator cycles through them when
    it needs more samples than there are mistakes)."""
    order = np.random.default_rng(seed).permutation(len(wrong))[:n]
    return [wrong[i] for i in order]


class Mistakes:
    """`mistakes`: each round the generator is shown the seeds the current student got wrong."""

    generates = True
    multi_round = True
    uses_acquisition = False

    def generator_template(self, template: str | None, kind: str) -> str | None:
        return mistakes_template(template, kind)

    def collect(self, ctx: RoundContext) -> RoundResult:
        setup = ctx.setup()
        seeds = setup.seeds
        ev = ctx.config.eval
        ctx.log(f"the student answers {len(seeds)} seeds; the generator sees its wrong answers")
        wrong, table = find_mistakes(ctx.student, ctx.task, seeds, ev.max_new_tokens, ev.batch_size,
                                     progress=ctx.progress)
        write_samples(table, ctx.out / "mistakes.jsonl")
        if not wrong:
            ctx.log("the student answered every seed correctly: no mistakes to target")
            return RoundResult([], {"stop_reason": "no mistakes left"})
        run = generate(ctx, setup, pick_mistakes(wrong, ctx.n, ctx.generation_seed), ctx.n)
        return generation_result(ctx, run, list(run.accepted))
