"""The generation pipeline end to end on a scripted generator: exact targets and budgets, reasons
for every rejection, hygiene, self-consistency labels, and replay from the cache after a stop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from embedders import HashingEmbedder
from scripted_generator import ScriptedGenerator, problem

from acqsynth.errors import AcqsynthError
from acqsynth.generation.cache import CachedGenerator, CompletionCache
from acqsynth.generation.hygiene import HygieneConfig, HygieneIndex
from acqsynth.generation.labelling import LabelConfig
from acqsynth.generation.pipeline import GenerateConfig, generate_samples, reason_category, seed_order
from acqsynth.generation.prompts import PromptBuilder
from acqsynth.samples import Sample, read_samples
from acqsynth.tasks import get_task

SEEDS = [Sample(id=f"seed/{i}", question=f"A train leaves station {i} at {i} o'clock. When does it arrive?",
                answer=str(i), reasoning="r") for i in range(6)]


def run(out: Path, cache: Path | None = None, evals=(), **cfg):
    emb = HashingEmbedder()
    config = GenerateConfig(**{"num_samples": 12, "batch_size": 4, **cfg})
    cache = cache or out / "cache"
    gen = CachedGenerator(ScriptedGenerator(), CompletionCache(cache / "g.jsonl"))
    ans = CachedGenerator(ScriptedGenerator(), CompletionCache(cache / "a.jsonl"))
    pool = HygieneIndex("seed", config.hygiene, emb)
    pool.add([s.id for s in SEEDS], [s.question for s in SEEDS])
    result = generate_samples(seeds=SEEDS, task=get_task("math"), generator=gen, config=config, output=out,
                              prompt_builder=PromptBuilder("math"), answer_model=ans, embedder=emb,
                              seed_pool=pool, evals=evals)
    gen.cache.close()
    ans.cache.close()
    stats = json.loads((out / "stats.json").read_text())
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    return result, stats, rejected, gen


def test_delivers_exactly_the_target_and_explains_every_rejection(tmp_path):
    result, stats, rejected, _ = run(tmp_path)
    samples = read_samples(tmp_path / "samples.jsonl")
    assert len(samples) == 12 == stats["accepted"] and stats["stop_reason"] == "done"
    assert len(set(samples["id"])) == 12 and len(set(samples["question"])) == 12
    assert stats["generated"] == stats["accepted"] + len(rejected)  # nothing silently dropped
    reasons = {r["reason"].split(" (")[0] for r in rejected}
    assert "unclosed tag <reasoning>" in reasons  # attempts 5 and 12
    assert any(r.startswith("duplicate of gen-") for r in reasons)  # attempt 4 repeats attempt 3 (a % 11 == 4)
    assert all(r["completion"] for r in rejected if r["stage"] == "parse")  # raw completion kept
    assert json.loads(samples[0]["metadata"] if isinstance(samples[0]["metadata"], str) else "{}")["seed_id"]


def test_generated_budget_stops_exactly(tmp_path):
    _, stats, rejected, gen = run(tmp_path, num_samples=50, max_generated=10)
    assert stats["generated"] == 10 == gen.inner.calls and stats["stop_reason"] == "budget: generated"
    assert stats["accepted"] + len(rejected) == 10


def test_token_budget_is_never_exceeded(tmp_path):
    _, stats, _, _ = run(tmp_path, num_samples=50, max_tokens=300, max_new_tokens=40,
                         label=LabelConfig(method="self-consistency", k=4, max_new_tokens=10))
    assert stats["stop_reason"] == "budget: tokens"
    assert 0 < stats["completion_tokens"] <= 300
    assert 300 - stats["completion_tokens"] < 40 + 4 * 10  # it stopped only when the worst case no longer fit


def test_a_stopped_run_resumes_from_the_cache_to_the_uninterrupted_result(tmp_path):
    _, full, _, _ = run(tmp_path / "full", label=LabelConfig(method="self-consistency", k=4))
    cache = tmp_path / "cache"
    run(tmp_path / "resumed", cache=cache, max_generated=7, label=LabelConfig(method="self-consistency", k=4))
    _, resumed, _, gen = run(tmp_path / "resumed", cache=cache, label=LabelConfig(method="self-consistency", k=4))
    assert gen.hits == 7 and gen.inner.calls == full["generated"] - 7
    for name in ("samples.jsonl", "rejected.jsonl"):
        assert (tmp_path / "resumed" / name).read_text() == (tmp_path / "full" / name).read_text()
    drop = ("wall_s", "models", "config")
    assert {k: v for k, v in resumed.items() if k not in drop} == {k: v for k, v in full.items() if k not in drop}


def test_contaminated_and_seed_duplicates_are_removed_with_the_nearest_item(tmp_path):
    # the scripted questions share one template, so the hashing embedder's cosines are all high:
    # this test checks the exact and n-gram paths (the embedding path is tested in test_hygiene.py)
    config = HygieneConfig(decontam_embedding_threshold=None)
    ev = HygieneIndex("eval:toy", config, HashingEmbedder())
    ev.add(["toy/eval/1"], [problem(2)[0]])  # attempt 2 writes exactly this question
    _, stats, rejected, _ = run(tmp_path, evals=[ev], hygiene=config)
    hit = next(r for r in rejected if r["attempt"] == 2)
    assert hit["stage"] == "hygiene" and hit["reason"] == "contaminated: toy/eval/1 in eval:toy (exact 1.00)"
    assert hit["nearest"]["item_id"] == "toy/eval/1" and hit["nearest"]["item_text"] == problem(2)[0]
    assert stats["hygiene_removed"]["contaminated (eval:toy)"] == 1


def test_self_consistency_relabels_wrong_generator_answers(tmp_path):
    _, stats, _, _ = run(tmp_path, label=LabelConfig(method="self-consistency", k=4))
    samples = read_samples(tmp_path / "samples.jsonl")
    by_q = {q: a for q, a in zip(samples["question"], samples["answer"], strict=True)}
    for a in range(40):
        q, truth = problem(a)
        if q in by_q:
            assert by_q[q] == str(truth)  # the scripted generator's wrong answers (a % 7 == 3) were fixed
    assert stats["label"]["agreement_mean"] == 0.75
    assert stats["label"]["generator_agrees"] < 12  # some were relabelled


def test_completions_cut_off_by_the_length_limit_say_so(tmp_path):
    _, stats, rejected, _ = run(tmp_path, num_samples=4, max_generated=6, max_new_tokens=20)
    assert stats["accepted"] == 0 and len(rejected) == 6
    assert {r["reason"] for r in rejected} == {"cut off at max_new_tokens: unclosed tag <question>"}
    assert stats["rejection_reasons"] == {"cut off at max_new_tokens": 6}
    assert {r["finish_reason"] for r in rejected} == {"length"}


def test_seed_order_visits_every_seed_once_per_pass():
    assert sorted(seed_order(5, a, 0) for a in range(5)) == list(range(5))
    assert sorted(seed_order(5, a, 0) for a in range(5, 10)) == list(range(5))
    assert [seed_order(5, a, 1) for a in range(5)] != [seed_order(5, a, 0) for a in range(5)]


def test_reason_categories_drop_details():
    assert reason_category("answer 'D' is not among the choices") == "answer … is not among the choices"
    assert reason_category("over-long: 9001 characters > 8000") == "over-long"
    assert reason_category("self-consistency: agreement 0.25 < 0.50") == "self-consistency: agreement"
    assert reason_category("answer code does not compile: SyntaxError") == "answer code does not compile"


def test_bad_config_is_refused():
    with pytest.raises(AcqsynthError, match="num_samples must be >= 1"):
        GenerateConfig(num_samples=0)
    with pytest.raises(AcqsynthError, match="no seed samples"):
        generate_samples(seeds=[], task=get_task("math"), generator=None, config=GenerateConfig(),  # type: ignore[arg-type]
                         output=Path("/nonexistent"), prompt_builder=PromptBuilder("math"))
