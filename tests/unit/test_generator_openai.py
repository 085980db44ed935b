"""OpenAIGenerator against a fault-injecting OpenAI-compatible server on 127.0.0.1 (stdlib http.server)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.openai_generator import OpenAIGenerator
from acqsynth.models.sampling import sample_seed

PROMPTS = [[{"role": "user", "content": f"question {i}"}] for i in range(6)]


@dataclass
class Script:
    """What the fake server does: fail with `failures` first, then answer; counts what it saw."""

    failures: list[int] = field(default_factory=list)
    """HTTP statuses to return, in order, before answering normally."""
    always: int | None = None
    """Return this status on every request."""
    reject_prompt: str | None = None
    """Answer 400 to requests whose last message holds this text."""
    delay_s: float = 0.0
    """Time each request takes."""
    honour_n: bool = True
    """Return n choices (False: one choice, like llama.cpp server)."""
    usage: bool = True
    """Send a usage block."""
    retry_after: str | None = None
    """Retry-After header sent with failures."""
    requests: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def make_handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status != 200 and script.retry_after:
                self.send_header("Retry-After", script.retry_after)
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with script.lock:
                script.requests.append({"path": self.path, **body})
                script.in_flight += 1
                script.max_in_flight = max(script.max_in_flight, script.in_flight)
                status = script.always or (script.failures.pop(0) if script.failures else 200)
            try:
                time.sleep(script.delay_s)
                content = body["messages"][-1]["content"]
                if script.reject_prompt is not None and script.reject_prompt in content:
                    status = 400
                if status != 200:
                    self.reply(status, {"error": {"message": f"injected {status}", "type": "server_error"}})
                    return
                n = body.get("n", 1) if script.honour_n else 1
                choices = [
                    {
                        "index": k,
                        "message": {
                            "role": "assistant",
                            "content": f"re: {content} seed={body.get('seed')} k={k} END tail",
                        },
                        "finish_reason": "stop" if k % 2 == 0 else "length",
                    }
                    for k in range(n)
                ]
                answer = {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": body["model"],
                    "choices": choices,
                }
                if script.usage:
                    answer["usage"] = {
                        "prompt_tokens": 7,
                        "completion_tokens": 5 * n,
                        "total_tokens": 7 + 5 * n,
                    }
                self.reply(200, answer)
            finally:
                with script.lock:
                    script.in_flight -= 1

    return Handler


@pytest.fixture
def server(monkeypatch) -> Iterator[tuple[str, Script]]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    script = Script()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(script))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    httpd.shutdown()
    httpd.server_close()


def make(url: str, **kwargs) -> OpenAIGenerator:
    kwargs.setdefault("backoff_s", 0.01)
    kwargs.setdefault("timeout_s", 5)
    return OpenAIGenerator(url, "fake-model", **kwargs)


def test_sends_every_parameter_and_keeps_prompt_order(server):
    url, script = server
    params = GenerationParams(max_new_tokens=17, temperature=0.3, top_p=0.9, n=2, seed=5, stop=["END"])
    assert make(url).generate([], params) == []
    results = make(url).generate(PROMPTS, params)
    assert len(script.requests) == len(PROMPTS)
    for i, cs in enumerate(results):
        seed = sample_seed(5, i, 0)
        assert [c.text for c in cs] == [
            f"re: question {i} seed={seed} k={k} " for k in range(2)
        ]  # cut at "END"
        assert all(c.finish_reason == "stop" for c in cs)  # a stop string was found in the text
        assert all(c.prompt_tokens == 7 and c.completion_tokens == 5 for c in cs)
    request = script.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert {k: request[k] for k in ("model", "n", "max_tokens", "temperature", "top_p", "stop")} == {
        "model": "fake-model",
        "n": 2,
        "max_tokens": 17,
        "temperature": 0.3,
        "top_p": 0.9,
        "stop": ["END"],
    }
    assert sorted(r["seed"] for r in script.requests) == sorted(
        sample_seed(5, i, 0) for i in range(len(PROMPTS))
    )


def test_retries_500_and_429_then_succeeds(server):
    url, script = server
    script.failures = [500, 429, 503]
    (cs,) = make(url, max_retries=4).generate(PROMPTS[:1], GenerationParams(max_new_tokens=4))
    assert len(script.requests) == 4
    assert cs[0].text.startswith("re: question 0")


def test_gives_up_after_max_retries_with_a_clear_error(server):
    url, script = server
    script.always = 500
    start = time.monotonic()
    with pytest.raises(AcqsynthError) as err:
        make(url, max_retries=2, backoff_s=0.05).generate(PROMPTS[:1], GenerationParams(max_new_tokens=4))
    message = str(err.value)
    assert url in message and "HTTP 500" in message and "3 attempts" in message
    assert len(script.requests) == 3
    assert time.monotonic() - start >= 0.05 * (1 + 2) * 0.5  # backoff waited: 0.05·2^k·U(0.5, 1.5), k = 0, 1


def test_honours_retry_after(server):
    url, script = server
    script.failures, script.retry_after = [429], "0.3"
    start = time.monotonic()
    make(url, backoff_s=0.001).generate(PROMPTS[:1], GenerationParams(max_new_tokens=4))
    assert time.monotonic() - start >= 0.3


def test_client_errors_are_not_retried(server):
    url, script = server
    script.always = 404
    with pytest.raises(AcqsynthError, match="HTTP 404"):
        make(url).generate(PROMPTS[:2], GenerationParams(max_new_tokens=4))
    assert len(script.requests) <= 2  # one per prompt at most, no retries


def test_a_rejected_prompt_gives_error_completions_and_the_rest_go_on(server):
    url, script = server
    script.reject_prompt = "question 2"
    results = make(url).generate(PROMPTS, GenerationParams(max_new_tokens=4, n=2))
    assert [c.finish_reason for c in results[2]] == ["error", "error"]
    assert all(c.finish_reason != "error" for i, cs in enumerate(results) if i != 2 for c in cs)
    script.reject_prompt = "question"
    with pytest.raises(AcqsynthError, match="every prompt failed.*HTTP 400"):
        make(url).generate(PROMPTS, GenerationParams(max_new_tokens=4))


def test_concurrency_never_exceeds_the_limit(server):
    url, script = server
    script.delay_s = 0.15
    prompts = [[{"role": "user", "content": f"q{i}"}] for i in range(12)]
    results = make(url, max_concurrency=3).generate(prompts, GenerationParams(max_new_tokens=4))
    assert script.max_in_flight == 3  # really concurrent (3 in flight at once), and never more
    assert [cs[0].text.split(" seed")[0] for cs in results] == [f"re: q{i}" for i in range(12)]


def test_tops_up_when_the_server_ignores_n_and_counts_missing_usage_as_zero(server):
    url, script = server
    script.honour_n, script.usage = False, False
    results = make(url).generate(PROMPTS[:2], GenerationParams(max_new_tokens=4, n=3, seed=9))
    assert len(script.requests) == 6
    for i, cs in enumerate(results):
        assert [c.text.split("seed=")[1].split()[0] for c in cs] == [
            str(sample_seed(9, i, j)) for j in range(3)
        ]
        assert all(c.prompt_tokens == 0 and c.completion_tokens == 0 for c in cs)
    assert sorted(r["n"] for r in script.requests) == [1, 1, 1, 1, 3, 3]


def test_splits_usage_over_several_choices(server):
    url, _ = server
    (cs,) = make(url).generate(PROMPTS[:1], GenerationParams(max_new_tokens=4, n=3))
    assert [c.completion_tokens for c in cs] == [5, 5, 5] and [c.finish_reason for c in cs] == [
        "stop",
        "length",
        "stop",
    ]


def test_unreachable_server_is_retried_then_reported():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with pytest.raises(AcqsynthError, match=f"{url}.*2 attempts.*APIConnectionError"):
        make(url, max_retries=1).generate(PROMPTS[:1], GenerationParams(max_new_tokens=4))


def test_a_grammar_goes_out_in_the_llama_cpp_and_vllm_fields_beside_extra_body(server):
    url, script = server
    grammar = 'root ::= "x"'
    extra = {"top_k": 0, "structured_outputs": {"whitespace_pattern": " "}}
    gen = make(url, extra_body=extra)
    assert gen.supports_grammar
    gen.generate(PROMPTS[:2], GenerationParams(max_new_tokens=2, grammar=grammar))
    for request in script.requests:
        assert request["grammar"] == grammar and request["structured_outputs"] == {"whitespace_pattern": " ", "grammar": grammar}
        assert request["top_k"] == 0
    assert extra == {"top_k": 0, "structured_outputs": {"whitespace_pattern": " "}}  # the caller's dict is untouched
    script.requests.clear()
    gen.generate(PROMPTS[:1], GenerationParams(max_new_tokens=2))
    assert "grammar" not in script.requests[0]
    assert script.requests[0]["structured_outputs"] == {"whitespace_pattern": " "}


def test_a_response_prefix_asks_to_continue_and_a_repeated_prefix_is_taken_off(server):
    """The pipeline ends its prompts with the assistant prefill `<question>`: vLLM is asked to continue it;
    a server that starts a new turn instead (llama-cpp-python's) and writes the prefix again has it removed,
    so the pipeline does not read `<question><question>...`."""
    url, script = server
    prefill = [{"role": "user", "content": "question 0"}, {"role": "assistant", "content": "re: "}]
    (cs,) = make(url).generate([prefill], GenerationParams(max_new_tokens=4, stop=["END"]))
    # the fake server answers "re: <last message> ..." = "re: re:  seed=...": the first "re: " is taken off
    assert [c.text for c in cs] == [f"re:  seed={sample_seed(0, 0, 0)} k=0 "]
    assert script.requests[0]["continue_final_message"] is True
    assert script.requests[0]["add_generation_prompt"] is False
    script.requests.clear()
    (cs,) = make(url).generate(PROMPTS[:1], GenerationParams(max_new_tokens=4, stop=["END"]))
    assert cs[0].text.startswith("re: question 0")  # no prefill: nothing taken off, nothing extra sent
    assert "continue_final_message" not in script.requests[0]
