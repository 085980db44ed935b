"""LlamaCppGenerator in-process on the embedded SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acqsynth.errors import AcqsynthError
from acqsynth.models.generator import GenerationParams, load_generator

pytestmark = pytest.mark.integration
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'acqsynth[llamacpp]'")

from llama_server import smollm2_gguf  # noqa: E402

from acqsynth.models.llamacpp_generator import LlamaCppGenerator  # noqa: E402

PROMPTS = [
    [{"role": "user", "content": "What is 12 + 7?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
]
FINISH = {"stop", "length"}


@pytest.fixture(scope="module")
def gen() -> Iterator[LlamaCppGenerator]:
    g = load_generator(str(smollm2_gguf()), n_ctx=1024)
    assert isinstance(g, LlamaCppGenerator)
    yield g
    g.close()


def test_samples_are_valid_and_seeded(gen):
    params = GenerationParams(max_new_tokens=16, temperature=0.8, n=2, seed=0)
    first = gen.generate(PROMPTS, params)
    assert [len(cs) for cs in first] == [2, 2]
    for cs in first:
        for c in cs:
            assert c.text.strip() and c.prompt_tokens > 0 and 0 < c.completion_tokens <= 16
            assert c.finish_reason in FINISH
    texts = [[c.text for c in cs] for cs in first]
    gen.generate([[{"role": "user", "content": "Something else entirely."}]], params)  # changes the KV cache
    assert [[c.text for c in cs] for cs in gen.generate(PROMPTS, params)] == texts
    fresh = LlamaCppGenerator(smollm2_gguf(), n_ctx=1024)
    assert [[c.text for c in cs] for cs in fresh.generate(PROMPTS, params)] == texts
    fresh.close()
    other = gen.generate(PROMPTS, GenerationParams(max_new_tokens=16, temperature=0.8, n=2, seed=1))
    assert [[c.text for c in cs] for cs in other] != texts


def test_greedy_copies_and_stop_strings(gen):
    (cs,) = gen.generate(PROMPTS[:1], GenerationParams(max_new_tokens=24, temperature=0, n=2))
    assert cs[0] == cs[1]
    full = cs[0].text
    stop = full.strip()[3:5]
    (cut,) = gen.generate(PROMPTS[:1], GenerationParams(max_new_tokens=24, temperature=0, stop=[stop]))
    assert cut[0].text == full[: full.find(stop)] and cut[0].finish_reason == "stop"


def test_a_prompt_longer_than_the_context_is_an_error_completion():
    small = LlamaCppGenerator(smollm2_gguf(), n_ctx=64)
    long = [{"role": "user", "content": "word " * 100}]
    results = small.generate([long, PROMPTS[1]], GenerationParams(max_new_tokens=8, seed=0))
    assert results[0][0].finish_reason == "error" and results[0][0].text == ""
    assert results[1][0].finish_reason in FINISH
    with pytest.raises(AcqsynthError, match="every prompt failed"):
        small.generate([long], GenerationParams(max_new_tokens=8))
    small.close()


def test_a_broken_gguf_is_a_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + bytes(1000))
    with pytest.raises(AcqsynthError, match="cannot load this model"):
        LlamaCppGenerator(bad)
