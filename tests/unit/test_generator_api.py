"""The Generator interface: parameter checks, seeds, stop handling and `load_generator` routing."""

from __future__ import annotations

import sys

import pytest

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import GenerationParams, Generator
from acqsynth.models.loader import load_generator, parse_openai_spec
from acqsynth.models.sampling import cut_at_stop, sample_seed


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_new_tokens": 0},
        {"temperature": -0.1},
        {"top_p": 0.0},
        {"top_p": 1.5},
        {"n": 0},
        {"stop": "x"},
        {"stop": [""]},
    ],
)
def test_bad_params_are_rejected(kwargs):
    with pytest.raises(AcqsynthError):
        GenerationParams(**kwargs)


def test_sample_seeds_are_stable_distinct_and_31_bit():
    seeds = {sample_seed(s, i, j) for s in range(4) for i in range(50) for j in range(4)}
    assert len(seeds) == 4 * 50 * 4
    assert all(0 <= s < 2**31 for s in seeds)
    assert sample_seed(0, 1, 0) != sample_seed(1, 0, 0)
    assert sample_seed(7, 3, 2) == 1430511385  # fixed across processes and Python versions (no hash())


def test_cut_at_stop_takes_the_earliest_stop_string():
    assert cut_at_stop("a b ## c END", ["END", "##"]) == ("a b ", True)
    assert cut_at_stop("abc", ["x"]) == ("abc", False)
    assert cut_at_stop("abc", None) == ("abc", False)


def test_openai_spec_parsing():
    assert parse_openai_spec("openai:http://127.0.0.1:8000/v1@Qwen/Qwen2.5-0.5B") == (
        "http://127.0.0.1:8000/v1",
        "Qwen/Qwen2.5-0.5B",
    )
    assert parse_openai_spec("openai:http://u:p@host/v1@m") == ("http://u:p@host/v1", "m")
    for bad in ("openai:http://127.0.0.1:8000/v1", "openai:@m", "openai:127.0.0.1:8000@m"):
        with pytest.raises(AcqsynthError):
            parse_openai_spec(bad)


def test_load_generator_routes_specs(tiny_model_dir, tmp_path):
    from acqsynth.models.hf_generator import HFGenerator
    from acqsynth.models.openai_generator import OpenAIGenerator

    remote = load_generator("openai:http://127.0.0.1:9/v1@my-model", max_concurrency=2)  # no request is made
    assert isinstance(remote, OpenAIGenerator) and remote.model == "my-model" and remote.max_concurrency == 2
    local = load_generator(str(tiny_model_dir), device="cpu", batch_size=2)
    assert isinstance(local, HFGenerator) and local.batch_size == 2
    assert isinstance(local, Generator) and isinstance(remote, Generator)
    with pytest.raises(AcqsynthError, match="no such GGUF"):
        load_generator(str(tmp_path / "missing.gguf"))


def test_missing_optional_backends_say_how_to_install(monkeypatch, tmp_path):
    from acqsynth.models.llamacpp_generator import LlamaCppGenerator
    from acqsynth.models.openai_generator import OpenAIGenerator

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    monkeypatch.setitem(sys.modules, "openai", None)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(AcqsynthError, match=r"pip install 'acqsynth\[llamacpp\]'"):
        LlamaCppGenerator(gguf)
    with pytest.raises(AcqsynthError, match=r"pip install 'acqsynth\[openai\]'"):
        OpenAIGenerator("http://127.0.0.1:9/v1", "m")
