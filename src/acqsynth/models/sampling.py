"""What every Generator backend shares: per-sample seeds, response prefixes, stop strings and the
refusals and failure checks that must read the same on every backend."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import Completion, GenerationParams

if TYPE_CHECKING:
    from acqsynth.tasks.base import Messages

FINISH_REASONS = ("stop", "length", "error")


def refuse_grammar(backend: str, params: GenerationParams) -> None:
    """Raise for `params.grammar` on a backend that cannot constrain its decoding."""
    if params.grammar is not None:
        raise AcqsynthError(
            f"{backend}: grammar-constrained decoding (generator.grammar / --grammar) needs the llama.cpp "
            "backend (llamacpp:ALIAS or a .gguf file) or an OpenAI-compatible server (openai:URL@MODEL)"
        )


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
