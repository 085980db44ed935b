"""HFGenerator against plain unpadded, uncached decoding loops on a tiny random Llama."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from acqsynth.errors import AcqsynthError
from acqsynth.models.hf_generator import HFGenerator, SeededSampler
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.sampling import sample_seed

PROMPTS = [
    [{"role": "user", "content": "What is 12 + 7?"}],
    [{"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Natalia sold clips to 48 of her friends in April"},
    ],
    [{"role": "user", "content": "def add(a, b):"}],
    [{"role": "user", "content": "Which gas do plants absorb? A. oxygen B. carbon dioxide"}],
]
MAX_NEW = 24


@pytest.fixture(scope="module")
def model_tok(tiny_model_dir):
    """The tiny model with larger random weights: at the default init scale greedy decoding only emits newlines."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model, tok


@pytest.fixture
def gen(model_tok) -> HFGenerator:
    return HFGenerator(model_tok, batch_size=3)


def reference(
    gen: HFGenerator, prompt, max_new: int, seed: int | None = None, temperature: float = 1.0
) -> list[int]:
    """One sequence, no padding, no KV cache: the full forward pass at every step."""
    ids = gen.prompt_ids(prompt)
    rng = torch.Generator().manual_seed(seed) if seed is not None else None
    out: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            logits = gen.model(torch.tensor([ids + out])).logits[0, -1].float()
            if rng is None:
                token = int(logits.argmax())
            else:
                probs = torch.softmax(logits / temperature, -1)
                token = int((probs / torch.empty(probs.shape[-1]).exponential_(generator=rng)).argmax())
            out.append(token)
            if token in gen.eos_ids:
                break
    return out


def texts(results) -> list[list[str]]:
    return [[c.text for c in cs] for cs in results]


def test_greedy_batched_equals_unpadded_reference(gen, model_tok):
    tok = model_tok[1]
    params = GenerationParams(max_new_tokens=MAX_NEW, temperature=0)
    results = gen.generate(PROMPTS, params)
    assert len({len(gen.prompt_ids(p)) for p in PROMPTS}) == len(PROMPTS)  # batches really hold padding
    for prompt, (c,) in zip(PROMPTS, results, strict=True):
        ref = reference(gen, prompt, MAX_NEW)
        assert c.text == tok.decode(ref, skip_special_tokens=True)
        assert len(set(c.text)) > 3  # a non-degenerate continuation, so the comparison means something
        assert c.completion_tokens == len(ref)
        templated = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        assert c.prompt_tokens == len(tok(templated, add_special_tokens=False)["input_ids"])
        assert c.finish_reason == "length"


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_batch_size_does_not_change_greedy_or_sampled_texts(model_tok, batch_size):
    base = HFGenerator(model_tok, batch_size=3)
    other = HFGenerator(model_tok, batch_size=batch_size)
    for params in (
        GenerationParams(max_new_tokens=MAX_NEW, temperature=0),
        GenerationParams(max_new_tokens=MAX_NEW, n=2, seed=5),
    ):
        assert texts(other.generate(PROMPTS, params)) == texts(base.generate(PROMPTS, params))


def test_order_preserved_after_length_sorting(gen):
    params = GenerationParams(max_new_tokens=8, temperature=0)
    assert gen.generate([], params) == []
    forward = texts(gen.generate(PROMPTS, params))
    backward = texts(gen.generate(PROMPTS[::-1], params))
    assert backward == forward[::-1]
    assert len(set(map(tuple, forward))) == len(PROMPTS)  # distinct outputs, so a permutation would show


def test_n_completions_per_prompt(gen):
    results = gen.generate(PROMPTS, GenerationParams(max_new_tokens=8, n=3, temperature=1.0))
    assert [len(cs) for cs in results] == [3] * len(PROMPTS)
    assert all(len(set(texts_)) > 1 for texts_ in texts(results))
    greedy = gen.generate(PROMPTS[:2], GenerationParams(max_new_tokens=8, n=2, temperature=0))
    assert all(len(cs) == 2 and cs[0] == cs[1] for cs in greedy)


def test_sampled_rows_equal_their_seeded_reference(gen, model_tok):
    tok = model_tok[1]
    params = GenerationParams(max_new_tokens=12, n=2, seed=11, temperature=0.9)
    results = gen.generate(PROMPTS, params)
    for i, prompt in enumerate(PROMPTS):
        for j in range(2):
            ref = reference(gen, prompt, 12, seed=sample_seed(11, i, j), temperature=0.9)
            assert results[i][j].text == tok.decode(ref, skip_special_tokens=True)
            assert results[i][j].completion_tokens == len(ref)


def test_same_seed_same_samples_other_seed_different(gen):
    params = GenerationParams(max_new_tokens=16, n=2, seed=3, temperature=1.0)
    before = torch.get_rng_state()
    first = texts(gen.generate(PROMPTS, params))
    assert torch.equal(torch.get_rng_state(), before)  # the global RNG is not consumed
    torch.manual_seed(12345)  # and is not used either
    assert texts(gen.generate(PROMPTS, params)) == first
    other = texts(gen.generate(PROMPTS, GenerationParams(max_new_tokens=16, n=2, seed=4, temperature=1.0)))
    assert all(a != b for a, b in zip(first, other, strict=True))


def test_stop_string_truncates_and_reports_stop(gen, model_tok):
    tok = model_tok[1]
    full = gen.generate(PROMPTS, GenerationParams(max_new_tokens=MAX_NEW, temperature=0))
    # a stop string taken from the middle of one completion: an ASCII character pair seen there
    text = full[0][0].text
    start = next(
        k for k in range(3, len(text) - 1) if text[k : k + 2].isascii() and text[k : k + 2].isprintable()
    )
    stop = text[start : start + 2]
    results = gen.generate(
        PROMPTS, GenerationParams(max_new_tokens=MAX_NEW, temperature=0, stop=[stop, "no such text"])
    )
    for prompt, (f,), (c,) in zip(PROMPTS, full, results, strict=True):
        ref = reference(gen, prompt, MAX_NEW)
        if stop in f.text:
            assert c.text == f.text[: f.text.find(stop)] and c.finish_reason == "stop"
            # generation ended at the first token that completed the stop string
            k = next(
                k for k in range(1, len(ref) + 1) if stop in tok.decode(ref[:k], skip_special_tokens=True)
            )
            assert c.completion_tokens == k
        else:
            assert c.text == f.text and c.finish_reason == "length"
    assert results[0][0].finish_reason == "stop" and results[0][0].completion_tokens < MAX_NEW


def test_eos_ends_a_completion_and_counts(model_tok):
    tok = model_tok[1]
    gen = HFGenerator(model_tok, batch_size=3)
    full = gen.generate(PROMPTS, GenerationParams(max_new_tokens=MAX_NEW, temperature=0))
    # make a token that greedy decoding emits act as an extra EOS id (as models with several EOS ids do)
    frequent = reference(gen, PROMPTS[0], MAX_NEW)[5]
    gen.eos_ids = [*gen.eos_ids, frequent]
    results = gen.generate(PROMPTS, GenerationParams(max_new_tokens=MAX_NEW, temperature=0))
    assert any(c.finish_reason == "stop" for (c,) in results)
    for prompt, (f,), (c,) in zip(PROMPTS, full, results, strict=True):
        ref = reference(gen, prompt, MAX_NEW)  # stops at (and includes) the first EOS id
        assert c.completion_tokens == len(ref)
        assert c.text == tok.decode(ref, skip_special_tokens=True)
        assert c.finish_reason == ("stop" if ref[-1] in gen.eos_ids else "length")
        assert f.text.startswith(c.text)


def test_seeded_sampler_matches_the_distribution():
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    rows = 6000
    for temperature, top_p in ((1.0, 1.0), (0.5, 1.0), (1.0, 0.8)):
        sampler = SeededSampler(list(range(rows)), temperature, top_p)
        scores = sampler(torch.zeros(rows, 1, dtype=torch.long), logits.repeat(rows, 1))
        chosen = scores.argmax(-1)
        assert torch.isinf(scores).sum() == rows * (len(logits) - 1)
        probs = torch.softmax(logits / temperature, -1)
        if top_p < 1:
            probs[torch.cumsum(probs, -1) - probs >= top_p] = 0
            probs /= probs.sum()
        freq = torch.bincount(chosen, minlength=len(logits)).float() / rows
        assert torch.allclose(freq, probs, atol=0.025), (temperature, top_p, freq, probs)
        assert (freq[probs == 0] == 0).all()


def test_shares_a_students_model(tiny_model_dir):
    from acqsynth.models.loader import load_student

    student = load_student(str(tiny_model_dir), device="cpu", batch_size=4)
    gen = HFGenerator.from_student(student)
    assert gen.model is student.model and gen.tokenizer is student.tokenizer
    ((c,),) = gen.generate(PROMPTS[:1], GenerationParams(max_new_tokens=4, temperature=0))
    assert c.completion_tokens == 4


def test_loads_from_a_directory_and_rejects_tokenizers_without_template(tiny_model_dir, model_tok, tmp_path):
    gen = HFGenerator(tiny_model_dir, device="cpu")
    assert gen.name == f"hf:{tiny_model_dir}" and gen.device.type == "cpu"
    assert HFGenerator(tiny_model_dir, device="cpu", name="my-alias").name == "hf:my-alias"  # the cache's key
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = None
    with pytest.raises(AcqsynthError, match="no chat template"):
        HFGenerator((model_tok[0], tok))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AcqsynthError, match="config.json"):
        HFGenerator(tmp_path / "empty")


def test_a_grammar_is_refused_not_ignored(gen):
    with pytest.raises(AcqsynthError, match="grammar-constrained decoding .* needs the llama.cpp backend"):
        gen.generate(PROMPTS[:1], GenerationParams(max_new_tokens=2, grammar='root ::= "x"'))
