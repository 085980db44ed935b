"""What the rest of acqsynth needs from a model: the Student, Generator and Embedder protocols and
the plain data they exchange (GenerationParams, Completion, TokenScores).

Backends implement these without inheriting from anything; `acqsynth.models.loader` builds one
from a spec string.

A conversation that ends in an assistant message asks the model to *continue* that message (a
response prefix, e.g. `<question>` to start a tagged answer); the returned text excludes the prefix.

Seeding is the same idea on every backend: sample j of prompt i is drawn with
`sample_seed(seed, i, j)` (acqsynth.models.sampling), so a sample does not depend on how prompts were
batched, sorted or sent concurrently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from acqsynth.errors import AcqsynthError

if TYPE_CHECKING:  # annotations only: importing acqsynth.tasks at run time would pull in `datasets`
    from acqsynth.tasks.base import Messages


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


@dataclass
class TokenScores:
    """Per-token scores of one continuation under the student."""

    token_ids: np.ndarray
    """Continuation token ids, shape [T]."""
    logprobs: np.ndarray
    """log p(token_t | prefix, tokens_<t), shape [T]."""
    topk_logprobs: np.ndarray | None = None
    """The k largest next-token log-probs at each position (descending), shape [T, k]."""
    topk_ids: np.ndarray | None = None
    """Token ids of `topk_logprobs`, shape [T, k]."""
    entropy: np.ndarray | None = None
    """Entropy (nats) of the next-token distribution at each position, shape [T] (with `stats=True`)."""
    sum_sq: np.ndarray | None = None
    """Sum of squared next-token probabilities at each position, shape [T] (with `stats=True`)."""
    hidden: np.ndarray | None = None
    """Final hidden state that predicts each continuation token (the lm_head input), shape [T, d]."""
    truncated: bool = False
    """Whether the prefix or continuation was cut to fit `max_length`."""

    @property
    def mean_nll(self) -> float:
        """Mean negative log-likelihood per continuation token (0.0 for an empty continuation)."""
        return float(-self.logprobs.mean()) if self.logprobs.size else 0.0


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


class Student(Protocol):
    """What acquisition functions and evaluation need from a student model."""

    def format_prompt(self, prompt: Messages) -> str:
        """The chat-formatted text of a prompt, ending where the assistant's answer begins."""
        ...

    def score(
        self,
        prompts: Sequence[Messages],
        completions: Sequence[str],
        top_k: int = 0,
        stats: bool = False,
        hidden: bool = False,
    ) -> list[TokenScores]:
        """Token log-probs of each completion after its chat prompt; optionally top-k log-probs,
        per-token entropy and sum of squares (`stats`) and lm_head inputs (`hidden`)."""
        ...

    def score_texts(
        self,
        prefixes: Sequence[str],
        continuations: Sequence[str],
        top_k: int = 0,
        stats: bool = False,
        hidden: bool = False,
    ) -> list[TokenScores]:
        """Like `score`, on raw text prefixes (no chat template)."""
        ...

    def answer_loss(self, prompts: Sequence[Messages], completions: Sequence[str]) -> np.ndarray:
        """Mean cross-entropy over the completion tokens only, one float per pair."""
        ...

    def embed(self, prompts: Sequence[Messages]) -> np.ndarray:
        """Mean-pooled final hidden states of the chat-formatted prompts, shape [N, hidden]."""
        ...

    def sample(
        self, prompts: Sequence[Messages], params: GenerationParams, seed_index: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        """The student's own answers: `params.n` completions per prompt, reproducible under `params.seed`;
        `seed_index[i]` replaces prompt i's position in the seeding when given."""
        ...


class Embedder(Protocol):
    """Maps texts to unit-norm vectors, so a dot product is a cosine similarity."""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`, shape [N, dim], float32, L2-normalised."""
        ...
