"""The completion cache: keys, hits, torn lines after a crash, and the budget ledger."""

from __future__ import annotations

import json

import pytest
from scripted_generator import ScriptedGenerator

from acqsynth.errors import AcqsynthError
from acqsynth.generation.budget import Budget, Ledger
from acqsynth.generation.cache import CachedGenerator, CompletionCache, completion_key
from acqsynth.models.interfaces import Completion, GenerationParams

PROMPT = [{"role": "user", "content": "Write <question>...</question>"}]


def test_key_depends_on_everything_that_decides_the_samples():
    p = GenerationParams()
    base = completion_key("m", PROMPT, p, 0)
    assert base == completion_key("m", [dict(PROMPT[0])], GenerationParams(), 0)
    others = [
        completion_key("m2", PROMPT, p, 0),
        completion_key("m", [{"role": "user", "content": "other"}], p, 0),
        completion_key("m", PROMPT, GenerationParams(temperature=0.5), 0),
        completion_key("m", PROMPT, GenerationParams(seed=1), 0),
        completion_key("m", PROMPT, GenerationParams(n=2), 0),
        completion_key("m", PROMPT, p, 1),
    ]
    assert len({base, *others}) == 7


def test_cached_generator_asks_only_for_misses_and_survives_reopen(tmp_path):
    inner = ScriptedGenerator()
    gen = CachedGenerator(inner, CompletionCache(tmp_path / "c.jsonl"))
    p = GenerationParams()
    first = gen.generate([PROMPT, PROMPT], p, seed_index=[0, 1])
    assert inner.calls == 2 and gen.last_fresh == [True, True]
    again = gen.generate([PROMPT, PROMPT, PROMPT], p, seed_index=[1, 2, 0])
    assert inner.calls == 3 and gen.last_fresh == [False, True, False]
    assert again[0] == first[1] and again[2] == first[0]
    gen.cache.close()
    reopened = CachedGenerator(ScriptedGenerator(), CompletionCache(tmp_path / "c.jsonl"))
    assert reopened.generate([PROMPT], p, seed_index=[2]) == [again[1]]
    assert reopened.inner.calls == 0 and reopened.hits == 1


def test_torn_last_line_is_cut_off_and_appends_stay_whole(tmp_path):
    path = tmp_path / "c.jsonl"
    cache = CompletionCache(path)
    cache.put("a", [Completion("one", 1, 1, "stop")])
    cache.close()
    with path.open("ab") as f:
        f.write(b'{"key": "b", "completions": [{"text": "tw')  # a write cut short by SIGKILL
    cache = CompletionCache(path)
    assert "a" in cache and "b" not in cache and len(cache) == 1
    cache.put("c", [Completion("three", 1, 1, "stop")])
    cache.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["key"] for line in lines] == ["a", "c"]


def test_failed_completions_are_not_cached_and_corrupt_records_are_named(tmp_path):
    cache = CompletionCache(tmp_path / "c.jsonl")
    cache.put("x", [Completion("", 0, 0, "error")])
    assert "x" not in cache and cache.get("x") is None
    cache.close()
    (tmp_path / "bad.jsonl").write_text('{"key": "a", "completions": []}\nnot json\n')
    with pytest.raises(AcqsynthError, match=r"bad.jsonl:2: corrupt cache record"):
        CompletionCache(tmp_path / "bad.jsonl")


def test_ledger_never_plans_past_a_budget():
    led = Ledger(Budget(accepted=5, generated=10, tokens=1000))
    assert led.room(8, worst_tokens=100) == 8
    led.generated = 7
    assert led.room(8, worst_tokens=100) == 3  # generated budget
    led.record("m", [Completion("x", 5, 450, "stop"), Completion("y", 5, 300, "stop")], 1.0, [True, False])
    assert led.tokens == 750 and led.room(8, worst_tokens=100) == 2  # 250 tokens left
    assert led.usage["m"].cached == 1 and led.usage["m"].tokens_per_s() == 450.0
    with pytest.raises(AcqsynthError, match="must be >= 1"):
        Budget(accepted=0)


def test_misses_are_cached_chunk_by_chunk(tmp_path):
    class Failing(ScriptedGenerator):
        def generate(self, prompts, params, seed_index=None):
            if 3 in (seed_index or []):
                raise RuntimeError("server died")
            return super().generate(prompts, params, seed_index)

    gen = CachedGenerator(Failing(), CompletionCache(tmp_path / "c.jsonl"), chunk_size=2)
    with pytest.raises(RuntimeError):
        gen.generate([PROMPT] * 5, GenerationParams(), seed_index=[0, 1, 2, 3, 4])
    assert len(gen.cache) == 2  # the first chunk (0, 1) survived the failure of the second


def _put_many(path: str, prefix: str, n: int) -> None:
    cache = CompletionCache(path)
    for i in range(n):
        cache.put(f"{prefix}{i}", [Completion(f"text {prefix}{i} " + "x" * 3000, 1, 1, "stop")])
    cache.close()


def test_processes_sharing_the_cache_see_each_others_records_and_never_tear_a_line(tmp_path):
    import multiprocessing

    path = tmp_path / "c.jsonl"
    early = CompletionCache(path)  # opened before anyone wrote
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_put_many, args=(str(path), p, 150)) for p in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    lines = path.read_bytes().splitlines()
    assert len(lines) == 300 and sorted(json.loads(line)["key"] for line in lines) == sorted(
        f"{p}{i}" for p in "ab" for i in range(150))
    got = early.get("b149")  # written by another process after this cache was opened
    assert got is not None and got[0].text.startswith("text b149")
    # a writer killed mid-record leaves a torn tail; the next append cuts it off under the lock
    with path.open("ab") as f:
        f.write(b'{"key": "torn", "completions": [{"te')
    early.put("after", [Completion("whole", 1, 1, "stop")])
    early.close()
    reopened = CompletionCache(path)
    assert "after" in reopened and "torn" not in reopened and len(reopened) == 301
