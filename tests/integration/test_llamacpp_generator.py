"""LlamaCppGenerator in-process on the embedded SmolLM2-135M-Instruct GGUF."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import load_generator

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


def test_a_grammar_constrains_the_completion(gen):
    params = GenerationParams(max_new_tokens=12, temperature=1.0, n=3, seed=0, grammar='root ::= [0-9]{2} " apples"\n')
    (cs,) = gen.generate(PROMPTS[1:], params)  # "Name a colour." would never give digits by itself
    for c in cs:
        assert c.finish_reason == "stop"
        assert len(c.text) == 9 and c.text[:2].isdigit() and c.text.endswith(" apples"), c.text
    with pytest.raises(AcqsynthError, match="llama.cpp rejects the GBNF grammar"):
        gen.generate(PROMPTS[:1], GenerationParams(max_new_tokens=4, grammar="root ::= (\n"))


def test_the_format_grammar_makes_finished_completions_parse(gen):
    """SmolLM2 breaks the tagged format in ~19 of 20 unconstrained GSM8K attempts; under the format
    grammar every completion that ends before the length limit is well-formed, for math and for MCQ
    (what may still be rejected is content: an MCQ with two equal options)."""
    from acqsynth.generation.parsing import parse_completion
    from acqsynth.generation.prompts import PromptBuilder
    from acqsynth.samples import Sample

    seeds = {
        "math": Sample(id="s", question="Tom has 3 boxes of 4 pens. How many pens?", answer="12",
                       reasoning="3 * 4 = 12"),
        "mcqa": Sample(id="m", question="Which organ pumps blood?", answer="B", reasoning="The heart pumps blood.",
                       choices=["Lung", "Heart", "Liver", "Skin"]),
    }
    finished = 0
    for kind, seed in seeds.items():
        builder = PromptBuilder(kind)
        params = GenerationParams(max_new_tokens=160, temperature=0.8, n=3, seed=0, stop=builder.stop,
                                  grammar=builder.grammar(len(seed.choices or []) or None))
        (cs,) = gen.generate([builder(seed)], params)
        for c in cs:
            text = builder.complete(c.text, c.finish_reason)
            if c.finish_reason == "stop":
                finished += 1
                parsed = parse_completion(text, kind, n_choices=len(seed.choices or []) or None)
                assert parsed.sample is not None or parsed.reason.startswith("duplicate choices"), (parsed.reason, text)
            else:
                assert text.startswith("<question>") and "</answer>" not in text
    assert finished >= 2, finished
