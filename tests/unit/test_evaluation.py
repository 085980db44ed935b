"""Generation-based evaluation: greedy accuracy, and pass@k over n sampled answers with the unbiased
estimator. The generator is a scripted stand-in whose answers we choose, so the expected numbers are
known exactly; the thing under test is `evaluate`."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pytest

from acqsynth.errors import AcqsynthError
from acqsynth.evaluation.accuracy import EvalConfig, evaluate
from acqsynth.models.interfaces import Completion, GenerationParams
from acqsynth.samples import Sample, to_dataset
from acqsynth.tasks import get_task

CORRECT_OF = [0, 1, 3, 5, 2]  # item i: this many of its 5 sampled answers are right


class ChosenAnswers:
    """Answers item i (its answer is 100 + i) right in its first CORRECT_OF[i] samples, wrong after."""

    name = "chosen"

    def generate(self, prompts: list, params: GenerationParams, seed_index: Sequence[int] | None = None) -> list:
        out = []
        for prompt in prompts:
            i = int(prompt[-1]["content"].split("item ")[1].split(" ")[0])
            texts = [f"#### {100 + i if j < CORRECT_OF[i] else -1}" for j in range(params.n)]
            out.append([Completion(text=t, prompt_tokens=10, completion_tokens=3, finish_reason="stop") for t in texts])
        return out


def data() -> object:
    return to_dataset([Sample(id=f"q{i}", question=f"What is item {i} plus 100?", answer=str(100 + i))
                       for i in range(len(CORRECT_OF))])


def test_pass_at_k_uses_the_unbiased_estimator() -> None:
    config = EvalConfig(samples=5, temperature=0.8, pass_k=[1, 2, 5], loglik=False, batch_size=2)
    rows, summary = evaluate(None, ChosenAnswers(), get_task("math"), data(), config, progress=False)
    c = np.array(CORRECT_OF)
    assert rows["n_correct"] == CORRECT_OF
    assert rows["pass1"] == pytest.approx((c / 5).tolist())
    assert summary.accuracy.mean == pytest.approx(np.mean(c / 5))
    for k in (1, 2, 5):
        want = np.mean([1 - math.comb(5 - ci, k) / math.comb(5, k) for ci in CORRECT_OF])
        assert summary.pass_at_k[str(k)].mean == pytest.approx(want)
    assert summary.pass_at_k["5"].mean == pytest.approx(0.8)  # every item but the one with no right answer


def test_greedy_accuracy_grades_the_first_answer() -> None:
    rows, summary = evaluate(None, ChosenAnswers(), get_task("math"), data(), EvalConfig(loglik=False), progress=False)
    assert rows["correct"] == [ci > 0 for ci in CORRECT_OF]
    assert summary.accuracy.mean == pytest.approx(0.8) and summary.pass_at_k == {}
    assert "n_correct" not in rows.column_names


def test_eval_config_errors_name_the_field() -> None:
    with pytest.raises(AcqsynthError, match="needs eval.temperature > 0"):
        EvalConfig(samples=4)
    with pytest.raises(AcqsynthError, match=r"eval.pass_k: every k must be in 1..eval.samples \(4\), got \[8\]"):
        EvalConfig(samples=4, temperature=0.7, pass_k=[1, 8])


def test_single_token_option_scoring_matches_one_pass_per_option(tmp_path) -> None:
    """The one-forward-per-question path picks exactly what scoring every option separately picks."""
    from tiny import make_tiny_model

    from acqsynth.evaluation.accuracy import LETTERS, _single_token_picks, option_loglik_predictions
    from acqsynth.models.causal_lm import load_causal_lm
    from acqsynth.models.hf_student import TransformersStudent

    model, tok = load_causal_lm(str(make_tiny_model(tmp_path / "m", vocab_size=600)))  # " A".." D" are one token
    student = TransformersStudent(model, tok, batch_size=3)
    task = get_task("mcqa")
    samples = [Sample(id=f"m{i}", question=f"Which number is {i} plus one?", answer="B",
                      choices=[str(i + d) for d in (0, 1, 2, 3)]) for i in range(7)]
    picks = option_loglik_predictions(student, task, samples)
    prefixes, conts = [], []
    for s in samples:
        prefix = student.format_prompt(task.prompt(s)) + "Answer:"
        for opt in task.option_continuations(s)[1]:
            prefixes.append(prefix)
            conts.append(opt)
    totals = np.array([float(x.logprobs.sum()) for x in student.score_texts(prefixes, conts)]).reshape(7, 4)
    assert picks == [LETTERS[int(row.argmax())] for row in totals]
    assert _single_token_picks(student, prefixes, conts, [i // 4 for i in range(28)], 7) == picks
