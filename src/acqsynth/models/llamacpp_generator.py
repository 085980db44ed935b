"""A Generator on llama.cpp in-process (`llama_cpp.Llama`): fast CPU generation from a GGUF file.

One `create_chat_completion` call per sample, seeded with `sample_seed(seed, prompt_index, j)`.
llama.cpp's own sampler defaults (top_k=40, min_p=0.05) are switched off so that temperature and
top_p mean what they mean on the other backends.

Determinism: llama-cpp-python reuses the KV cache of the previous call's prompt, and when a prompt is
fully cached it re-evaluates the last prompt token on its own. That single-token pass rounds
differently from the batched prompt pass, and with the SmolLM2 GGUF it changed 9 of 10 sampled
continuations. So the cache is reset at the start of every prompt and the prompt's n samples follow
in order: samples 1..n-1 reuse the prompt evaluated for sample 0 (the prompt is paid for once per
prompt, not once per sample), and the outcome depends only on the prompt, params and seeds, never on
what was generated before. The price: no prefix sharing between different prompts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
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


INSTALL = "pip install 'acqsynth[llamacpp]'"
"""How to install the llama.cpp backend (llama-cpp-python)."""


def import_llama_cpp() -> Any:
    """The `llama_cpp` module, or a clear error saying how to install it."""
    try:
        import llama_cpp
    except ImportError as e:
        raise AcqsynthError(
            f"the llama.cpp backend needs llama-cpp-python ({e}): {INSTALL}"
        ) from None
    return llama_cpp


class LlamaCppGenerator:
    """A GGUF model run in this process by llama.cpp, as a Generator.

    `chat_format=None` uses the chat template stored in the GGUF. `llama_kwargs` go to `llama_cpp.Llama`
    (e.g. `n_gpu_layers=-1`). Calls are serialised with a lock: one Llama context is not thread-safe.

    Token counts are llama.cpp's own: `completion_tokens` includes the tokens of a stop string but not
    a final EOS token. A prompt that does not fit in `n_ctx` gives 'error' completions (logged), not
    an exception, so one long prompt does not end a large run.
    """

    def __init__(
        self,
        gguf_path: str | Path,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        chat_format: str | None = None,
        **llama_kwargs: Any,
    ) -> None:
        path = Path(gguf_path).expanduser()
        if not path.is_file():
            raise AcqsynthError(f"{path}: no such GGUF file")
        llama_cpp = import_llama_cpp()
        llama_kwargs.setdefault("verbose", False)
        try:
            self.llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                chat_format=chat_format,
                **llama_kwargs,
            )
        except ValueError as e:
            raise AcqsynthError(
                f"{path}: llama.cpp cannot load this model ({e}); is the file a valid GGUF?"
            ) from None
        self.name = f"llamacpp:{path.name}"
        self._lock = threading.Lock()
        self._last_error: str | None = None
        self._formatter: Any = None  # the GGUF's chat template, built on first use of a response prefix
        self._grammars: dict[str, Any] = {}  # GBNF text (validated) -> LlamaGrammar

    supports_grammar = True
    """`GenerationParams.grammar` constrains this backend's decoding."""

    def close(self) -> None:
        """Free the llama.cpp model and context now (otherwise at garbage collection)."""
        self.llm.close()

    def generate(
        self, prompts: list[Messages], params: GenerationParams, seed_index: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        greedy = params.temperature == 0
        index = seed_indices(len(prompts), seed_index)
        out = []
        with self._lock:
            for i, prompt in zip(index, prompts, strict=True):
                self.llm.reset()  # see the module docstring: no KV-cache state carries over between prompts
                first = self._one(prompt, params, sample_seed(params.seed, i, 0))
                # greedy samples are identical: decode once and copy
                rest = [
                    replace(first) if greedy else self._one(prompt, params, sample_seed(params.seed, i, j))
                    for j in range(1, params.n)
                ]
                out.append([first, *rest])
        check_not_all_failed(self.name, out, self._last_error)
        return out

    def _prefill_text(self, prompt: Messages) -> str:
        """The raw prompt for a conversation ending in a partial assistant turn: the chat template
        rendered up to the assistant header, then the partial answer to continue."""
        if self._formatter is None:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            template = self.llm.metadata.get("tokenizer.chat_template")
            if not template:
                raise AcqsynthError(f"{self.name}: the GGUF holds no chat template, so a response prefix cannot be used")
            model = self.llm._model
            eos, bos = self.llm.token_eos(), self.llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
            )
        return self._formatter(messages=list(prompt[:-1])).prompt + prompt[-1]["content"]

    def _grammar(self, text: str) -> Any:
        """The LlamaGrammar for GBNF `text`, which llama.cpp's parser checks once per text here."""
        if text not in self._grammars:
            llama_cpp = import_llama_cpp()
            # llama-cpp-python only stores the text and would crash on a grammar llama.cpp rejects:
            # build the sampler once here, where a rejection is a NULL pointer
            sampler = llama_cpp.llama_sampler_init_grammar(self.llm._model.vocab, text.encode(), b"root")
            if not sampler:
                raise AcqsynthError(
                    f"{self.name}: llama.cpp rejects the GBNF grammar (llama.cpp printed why on stderr; "
                    "the start rule must be called root)"
                )
            llama_cpp.llama_sampler_free(sampler)
            self._grammars[text] = llama_cpp.LlamaGrammar.from_string(text, verbose=False)
        return self._grammars[text]

    def _one(self, prompt: Messages, params: GenerationParams, seed: int) -> Completion:
        """One sample; a final assistant message is a response prefix, continued by a raw completion."""
        sampling = {
            "temperature": params.temperature,
            "top_p": params.top_p,
            "top_k": 0,
            "min_p": 0.0,
            "typical_p": 1.0,
            "repeat_penalty": 1.0,
            "max_tokens": params.max_new_tokens,
            "stop": list(params.stop or []),
            "seed": seed,
        }
        if params.grammar is not None:
            sampling["grammar"] = self._grammar(params.grammar)
        prefill = response_prefix(prompt) is not None
        try:
            if prefill:
                response = self.llm.create_completion(prompt=self._prefill_text(prompt), **sampling)
            else:
                response = self.llm.create_chat_completion(messages=list(prompt), **sampling)
        except ValueError as e:  # llama-cpp-python raises ValueError for a prompt longer than n_ctx
            log.warning("%s: generation failed for one prompt: %s", self.name, e)
            self._last_error = str(e)
            return Completion("", 0, 0, "error")
        choice, usage = response["choices"][0], response["usage"]
        raw = choice["text"] if prefill else choice["message"]["content"]
        text, stopped = cut_at_stop(raw or "", params.stop)
        reason = "stop" if stopped else choice.get("finish_reason") or "stop"
        return Completion(text, usage["prompt_tokens"], usage["completion_tokens"], reason)
