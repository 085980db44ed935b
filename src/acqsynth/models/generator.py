"""The Generator protocol: chat prompts in, n sampled completions per prompt out, from any backend.

Three backends implement it: transformers (`HFGenerator`), llama.cpp in-process (`LlamaCppGenerator`)
and any OpenAI-compatible HTTP server such as vLLM, llama.cpp server or Ollama (`OpenAIGenerator`).
`load_generator(spec)` picks one from a string.

A conversation that ends in an assistant message asks the model to *continue* that message (a
response prefix, e.g. `<question>` to start a tagged answer); the returned text excludes the prefix.
transformers and llama.cpp do this locally; OpenAI-compatible servers receive the messages as they
are, asking vLLM to continue the final message (llama.cpp's C++ server does so by itself; a server that
starts a new turn instead and repeats the prefix has it taken off: see `OpenAIGenerator`).

Seeding is the same idea everywhere: sample j of prompt i is drawn with `sample_seed(seed, i, j)`,
so a sample does not depend on how prompts were batched, sorted or sent concurrently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from acqsynth.errors import AcqsynthError, suggest
from acqsynth.tasks.base import Messages

FINISH_REASONS = ("stop", "length", "error")
OPENAI_PREFIX = "openai:"
LLAMACPP_PREFIX = "llamacpp:"


@dataclass
class GenerationParams:
    """How to sample completions. The same fields mean the same thing on every backend."""

    max_new_tokens: int = 256
    """Most tokens to generate per completion."""
    temperature: float = 0.7
    """Softmax temperature; 0 means greedy decoding (then all n completions of a prompt are identical)."""
    top_p: float = 1.0
    """Nucleus sampling: sample from the smallest set of tokens whose probability mass reaches top_p."""
    n: int = 1
    """Completions per prompt."""
    seed: int = 0
    """Root seed; sample j of prompt i uses `sample_seed(seed, i, j)`."""
    stop: list[str] | None = None
    """Strings that end a completion; the text is cut before the first one and finish_reason is 'stop'."""
    grammar: str | None = None
    """A GBNF grammar every completion must follow (constrained decoding: llama.cpp in-process, or sent to
    an OpenAI-compatible server; transformers refuses it)."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise AcqsynthError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise AcqsynthError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise AcqsynthError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise AcqsynthError(f"n must be >= 1, got {self.n}")
        if self.stop is not None and (isinstance(self.stop, str) or not all(self.stop)):
            raise AcqsynthError(f"stop must be a list of non-empty strings, got {self.stop!r}")
        if self.grammar is not None and not self.grammar.strip():
            raise AcqsynthError("grammar must be GBNF text or None, got an empty string")


def uses_llamacpp(spec: str) -> bool:
    """Whether `spec` runs on the in-process llama.cpp backend (`llamacpp:ALIAS` or a .gguf file)."""
    return spec.startswith(LLAMACPP_PREFIX) or spec.lower().endswith(".gguf")


def check_grammar_backend(spec: str, where: str) -> None:
    """Refuse a grammar for a generator spec whose backend cannot constrain decoding, before anything
    is loaded (a user's `FILE.py:NAME` generator is checked for `supports_grammar` when it runs)."""
    path, sep, attr = spec.rpartition(":")
    if sep and path.endswith(".py") and attr.isidentifier():
        return
    if uses_llamacpp(spec) or spec.startswith(OPENAI_PREFIX):
        return
    raise AcqsynthError(
        f"{where}: grammar-constrained decoding needs the llama.cpp backend or an OpenAI-compatible server, "
        f"but generator {spec!r} is neither; use llamacpp:ALIAS, a .gguf file or openai:URL@MODEL"
    )


def refuse_grammar(backend: str, params: GenerationParams) -> None:
    """Raise for `params.grammar` on a backend that cannot constrain its decoding."""
    if params.grammar is not None:
        raise AcqsynthError(
            f"{backend}: grammar-constrained decoding (generator.grammar / --grammar) needs the llama.cpp "
            "backend (llamacpp:ALIAS or a .gguf file) or an OpenAI-compatible server (openai:URL@MODEL)"
        )


@dataclass
class Completion:
    """One generated completion and what it cost."""

    text: str
    """The generated text, cut before the first stop string; special tokens removed."""
    prompt_tokens: int
    """Tokens in the chat-formatted prompt."""
    completion_tokens: int
    """Tokens generated for this completion (see each backend for whether a final EOS token counts)."""
    finish_reason: str
    """'stop' (EOS or a stop string), 'length' (max_new_tokens reached) or 'error'."""


@runtime_checkable
class Generator(Protocol):
    """Anything that writes completions for chat prompts."""

    name: str
    """A short description of the backend and model, for logs and run directories.

    A generator that honours `GenerationParams.grammar` says so with a class attribute
    `supports_grammar = True` (the pipeline refuses a grammar for one that does not)."""

    def generate(
        self, prompts: list[Messages], params: GenerationParams, seed_index: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        """One list of `params.n` completions per prompt, in prompt order.

        Sample j of prompt i is seeded by `sample_seed(params.seed, seed_index[i], j)` (`seed_index`
        defaults to 0, 1, ...), so a caller that numbers its prompts globally gets the same samples
        however the prompts are batched, split or resumed.
        """
        ...


def seed_indices(n_prompts: int, seed_index: Sequence[int] | None) -> list[int]:
    """The per-prompt seed indices: `seed_index` checked against the prompt count, or 0..n-1."""
    if seed_index is None:
        return list(range(n_prompts))
    index = [int(i) for i in seed_index]
    if len(index) != n_prompts:
        raise ValueError(f"{n_prompts} prompts but {len(index)} seed indices")
    return index


def sample_seed(seed: int, prompt_index: int, sample_index: int) -> int:
    """A 31-bit seed for sample `sample_index` of prompt `prompt_index` under root `seed`.

    Hashed rather than added, so that (seed=0, prompt 1) and (seed=1, prompt 0) do not share samples.
    """
    digest = hashlib.blake2b(f"{seed}:{prompt_index}:{sample_index}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def response_prefix(messages: Messages) -> str | None:
    """The content of a final assistant message (a response prefix the model continues), else None."""
    return messages[-1]["content"] if messages and messages[-1]["role"] == "assistant" else None


def cut_at_stop(text: str, stop: list[str] | None) -> tuple[str, bool]:
    """`text` cut before the earliest stop string, and whether one was found."""
    if not stop:
        return text, False
    cuts = [i for s in stop if (i := text.find(s)) >= 0]
    return (text[: min(cuts)], True) if cuts else (text, False)


def check_not_all_failed(name: str, results: list[list[Completion]], last_error: str | None) -> None:
    """Raise if every completion failed: per-prompt errors are tolerated, a broken setup is not."""
    if results and all(c.finish_reason == "error" for cs in results for c in cs):
        raise AcqsynthError(f"{name}: every prompt failed; last error: {last_error}")


def parse_openai_spec(spec: str) -> tuple[str, str]:
    """Split `openai:<base_url>@<model>` into (base_url, model); the model is after the last '@'."""
    rest = spec[len(OPENAI_PREFIX) :]
    url, sep, model = rest.rpartition("@")
    if not sep or not url or not model:
        raise AcqsynthError(
            f"bad OpenAI-compatible generator spec {spec!r}: expected 'openai:<base_url>@<model>', "
            "e.g. 'openai:http://127.0.0.1:8000/v1@Qwen/Qwen2.5-0.5B-Instruct'"
        )
    if not url.startswith(("http://", "https://")):
        raise AcqsynthError(f"bad base URL {url!r} in {spec!r}: it must start with http:// or https://")
    return url, model


def load_generator(spec: str, **kwargs: Any) -> Generator:
    """A Generator for `spec`; `kwargs` go to the backend's constructor.

    Spec syntax:
    - `openai:<base_url>@<model>` → OpenAIGenerator, e.g. `openai:http://127.0.0.1:8000/v1@my-model`
      (the model name is everything after the last '@');
    - `llamacpp:<alias or .gguf path>`, or any path ending in `.gguf` → LlamaCppGenerator (in-process);
    - `FILE.py:NAME` → your own: NAME in that file is a Generator, or a callable returning one
      (called with `kwargs`);
    - anything else (an alias, a transformers checkpoint directory, a hub id) → HFGenerator, with
      GGUF aliases converted once to a cached transformers checkpoint.
    """
    path, sep, attr = spec.rpartition(":")
    if sep and path.endswith(".py") and attr.isidentifier():
        return _user_generator(path, attr, kwargs)
    if spec.startswith(OPENAI_PREFIX):
        from acqsynth.models.openai_generator import OpenAIGenerator

        url, model = parse_openai_spec(spec)
        return OpenAIGenerator(url, model, **kwargs)
    from acqsynth.models.aliases import gguf_path, hf_model_path

    name = spec.removeprefix(LLAMACPP_PREFIX)
    if uses_llamacpp(spec):
        from acqsynth.models.llamacpp_generator import LlamaCppGenerator

        gguf = gguf_path(name)
        if gguf is None:
            from acqsynth.models.aliases import ALIASES

            causal = sorted(k for k, a in ALIASES.items() if a.kind == "causal-lm")
            raise AcqsynthError(f"{name!r} has no GGUF form for llama.cpp{suggest(name, causal)}; give a causal-LM "
                                f"alias ({', '.join(causal)}) or a .gguf file")
        return LlamaCppGenerator(gguf, **kwargs)
    from acqsynth.models.hf_generator import HFGenerator

    return HFGenerator(hf_model_path(name), **kwargs)


def load_generator_with_threads(spec: str, threads: int | None) -> Generator:
    """`load_generator(spec)`; `threads` caps llama.cpp's threads (n_threads) or torch's intra-op threads."""
    if threads is None:
        return load_generator(spec)
    if uses_llamacpp(spec):
        return load_generator(spec, n_threads=threads)
    import torch

    torch.set_num_threads(threads)
    return load_generator(spec)


def _user_generator(path: str, attr: str, kwargs: dict[str, Any]) -> Generator:
    """A Generator defined in a user's Python file."""
    from acqsynth.userfile import import_user_file

    module = import_user_file(path, "generator")
    obj = getattr(module, attr, None)
    if obj is None:
        raise AcqsynthError(f"{path} defines no {attr!r}")
    gen = obj if isinstance(obj, Generator) and not isinstance(obj, type) else obj(**kwargs)
    if not isinstance(gen, Generator):
        raise AcqsynthError(f"{path}:{attr} is not a Generator (it needs a `name` and a `generate` method)")
    return gen
