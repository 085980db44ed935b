"""OpenAIGenerator against a real `python -m llama_cpp.server` serving the embedded SmolLM2 GGUF."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from llama_server import LlamaServer, smollm2_gguf

from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import load_generator
from acqsynth.models.openai_generator import LLAMA_CPP_SERVER_PLAIN_SAMPLING as PLAIN_SAMPLING
from acqsynth.models.openai_generator import OpenAIGenerator

pytestmark = [pytest.mark.integration, pytest.mark.server]
pytest.importorskip("llama_cpp", reason="llama-cpp-python is not installed: pip install 'acqsynth[server]'")

PROMPTS = [
    [{"role": "user", "content": "What is 12 + 7?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a colour."}],
]


@pytest.fixture(scope="module")
def server_url(tmp_path_factory) -> Iterator[str]:
    """Start the server, wait (bounded) until /v1/models answers, and always stop it afterwards."""
    pytest.importorskip(
        "llama_cpp.server.app",
        reason="the llama.cpp server extras are missing: pip install 'acqsynth[server]'",
    )
    server = LlamaServer(tmp_path_factory.mktemp("llama-server") / "server.log")
    try:
        try:
            server.start()
        except RuntimeError as e:
            pytest.fail(str(e))
        yield server.url
    finally:
        server.stop()


def texts(results) -> list[list[str]]:
    return [[c.text for c in cs] for cs in results]


def test_generates_through_a_real_server(server_url):
    gen = load_generator(f"openai:{server_url}@smollm2", max_concurrency=2, extra_body=PLAIN_SAMPLING)
    assert isinstance(gen, OpenAIGenerator)
    params = GenerationParams(max_new_tokens=16, temperature=0.8, n=2, seed=0)
    results = gen.generate(PROMPTS, params)
    assert [len(cs) for cs in results] == [2, 2]  # the server ignores n: the generator topped up
    for cs in results:
        for c in cs:
            assert c.text.strip() and c.prompt_tokens > 0 and 0 < c.completion_tokens <= 16
            assert c.finish_reason in {"stop", "length"}

    # The server honours per-request seeds: same seed, same samples; another seed, other samples. Its
    # KV-cache reuse depends on the previous request, so samples repeat when requests come in the
    # same order: one at a time.
    serial = OpenAIGenerator(server_url, "smollm2", max_concurrency=1, extra_body=PLAIN_SAMPLING)
    first = texts(serial.generate(PROMPTS, params))
    assert texts(serial.generate(PROMPTS, params)) == first
    other = serial.generate(PROMPTS, GenerationParams(max_new_tokens=16, temperature=0.8, n=2, seed=1))
    assert texts(other) != first


def test_server_matches_the_in_process_backend(server_url):
    from acqsynth.models.llamacpp_generator import LlamaCppGenerator

    params = GenerationParams(max_new_tokens=16, temperature=0.8, n=2, seed=3, stop=["\n\n"])
    remote = OpenAIGenerator(server_url, "smollm2", max_concurrency=1, extra_body=PLAIN_SAMPLING).generate(
        PROMPTS, params
    )
    local_gen = LlamaCppGenerator(smollm2_gguf(), n_ctx=1024)
    local = local_gen.generate(PROMPTS, params)
    local_gen.close()
    assert texts(remote) == texts(local)
    assert [[c.completion_tokens for c in cs] for cs in remote] == [
        [c.completion_tokens for c in cs] for cs in local
    ]


def test_a_grammar_reaches_the_server_and_samples_as_in_process(server_url):
    """`--grammar` with `openai:` sends the GBNF in the request: llama.cpp server then samples exactly what
    the in-process backend samples under the same grammar, seeds and (plain) samplers."""
    from acqsynth.models.llamacpp_generator import LlamaCppGenerator

    digits = GenerationParams(max_new_tokens=12, temperature=1.0, n=3, seed=0, grammar='root ::= [0-9]{2} " apples"\n')
    remote = OpenAIGenerator(server_url, "smollm2", max_concurrency=1, extra_body=PLAIN_SAMPLING).generate(
        PROMPTS[1:], digits
    )
    for c in remote[0]:  # "Name a colour." would never give digits by itself
        assert len(c.text) == 9 and c.text[:2].isdigit() and c.text.endswith(" apples"), c.text
    local_gen = LlamaCppGenerator(smollm2_gguf(), n_ctx=1024)
    local = local_gen.generate(PROMPTS[1:], digits)
    local_gen.close()
    assert texts(remote) == texts(local)


def test_the_tagged_format_through_the_server(server_url):
    """The pipeline's prompts end in the assistant prefill `<question>`. llama-cpp-python's server starts a
    new turn instead of continuing it; without a grammar the model writes `<question>` again and the
    generator takes it off, and under the format grammar every finished completion parses (a fresh turn
    rambles more, so some are cut off by the length limit: those are still inside the format)."""
    from acqsynth.generation.parsing import parse_completion
    from acqsynth.generation.prompts import PromptBuilder
    from acqsynth.samples import Sample

    builder = PromptBuilder("math")
    seed = Sample(id="s", question="Tom has 3 boxes of 4 pens. How many pens?", answer="12", reasoning="3 * 4 = 12")
    gen = OpenAIGenerator(server_url, "smollm2", max_concurrency=1, extra_body=PLAIN_SAMPLING)
    free = GenerationParams(max_new_tokens=24, temperature=0.8, n=3, seed=0, stop=builder.stop)
    (plain,) = gen.generate([builder(seed)], free)
    assert all(not c.text.lstrip().startswith("<question>") for c in plain), texts([plain])
    tagged = GenerationParams(max_new_tokens=160, temperature=0.8, n=3, seed=0, stop=builder.stop,
                              grammar=builder.grammar())
    (constrained,) = gen.generate([builder(seed)], tagged)
    for c in constrained:
        text = builder.complete(c.text, c.finish_reason)
        if c.finish_reason == "stop":
            parsed = parse_completion(text, "math")
            assert parsed.sample is not None, (parsed.reason, text)
        else:  # cut off by max_new_tokens, but still inside the format: prose fields hold no "<"
            question = text.removeprefix("<question>").split("</question>")[0]
            assert "<" not in question and "</answer>" not in text, text
