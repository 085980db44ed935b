"""A Generator for any OpenAI-compatible chat server: vLLM, llama.cpp server, Ollama, SGLang, ...

Prompts are sent concurrently from a thread pool of `max_concurrency` workers, one request per
prompt asking for `n` choices. Connection errors (refused, dropped, a body cut off mid-way),
timeouts, 408, 429 and 5xx answers, and malformed 200 answers (not JSON, JSON cut short, or not a
chat completion) are retried with exponential backoff and jitter (a server's Retry-After is
honoured); after `max_retries` retries the run stops with an error naming the URL, the last error
(its status) and the attempts. Requests go to the given `base_url` only (the client's own retries
are off, so every attempt is counted here, and its base URL is never taken from the environment).
When one prompt fails, the prompts already in flight are finished and the error (a
`PartialGenerationError`) carries their completions, so a caching caller can keep them.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import Completion, GenerationParams
from acqsynth.models.sampling import (
    check_not_all_failed,
    cut_at_stop,
    response_prefix,
    sample_seed,
    seed_indices,
)
from acqsynth.tasks.base import Messages

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
PROMPT_ERROR_STATUSES = frozenset({400, 413, 422})  # this prompt is bad (e.g. too long); others may be fine
MAX_RETRY_AFTER_S = 60.0
LLAMA_CPP_SERVER_PLAIN_SAMPLING = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
"""`extra_body` for llama.cpp server: switch off its default top_k=40, min_p=0.05 and repeat_penalty=1.1, so it
samples as the other backends do (and exactly as LlamaCppGenerator does, for the same GGUF and seeds)."""


CONTINUE_FINAL_MESSAGE = {"continue_final_message": True, "add_generation_prompt": False}
"""Sent when the messages end in an assistant message (a response prefix): vLLM then continues that message
instead of starting a new turn. llama.cpp's C++ server continues it by itself; llama-cpp-python's server starts a
new turn, and a reply that repeats the prefix there has it taken off."""


def with_grammar(extra_body: dict[str, Any] | None, grammar: str) -> dict[str, Any]:
    """`extra_body` plus the fields that carry a GBNF grammar: `grammar` for llama.cpp server (the C++
    `llama-server` and llama-cpp-python's) and `structured_outputs.grammar` for vLLM >= 0.12 (xgrammar reads
    GBNF). Each server reads its own field and ignores the other."""
    body = dict(extra_body or {})
    body["grammar"] = grammar
    body["structured_outputs"] = {**body.get("structured_outputs", {}), "grammar": grammar}
    return body


class MalformedResponse(ValueError):
    """A 200 answer that is not a usable chat completion (retried like a server error)."""


class PartialGenerationError(AcqsynthError):
    """A `generate` call that failed part-way: `partial[i]` is prompt i's completions if they were
    finished, else None (not started, cancelled or failed)."""

    def __init__(self, message: str, partial: list[list[Completion] | None]) -> None:
        super().__init__(message)
        self.partial = partial


MALFORMED_ERRORS = (json.JSONDecodeError, UnicodeDecodeError, MalformedResponse)
"""What a 200 answer with a cut-off, non-JSON or wrong-shape body raises (retried)."""


def import_openai() -> Any:
    """The `openai` module, or a clear error saying how to install it."""
    try:
        import openai
    except ImportError as e:
        raise AcqsynthError(
            f"the OpenAI-compatible backend needs the openai client ({e}): pip install 'acqsynth[openai]'"
        ) from None
    return openai


def _finish_reason(reason: str | None) -> str:
    if reason in ("stop", "eos", "stop_sequence"):
        return "stop"
    if reason in ("length", "max_tokens"):
        return "length"
    return "error"


def _retry_after(error: Any) -> float | None:
    """Seconds from a Retry-After header in seconds (HTTP-date forms are ignored)."""
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return min(float(value), MAX_RETRY_AFTER_S) if value is not None else None
    except ValueError:
        return None


class OpenAIGenerator:
    """A model behind an OpenAI-compatible `/v1/chat/completions` endpoint, as a Generator.

    Sends `model`, `messages`, `n`, `seed` (= `sample_seed(seed, prompt_index, 0)`), `stop`,
    `temperature`, `top_p` and `max_tokens`, plus `extra_body` if given (server-specific sampling
    fields, e.g. `LLAMA_CPP_SERVER_PLAIN_SAMPLING` to switch off llama.cpp server's extra samplers
    and repetition penalty, which are on by default). `params.grammar` goes out in the fields of
    `with_grammar` (llama.cpp server, vLLM >= 0.12); a server that reads neither ignores it. Messages
    that end in an assistant message (a response prefix) go with `CONTINUE_FINAL_MESSAGE`. A server
    that returns fewer than `n` choices (llama.cpp server ignores `n`) is asked again with n=1 and
    seeds `sample_seed(seed, prompt_index, j)` until there are `n`.

    Reproducibility is the server's: the seeds are sent, and vLLM repeats a seeded sample up to the
    float differences between batch compositions; llama.cpp server reuses its KV cache across
    requests, so it repeats samples when requests arrive in the same order (`max_concurrency=1`).

    Token counts come from the response's `usage`; they are 0 when a server sends no usage. Usage
    covers a whole response, so with several choices per response `prompt_tokens` is the prompt's
    count and `completion_tokens` the response's total split evenly (exact per completion only
    when each response holds one choice, as with llama.cpp server).

    A 400/413/422 answer (a bad prompt, e.g. too long) gives 'error' completions for that prompt and
    a logged warning; if every prompt fails, or on 401/403/404, the run stops with an AcqsynthError.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "EMPTY",
        timeout_s: float = 60,
        max_retries: int = 4,
        backoff_s: float = 0.5,
        max_concurrency: int = 4,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if max_concurrency < 1 or max_retries < 0:
            raise AcqsynthError(
                f"need max_concurrency >= 1 and max_retries >= 0, got {max_concurrency}, {max_retries}"
            )
        self.openai = import_openai()
        self.base_url, self.model = base_url.rstrip("/"), model
        self.max_retries, self.backoff_s, self.max_concurrency = max_retries, backoff_s, max_concurrency
        self.extra_body = extra_body
        self.client = self.openai.OpenAI(
            base_url=self.base_url, api_key=api_key, timeout=timeout_s, max_retries=0
        )
        self.name = f"openai:{self.base_url}@{model}"
        self._rng = random.Random()  # jitter only; never affects samples
        self._rng_lock = threading.Lock()

    supports_grammar = True
    """`GenerationParams.grammar` is sent to the server (see `with_grammar`)."""

    def generate(
        self, prompts: list[Messages], params: GenerationParams, seed_index: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        errors: list[str] = []
        index = seed_indices(len(prompts), seed_index)
        with ThreadPoolExecutor(
            max_workers=self.max_concurrency, thread_name_prefix="acqsynth-openai"
        ) as pool:
            futures = [
                pool.submit(self._prompt, i, p, params, errors) for i, p in zip(index, prompts, strict=True)
            ]
            failure: BaseException | None = None
            try:
                results = [f.result() for f in futures]
            except BaseException as e:
                for f in futures:
                    f.cancel()
                failure = e
        # leaving the pool waited for the prompts in flight: hand back what they got with the error
        if isinstance(failure, AcqsynthError):
            raise PartialGenerationError(str(failure), [_finished(f) for f in futures]) from None
        if failure is not None:
            raise failure
        check_not_all_failed(self.name, results, errors[-1] if errors else None)
        return results

    def _prompt(
        self, index: int, messages: Messages, params: GenerationParams, errors: list[str]
    ) -> list[Completion]:
        """All n completions of one prompt, topping up when the server returned fewer choices."""
        completions: list[Completion] = []
        while len(completions) < params.n:
            n = params.n - len(completions) if not completions else 1
            seed = sample_seed(params.seed, index, len(completions))
            got = self._request(messages, params, n, seed, errors)
            if got is None:  # this prompt was rejected: mark all its completions failed
                return [Completion("", 0, 0, "error") for _ in range(params.n)]
            completions.extend(got)
        return completions[: params.n]

    def _request(
        self, messages: Messages, params: GenerationParams, n: int, seed: int, errors: list[str]
    ) -> list[Completion] | None:
        """One chat request with retries; None if the server rejected this prompt (a 400-class answer)."""
        openai = self.openai
        extra_body = with_grammar(self.extra_body, params.grammar) if params.grammar else dict(self.extra_body or {})
        prefix = response_prefix(messages)
        if prefix:
            extra_body.update(CONTINUE_FINAL_MESSAGE)
        last = "no attempt made"
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            wait = None
            try:
                response = self.client.chat.completions.create(
                    model=self.model,
                    messages=list(messages),
                    n=n,
                    seed=seed,
                    stop=list(params.stop) if params.stop else openai.omit,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    max_tokens=params.max_new_tokens,
                    extra_body=extra_body,
                )
                return self._completions(response, params.stop, prefix)
            except openai.APIStatusError as e:
                last = f"HTTP {e.status_code}: {e.message}"
                if e.status_code in PROMPT_ERROR_STATUSES:
                    log.warning("%s rejected a prompt (%s)", self.base_url, last)
                    errors.append(last)
                    return None
                if e.status_code not in RETRY_STATUSES:
                    raise AcqsynthError(
                        f"OpenAI-compatible server {self.base_url} answered {last} (not retried)"
                    ) from None
                wait = _retry_after(e)
            except openai.APIConnectionError as e:  # includes timeouts, dropped connections, cut-off bodies
                cause = f" ({type(e.__cause__).__name__}: {e.__cause__})" if e.__cause__ else ""
                last = f"{type(e).__name__}: {e}{cause}"
            except (*MALFORMED_ERRORS, openai.APIResponseValidationError) as e:
                last = f"malformed response ({type(e).__name__}: {e})"
            if attempt + 1 < attempts:
                time.sleep(max(wait or 0.0, self._backoff(attempt)))
        raise AcqsynthError(
            f"OpenAI-compatible server {self.base_url} failed after {attempts} attempts "
            f"(max_retries={self.max_retries}); last error: {last}"
        )

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with jitter: backoff_s * 2^attempt * U(0.5, 1.5)."""
        with self._rng_lock:
            return self.backoff_s * (2**attempt) * self._rng.uniform(0.5, 1.5)

    @staticmethod
    def _completions(response: Any, stop: list[str] | None, prefix: str | None = None) -> list[Completion]:
        """The completions of a response; MalformedResponse if it is not a chat completion with choices.
        A reply that starts a new turn with the response `prefix` (a server that did not continue the final
        assistant message) has the prefix taken off, as a continuing server would have left it out."""
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices or not all(map(_has_message, choices)):
            raise MalformedResponse(f"not a chat completion with choices: {str(response)[:200]!r}")
        usage = getattr(response, "usage", None)
        prompt_tokens = getattr(usage, "prompt_tokens", 0) or 0
        total = getattr(usage, "completion_tokens", 0) or 0
        choices = sorted(choices, key=lambda c: c.index or 0)
        out = []
        for k, choice in enumerate(choices):
            share = total // len(choices) + (1 if k < total % len(choices) else 0)
            content = choice.message.content or ""
            if prefix and content.lstrip().startswith(prefix):
                content = content.lstrip()[len(prefix) :]
            text, stopped = cut_at_stop(content, stop)
            reason = "stop" if stopped else _finish_reason(choice.finish_reason)
            out.append(Completion(text, prompt_tokens, share, reason))
        return out


def _has_message(choice: Any) -> bool:
    message = getattr(choice, "message", None)
    return message is not None and isinstance(getattr(message, "content", None), str | None)


def _finished(future: Future) -> list[Completion] | None:
    """A future's completions if it finished without error, else None."""
    if future.cancelled() or not future.done() or future.exception() is not None:
        return None
    return future.result()
