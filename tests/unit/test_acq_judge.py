"""LLM-as-judge: strict rating parsing, prompting, retries and NaN handling against naive references."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsynth.acquisition.base import ScoringContext
from acqsynth.acquisition.judge import REMINDER, RUBRICS, LLMJudge, judge_prompt, parse_rating
from acqsynth.errors import AcqsynthError
from acqsynth.models.hf_generator import HFGenerator
from acqsynth.models.interfaces import Completion, GenerationParams
from acqsynth.samples import Sample


def naive_parse(text: str) -> int | None:
    """The documented rule by hand: scan `rating:` occurrences from the last one back; the last one
    followed by whitespace and an ASCII integer (not a decimal) decides; it must be 1..10."""
    positions = [
        i for i in range(len(text)) if text[i : i + 7].isascii() and text[i : i + 7].lower() == "rating:"
    ]
    for pos in reversed(positions):
        j = pos + len("rating:")
        while j < len(text) and text[j].isspace():
            j += 1
        k = j
        while k < len(text) and text[k] in "0123456789":
            k += 1
        if k == j:
            continue
        if k < len(text) and text[k] in ".," and k + 1 < len(text) and text[k + 1] in "0123456789":
            continue
        n = int(text[j:k])
        return n if 1 <= n <= 10 else None
    return None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Rating: 7", 7),
        ("The problem is easy.\nRating: 2", 2),
        ("Rating: 3\nOn reflection it is harder.\nRating: 8", 8),  # several: the last one decides
        ("Rating: 4\nRating: 11", None),  # the last one decides even when it is out of range
        ("Rating: 11", None),
        ("Rating: 0", None),
        ("Rating: 10", 10),
        ("Rating: 1", 1),
        ("Rating: 010", 10),
        ("rating: 6", 6),
        ("RATING:9", 9),
        ("Rating:\n  5", 5),
        ("rating : 7", None),  # a space before the colon is not the format
        ("Rating: 7/10", 7),
        ("Rating: 7.5", None),
        ("Rating: 7,5", None),
        ("Rating: 7, since it needs two steps", 7),
        ("Rating: seven", None),
        ("**Rating:** 7", None),
        ("I would rate this 7 out of 10.", None),
        ("", None),
        ("Rating: \u0667", None),  # Arabic-Indic seven
        ("Rating: \uff17", None),  # fullwidth seven
        ("Rating: \u0967\u0966", None),  # Devanagari ten
        ("Rating: 5\nRating: \u0667", 5),  # non-ASCII digits are no match, so the first one is the last match
    ],
)
def test_parse_rating_tricky_cases(text, expected):
    assert parse_rating(text) == expected
    assert naive_parse(text) == expected


FRAGMENTS = [
    "Rating:",
    "rating:",
    "RATING: ",
    "rating :",
    " ",
    "\n",
    "7",
    "10",
    "11",
    "0",
    ".",
    ",",
    "5",
    "/10",
    "x",
    "**",
    "\u0667",
    "Rating: 3",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(FRAGMENTS), max_size=12))
def test_parse_rating_equals_naive_scan(parts):
    text = "".join(parts)
    assert parse_rating(text) == naive_parse(text)


class ScriptedJudge:
    """A deterministic judge model double: the reply depends only on the question in the prompt and on
    how many times it was asked before (the number of assistant turns already in the prompt)."""

    name = "scripted"

    def __init__(self, replies: dict[str, list[str]]) -> None:
        self.replies = replies
        self.calls: list[tuple[list, GenerationParams]] = []

    def reply(self, prompt) -> str:
        first = prompt[0]["content"]
        (question,) = [q for q in self.replies if f"Problem:\n{q}\n" in first]
        attempt = sum(m["role"] == "assistant" for m in prompt)
        script = self.replies[question]
        return script[min(attempt, len(script) - 1)]

    def generate(self, prompts, params):
        self.calls.append((list(prompts), params))
        return [[Completion(self.reply(p), 10, 5, "stop") for _ in range(params.n)] for p in prompts]


SCRIPT = {
    "What is 12 + 7?": ["Easy.\nRating: 1"],
    "Prove Fermat's last theorem for n = 3.": ["Hard.\nRating: 10"],
    "How many clips did Natalia sell?": ["It needs two steps, I guess", "Rating: 4"],
    "Which gas do plants absorb?": ["x" * 500],
    "def add(a, b):": ["Rating: 3\nActually no.\nRating: 6"],
    "Sort a list.": ["Rating: 12", "Rating: 12", "Rating: 2"],
}


def make_samples() -> list[Sample]:
    return [Sample(id=f"s{i}", question=q, answer=f"answer {i}") for i, q in enumerate(SCRIPT)]


def naive_judge_score(judge: ScriptedJudge, sample: Sample, acq: LLMJudge) -> float:
    """One sample at a time: ask, re-ask with the reminder while unparsable, map N to (N-1)/9."""
    prompt = judge_prompt(sample, acq.rubric, acq.include_answer)
    text = judge.reply(prompt)
    rating = naive_parse(text)
    for _ in range(acq.retries):
        if rating is not None:
            break
        prompt = [*prompt, {"role": "assistant", "content": text}, {"role": "user", "content": REMINDER}]
        text = judge.reply(prompt)
        rating = naive_parse(text)
    return float("nan") if rating is None else (rating - 1) / 9


@pytest.mark.parametrize("retries", [0, 1, 2, 3])
def test_scores_equal_naive_one_at_a_time(retries):
    samples = make_samples()
    judge = ScriptedJudge(SCRIPT)
    acq = LLMJudge(retries=retries)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = acq.score(samples, ScoringContext(judge=judge))
    want = [naive_judge_score(judge, s, acq) for s in samples]
    np.testing.assert_allclose(got, want, atol=1e-5, equal_nan=True)
    assert got.dtype == np.float64


def test_retry_path_batching_and_nan_warning():
    samples = make_samples()
    judge = ScriptedJudge(SCRIPT)
    with pytest.warns(UserWarning) as record:
        got = LLMJudge(max_new_tokens=32).score(samples, ScoringContext(judge=judge, seed=5))
    # first ask: every sample in one call; the retry: only the three unparsable ones, in one call
    assert [len(prompts) for prompts, _ in judge.calls] == [6, 3]
    for _, params in judge.calls:
        assert (params.temperature, params.seed, params.max_new_tokens, params.n) == (0.0, 5, 32, 1)
    retried = judge.calls[1][0]
    assert [p[0]["content"] for p in retried] == [
        judge_prompt(samples[i], "difficulty")[0]["content"] for i in (2, 3, 5)
    ]
    assert retried[0][1] == {"role": "assistant", "content": "It needs two steps, I guess"}
    assert retried[0][2] == {"role": "user", "content": REMINDER}
    np.testing.assert_allclose(got[[0, 1, 2, 4]], [0.0, 1.0, 3 / 9, 5 / 9])
    assert np.isnan(got[3]) and np.isnan(got[5])
    (warning,) = record
    message = str(warning.message)
    assert "2 of 6" in message
    assert "'" + "x" * 200 + "'" in message and "x" * 201 not in message


def test_each_retry_continues_the_conversation_with_only_the_unparsable():
    samples = make_samples()
    judge = ScriptedJudge(SCRIPT)
    with pytest.warns(UserWarning, match="1 of 6 ratings were unparsable after 2 retries"):
        got = LLMJudge(retries=2).score(samples, ScoringContext(judge=judge))
    assert [len(prompts) for prompts, _ in judge.calls] == [6, 3, 2]
    last = judge.calls[2][0][1]  # "Sort a list." on its second retry
    assert [m["role"] for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert [m["content"] for m in last[1:]] == ["Rating: 12", REMINDER, "Rating: 12", REMINDER]
    assert got[5] == pytest.approx(1 / 9)


def test_no_warning_when_all_parse():
    samples = [Sample(id="a", question="What is 12 + 7?", answer="19")]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = LLMJudge().score(samples, ScoringContext(judge=ScriptedJudge(SCRIPT)))
    assert got.tolist() == [0.0]


@settings(max_examples=30, deadline=None)
@given(st.permutations(range(len(SCRIPT))))
def test_scores_follow_samples_in_any_order(order):
    samples = make_samples()
    acq = LLMJudge()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = acq.score(samples, ScoringContext(judge=ScriptedJudge(SCRIPT)))
        shuffled = acq.score([samples[i] for i in order], ScoringContext(judge=ScriptedJudge(SCRIPT)))
    np.testing.assert_array_equal(shuffled, base[list(order)])
    finite = base[~np.isnan(base)]
    assert ((finite >= 0) & (finite <= 1)).all()


@pytest.mark.parametrize(
    "rubric", ["difficulty", "quality", "How funny is the problem? 1 = dull, 10 = hilarious."]
)
def test_prompts_state_rubric_question_and_format(rubric):
    sample = Sample(
        id="m", question="Which gas do plants absorb?", answer="B", choices=["oxygen", "carbon dioxide"]
    )
    judge = ScriptedJudge({"Which gas do plants absorb?": ["Rating: 5"]})
    LLMJudge(rubric=rubric).score([sample], ScoringContext(judge=judge))
    ((prompts, _),) = judge.calls
    (content,) = [m["content"] for m in prompts[0]]
    assert RUBRICS.get(rubric, rubric) in content
    assert "Which gas do plants absorb?" in content
    assert "A. oxygen\nB. carbon dioxide" in content
    assert "Reference answer:\nB" in content
    assert "Rating: N" in content and "1 to 10" in content


def test_include_answer_false_hides_the_answer():
    sample = Sample(id="a", question="What is 12 + 7?", answer="nineteen", reasoning="twelve plus seven")
    shown = judge_prompt(sample, "quality", include_answer=True)[0]["content"]
    hidden = judge_prompt(sample, "quality", include_answer=False)[0]["content"]
    assert "twelve plus seven\nnineteen" in shown
    assert "nineteen" not in hidden and "twelve plus seven" not in hidden


def test_missing_judge_and_bad_parameters():
    samples = make_samples()
    with pytest.raises(AcqsynthError, match="llm-judge.*--judge"):
        LLMJudge().score(samples, ScoringContext())
    with pytest.raises(AcqsynthError, match="retries"):
        LLMJudge(retries=-1).score(samples, ScoringContext(judge=ScriptedJudge(SCRIPT)))
    with pytest.raises(AcqsynthError, match="rubric"):
        LLMJudge(rubric="  ").score(samples, ScoringContext(judge=ScriptedJudge(SCRIPT)))
    judge = ScriptedJudge(SCRIPT)
    assert LLMJudge().score([], ScoringContext(judge=judge)).shape == (0,)
    assert judge.calls == []


def test_real_tiny_generator_gives_nan_with_warning_deterministically(tiny_model_dir):
    judge = HFGenerator(str(tiny_model_dir), device="cpu", batch_size=4)
    samples = make_samples()[:3]
    acq = LLMJudge(max_new_tokens=6)
    runs = []
    for _ in range(2):
        with pytest.warns(UserWarning, match="3 of 3 ratings were unparsable") as record:
            runs.append(acq.score(samples, ScoringContext(judge=judge, seed=1)))
        runs.append(str(record[0].message))
    assert np.isnan(runs[0]).all() and runs[0].shape == (3,)
    assert runs[1] == runs[3]  # same raw completion shown: greedy decoding is deterministic
