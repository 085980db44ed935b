"""Build a model from a spec string: `load_generator` picks a Generator backend, `load_student` a Student.

Generator backends: transformers (`HFGenerator`), llama.cpp in-process (`LlamaCppGenerator`) and any
OpenAI-compatible HTTP server such as vLLM, llama.cpp server or Ollama (`OpenAIGenerator`), or a
user's own from `FILE.py:NAME`. OpenAI-compatible servers receive the messages as they are, asking
vLLM to continue a final assistant message (llama.cpp's C++ server does so by itself; a server that
starts a new turn instead and repeats the prefix has it taken off: see `OpenAIGenerator`).

The transformers backends are imported when first asked for, so that choosing a server or llama.cpp
(or only checking a spec) does not load torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from acqsynth.errors import AcqsynthError, suggest
from acqsynth.models.aliases import ALIASES, gguf_path, hf_model_path
from acqsynth.models.interfaces import Generator
from acqsynth.models.llamacpp_generator import LlamaCppGenerator
from acqsynth.models.openai_generator import OpenAIGenerator
from acqsynth.userfile import import_user_file

if TYPE_CHECKING:
    from acqsynth.models.hf_student import TransformersStudent

OPENAI_PREFIX = "openai:"
LLAMACPP_PREFIX = "llamacpp:"


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
        url, model = parse_openai_spec(spec)
        return OpenAIGenerator(url, model, **kwargs)
    name = spec.removeprefix(LLAMACPP_PREFIX)
    if uses_llamacpp(spec):
        gguf = gguf_path(name)
        if gguf is None:
            causal = sorted(k for k, a in ALIASES.items() if a.kind == "causal-lm")
            raise AcqsynthError(f"{name!r} has no GGUF form for llama.cpp{suggest(name, causal)}; give a causal-LM "
                                f"alias ({', '.join(causal)}) or a .gguf file")
        return LlamaCppGenerator(gguf, **kwargs)
    from acqsynth.models.hf_generator import HFGenerator  # torch and transformers

    # Named by the spec, not the converted checkpoint's cache path: the same name (and completion-cache
    # keys) as when a run's student shares its weights with the generator (run/job.py).
    return HFGenerator(hf_model_path(name), name=name, **kwargs)


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
    module = import_user_file(path, "generator")
    obj = getattr(module, attr, None)
    if obj is None:
        raise AcqsynthError(f"{path} defines no {attr!r}")
    gen = obj if isinstance(obj, Generator) and not isinstance(obj, type) else obj(**kwargs)
    if not isinstance(gen, Generator):
        raise AcqsynthError(f"{path}:{attr} is not a Generator (it needs a `name` and a `generate` method)")
    return gen


def load_student(
    spec: str,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int = 8,
    max_length: int = 1024,
) -> TransformersStudent:
    """Load a student from an alias, checkpoint directory, GGUF file or hub id (fp32 on CPU by default)."""
    from acqsynth.models.causal_lm import load_causal_lm  # torch and transformers
    from acqsynth.models.hf_student import TransformersStudent

    model, tokenizer = load_causal_lm(spec, device, dtype)
    return TransformersStudent(model, tokenizer, batch_size=batch_size, max_length=max_length)
