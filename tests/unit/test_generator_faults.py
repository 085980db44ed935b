"""OpenAIGenerator and the completion cache behind tests/fault_proxy.py, in front of a stub server
(fast; tests/integration/test_server_faults.py does the same against a real llama.cpp server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fault_proxy import FaultProxy

from acqsynth.generation.cache import CachedGenerator, CompletionCache
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.openai_generator import OpenAIGenerator, PartialGenerationError

PROMPTS = [[{"role": "user", "content": f"question {i}"}] for i in range(4)]
PARAMS = GenerationParams(max_new_tokens=4, seed=1)
FAILURES = ["drop", "429", "500", "503", "truncated", "cut", "malformed", "html", "shape"]


class Stub(BaseHTTPRequestHandler):
    """Answers every chat request with one choice naming its prompt and seed."""

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        text = f"re: {body['messages'][-1]['content']} seed={body['seed']}"
        data = json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }).encode()  # fmt: skip
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def proxy(monkeypatch) -> Iterator[FaultProxy]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    stub = ThreadingHTTPServer(("127.0.0.1", 0), Stub)
    threading.Thread(target=stub.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    with FaultProxy(f"http://127.0.0.1:{stub.server_address[1]}") as p:
        yield p
    stub.shutdown()
    stub.server_close()


def make(url: str, **kwargs) -> OpenAIGenerator:
    return OpenAIGenerator(url, "stub", backoff_s=0.001, timeout_s=5, **kwargs)


def test_every_fault_kind_is_retried_and_counted(proxy):
    expected = [[c.text for c in cs] for cs in make(proxy.url).generate(PROMPTS, PARAMS)]
    proxy.set_schedule(FAILURES)
    got = make(proxy.url, max_retries=len(FAILURES), max_concurrency=2).generate(PROMPTS, PARAMS)
    assert [[c.text for c in cs] for cs in got] == expected
    assert len(proxy.chat_records()) == len(PROMPTS) + len(FAILURES)  # exactly one retry per failure


@pytest.mark.parametrize("fault", FAILURES)
def test_each_fault_kind_alone_fails_after_max_retries_plus_one_attempts(proxy, fault):
    proxy.set_schedule([], default=fault)
    with pytest.raises(PartialGenerationError, match=r"failed after 3 attempts \(max_retries=2\)") as err:
        make(proxy.url, max_retries=2, max_concurrency=1).generate(PROMPTS[:1], PARAMS)
    assert proxy.url in str(err.value) and len(proxy.chat_records()) == 3


def test_the_completions_finished_before_a_failure_are_cached(proxy, tmp_path):
    cache = CompletionCache(tmp_path / "generator.jsonl")
    gen = CachedGenerator(make(proxy.url, max_retries=1, max_concurrency=4), cache)
    assert gen.chunk_size == 4  # one chunk: without `partial`, the failure would lose both answers
    proxy.set_schedule(["pass", "pass"], default="500")
    with pytest.raises(PartialGenerationError) as err:
        gen.generate(PROMPTS, PARAMS)
    assert sorted(cs is not None for cs in err.value.partial) == [False, False, True, True]
    assert len(cache) == 2 and len((tmp_path / "generator.jsonl").read_text().splitlines()) == 2
    proxy.set_schedule([])
    results = gen.generate(PROMPTS, PARAMS)
    assert (gen.hits, len(proxy.chat_records())) == (2, 2)  # only the missing two were asked for
    assert [cs[0].text.split(" seed")[0] for cs in results] == [f"re: question {i}" for i in range(4)]
    cache.close()
