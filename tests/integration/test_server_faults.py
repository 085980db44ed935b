"""Faults from model servers: a real llama.cpp server behind a fault-injecting proxy (tests/fault_proxy.py).

The generator retries drops, 429/500/503 answers, slow, cut-off and malformed answers with backoff
and a bounded number of attempts, keeps to its concurrency limit, and either completes or fails with
a clear error after caching what it got; `acqsynth generate` then resumes from its cache, also after
the server was killed mid-run and restarted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_proxy import FaultProxy
from llama_server import LlamaServer

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.openai_generator import LLAMA_CPP_SERVER_PLAIN_SAMPLING as PLAIN_SAMPLING
from acqsynth.models.openai_generator import OpenAIGenerator, PartialGenerationError
from acqsynth.samples import read_samples

pytestmark = [pytest.mark.integration, pytest.mark.server]
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'acqsynth[server]'")

PROMPTS = [[{"role": "user", "content": f"Say a word about the number {i}."}] for i in range(6)]
PARAMS = GenerationParams(max_new_tokens=8, temperature=0.0, n=1, seed=0)  # greedy: the same text every time
FAILURES = ["drop", "429", "500", "503", "truncated", "cut", "malformed", "html", "shape"]
"""Every fault that makes an attempt fail (`slow` does not)."""
SURVIVED: dict[str, int] = {}
"""Faults injected into runs that then completed, by kind (printed at the end of the module)."""


def texts(results) -> list[list[str]]:
    return [[c.text for c in cs] for cs in results]


def start_server(tmp_path_factory: pytest.TempPathFactory, name: str) -> LlamaServer:
    pytest.importorskip("llama_cpp.server.app", reason="the llama.cpp server extras are missing: pip install 'acqsynth[server]'")
    # one thread, also for prompts: on a busy machine llama.cpp's spinning thread pool costs seconds per request
    server = LlamaServer(tmp_path_factory.mktemp(name) / "server.log", threads=1)
    try:
        return server.start()
    except RuntimeError as e:
        pytest.fail(str(e))


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[LlamaServer]:
    server = start_server(tmp_path_factory, "llama-server")
    try:
        yield server
    finally:
        server.stop()
        print(f"\nfaults injected and survived, by kind: {dict(sorted(SURVIVED.items()))}")


@pytest.fixture
def proxy(server, monkeypatch) -> Iterator[FaultProxy]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with FaultProxy(server.url.removesuffix("/v1")) as p:
        yield p


@pytest.fixture(scope="module")
def reference(server) -> list[list[str]]:
    """What an un-faulted run gives (straight to the server)."""
    return texts(OpenAIGenerator(server.url, "smollm2", extra_body=PLAIN_SAMPLING).generate(PROMPTS, PARAMS))


def survived(proxy: FaultProxy) -> None:
    for kind, n in proxy.faults().items():
        if kind != "pass":
            SURVIVED[kind] = SURVIVED.get(kind, 0) + n


def test_every_fault_is_retried_and_the_outputs_match_an_unfaulted_run(proxy, reference):
    proxy.set_schedule(["slow:0.3", *FAILURES, "slow:0.3"])
    gen = OpenAIGenerator(proxy.url, "smollm2", max_retries=len(FAILURES), backoff_s=0.02, max_concurrency=2,
                          extra_body=PLAIN_SAMPLING)  # fmt: skip
    assert texts(gen.generate(PROMPTS, PARAMS)) == reference
    faults = proxy.faults()
    assert faults == {"slow": 2, **dict.fromkeys(FAILURES, 1), "pass": len(PROMPTS) - 2}
    assert len(proxy.chat_records()) == len(PROMPTS) + len(FAILURES)  # one retry per failure, no more
    assert [r.status for r in proxy.chat_records() if r.fault in ("drop", "truncated")] == [None, None]
    survived(proxy)


def test_an_answer_slower_than_the_timeout_is_retried(proxy, reference):
    proxy.set_schedule(["hang:3"])  # no answer for 3 s: the client gives up after 2 s and asks again
    gen = OpenAIGenerator(proxy.url, "smollm2", timeout_s=2, backoff_s=0.02, extra_body=PLAIN_SAMPLING)
    assert texts(gen.generate(PROMPTS[:1], PARAMS)) == reference[:1]
    hung, retry = sorted(proxy.chat_records(), key=lambda r: r.start)
    assert (hung.fault, retry.fault) == ("hang:3", "pass")
    assert 2 <= retry.start - hung.start < hung.end - hung.start  # the retry came after the timeout, not the hang
    survived(proxy)


@pytest.mark.parametrize("status", ["429", "500"])
def test_gives_up_after_max_retries_plus_one_attempts_with_a_clear_error(proxy, status):
    proxy.set_schedule([], default=status)
    gen = OpenAIGenerator(proxy.url, "smollm2", max_retries=3, backoff_s=0.05, max_concurrency=2)
    start = time.monotonic()
    with pytest.raises(PartialGenerationError) as err:
        gen.generate(PROMPTS[:2], PARAMS)
    elapsed = time.monotonic() - start
    message = str(err.value)
    assert proxy.url in message and f"HTTP {status}" in message and "4 attempts" in message, message
    assert isinstance(err.value, AcqsynthError) and err.value.partial == [None, None]
    assert len(proxy.chat_records()) == 2 * 4  # both prompts, 1 + max_retries attempts each
    assert elapsed >= 0.05 * (1 + 2 + 4) * 0.5  # backoff 0.05·2^k·U(0.5, 1.5), k = 0, 1, 2


def test_never_more_requests_in_flight_than_max_concurrency(proxy, reference):
    proxy.set_schedule([], default="slow:0.4")
    gen = OpenAIGenerator(proxy.url, "smollm2", max_concurrency=2, extra_body=PLAIN_SAMPLING)
    assert texts(gen.generate(PROMPTS, PARAMS)) == reference
    assert proxy.max_in_flight == 2  # really two at once, and never more
    records = proxy.chat_records()
    assert len(records) == len(PROMPTS)
    assert max(sum(r.start <= t.start < r.end for r in records) for t in records) == 2


# ---------------------------------------------------------------- acqsynth generate: fail, then resume
def generate(url: str, out: Path, cache: Path, max_generated: int) -> subprocess.Popen:
    """Start `acqsynth generate` against `url`, with the generator's defaults (max_retries 4, backoff
    0.5 s, max_concurrency 4), a short prompt, short completions and no labelling model: only the
    generator is under test (the completions are too short to be accepted)."""
    template = out.parent / "template.txt"
    template.write_text("Write one more problem like this one.\n{question}\n<answer>{answer}</answer>\n")
    cmd = [sys.executable, "-m", "acqsynth.cli", "generate", "--generator", f"openai:{url}@smollm2",
           "--data", "arithmetic", "--seeds", "8", "--num-samples", "4", "--max-generated", str(max_generated),
           "--batch-size", "8", "--max-new-tokens", "8", "--template", str(template), "--no-embedding-hygiene",
           "--decontaminate", "--quiet", "--output", str(out), "--cache", str(cache)]  # fmt: skip
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    stdout, stderr = proc.communicate(timeout=180)
    return proc.returncode, stdout, stderr


def cache_keys(cache: Path) -> list[str]:
    """The keys of the whole records in the generator's cache (a run may be appending to it)."""
    path = cache / "generator.jsonl"
    text = path.read_text() if path.exists() else ""
    return [json.loads(line)["key"] for line in text[: text.rfind("\n") + 1].splitlines()]


def check_finished(out: Path, cache: Path, hits: int, generated: int) -> None:
    """The rerun used every cached completion, generated the rest once, and saw every attempt once."""
    stats = json.loads((out / "stats.json").read_text())
    assert stats["cache"] == {"generator_hits": hits, "generator_misses": generated - hits}
    assert stats["generated"] == generated and stats["stop_reason"] == "budget: generated"
    keys = cache_keys(cache)
    assert len(keys) == len(set(keys)) == generated
    rows = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    samples = read_samples(out / "samples.jsonl", allow_empty=True)
    attempts = [r["attempt"] for r in rows] + [json.loads(m)["attempt"] for m in samples["metadata"]]
    assert sorted(attempts) == list(range(generated))  # no attempt lost or duplicated


def test_generate_fails_clearly_after_saving_then_resumes_from_the_cache(proxy, tmp_path):
    saved = 2  # the first 2 requests of the 4 sent at once are answered, then the server fails for good
    proxy.set_schedule(["pass"] * saved, default="500")
    code, _, stderr = finish(generate(proxy.url, tmp_path / "out", tmp_path / "cache", max_generated=4))
    assert code == 2, stderr
    error = stderr.strip().splitlines()[-1]
    assert error.startswith("acqsynth: error: ") and "Traceback" not in stderr
    assert proxy.url in error and "HTTP 500" in error and "5 attempts" in error, error
    assert len(cache_keys(tmp_path / "cache")) == saved  # everything answered was kept
    failures = len(proxy.chat_records()) - saved
    assert failures == 2 * 5  # the 2 prompts left, each tried 1 + max_retries times; none after

    proxy.set_schedule([])
    code, stdout, stderr = finish(generate(proxy.url, tmp_path / "out", tmp_path / "cache", max_generated=4))
    assert code == 0, stderr
    assert "from the cache: 2 generator prompts (generated now: 2)" in stdout
    assert len(proxy.chat_records()) == 2  # only what was missing was asked for
    check_finished(tmp_path / "out", tmp_path / "cache", hits=saved, generated=4)


def test_server_killed_mid_run_then_restarted_and_the_run_resumes(tmp_path_factory, tmp_path):
    server = start_server(tmp_path_factory, "llama-server-killed")
    try:
        out, cache = tmp_path / "out", tmp_path / "cache"
        proc = generate(server.url, out, cache, max_generated=8)
        deadline = time.monotonic() + 120
        while len(cache_keys(cache)) < 4 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before the server could be killed"
        server.kill()
        code, _, stderr = finish(proc)
        assert code == 2, stderr
        error = stderr.strip().splitlines()[-1]
        assert server.url in error and "5 attempts" in error and "APIConnectionError" in error, error
        saved = len(cache_keys(cache))
        assert 4 <= saved < 8

        server.start()  # on the same port
        code, stdout, stderr = finish(generate(server.url, out, cache, max_generated=8))
        assert code == 0, stderr
        assert f"from the cache: {saved} generator prompts (generated now: {8 - saved})" in stdout
        check_finished(out, cache, hits=saved, generated=8)
    finally:
        server.stop()
