"""The transformers Student against hand computations with the model's own logits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from acqsynth.models.hf_student import TransformersStudent
from acqsynth.models.loader import load_student

PROMPTS = [
    [{"role": "user", "content": "What is 12 + 7?"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Natalia sold clips to 48 of her friends."}],
    [{"role": "user", "content": "def add(a, b):"}],
]
COMPLETIONS = ["The answer is 19. #### 19", "B", "    return a + b\n"]


@pytest.fixture(scope="module")
def student(tiny_model_dir) -> TransformersStudent:
    return load_student(str(tiny_model_dir), device="cpu", batch_size=2)


def hand_logprobs(model, tok, prompt_text: str, completion: str) -> tuple[np.ndarray, np.ndarray]:
    """One unpadded sequence, full logits, plain loop over positions."""
    p = tok(prompt_text, add_special_tokens=False)["input_ids"]
    c = tok(completion, add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        logits = model(torch.tensor([p + c])).logits[0]
    lps, top2 = [], []
    for t, token in enumerate(c):
        dist = torch.log_softmax(logits[len(p) + t - 1], dim=-1)
        lps.append(dist[token].item())
        top2.append(sorted(dist.tolist(), reverse=True)[:2])
    return np.array(lps), np.array(top2)


def test_logprobs_equal_hand_computation(student, tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    scores = student.score(PROMPTS, COMPLETIONS, top_k=2)
    for prompt, completion, s in zip(PROMPTS, COMPLETIONS, scores, strict=True):
        text = tok.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
        lp, top2 = hand_logprobs(model, tok, text, completion)
        assert s.token_ids.tolist() == tok(completion, add_special_tokens=False)["input_ids"]
        np.testing.assert_allclose(s.logprobs, lp, atol=1e-5)
        np.testing.assert_allclose(s.topk_logprobs, top2, atol=1e-5)
        assert s.mean_nll == pytest.approx(-lp.mean(), abs=1e-5)


def test_batching_does_not_change_scores(tiny_model_dir):
    one = load_student(str(tiny_model_dir), device="cpu", batch_size=1)
    many = load_student(str(tiny_model_dir), device="cpu", batch_size=8)
    for a, b in zip(one.score(PROMPTS, COMPLETIONS), many.score(PROMPTS, COMPLETIONS), strict=True):
        np.testing.assert_allclose(a.logprobs, b.logprobs, atol=1e-5)
    np.testing.assert_allclose(one.embed(PROMPTS), many.embed(PROMPTS), atol=1e-5)


def test_answer_loss_is_mean_nll_of_answer_tokens(student):
    losses = student.answer_loss(PROMPTS, COMPLETIONS)
    assert losses.shape == (3,)
    expected = [-s.logprobs.mean() for s in student.score(PROMPTS, COMPLETIONS)]
    np.testing.assert_allclose(losses, expected, rtol=1e-6)
    assert (losses > 0).all()


def test_empty_completion_scores_nothing(student):
    (s,) = student.score(PROMPTS[:1], [""])
    assert s.logprobs.size == 0 and s.mean_nll == 0.0


def test_embed_shape_and_pooling(student, tiny_model_dir):
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    emb = student.embed(PROMPTS)
    assert emb.shape == (3, model.config.hidden_size)
    text = tok.apply_chat_template(PROMPTS[0], tokenize=False, add_generation_prompt=True)
    with torch.no_grad():
        h = model(torch.tensor([tok(text, add_special_tokens=False)["input_ids"]]), output_hidden_states=True)
    np.testing.assert_allclose(emb[0], h.hidden_states[-1][0].mean(0).numpy(), atol=1e-5)


def test_prefix_truncated_from_left_to_fit(tiny_model_dir):
    s = load_student(str(tiny_model_dir), device="cpu", max_length=16)
    with pytest.warns(UserWarning, match="1 of 2 sequences exceed max_length=16"):
        short, long = s.score_texts(["x", "word " * 100], [" 19", " 19"])
    assert long.truncated and not short.truncated
    assert long.logprobs.size == len(s.tokenizer(" 19", add_special_tokens=False)["input_ids"])
    # Both sides too long: the answer keeps its first 15 tokens after one prompt token.
    with pytest.warns(UserWarning, match="1 of 1 sequences"):
        (cut,) = s.score_texts(["x"], ["word " * 100])
    full = s.tokenizer("word " * 100, add_special_tokens=False)["input_ids"]
    assert cut.truncated and cut.token_ids.tolist() == full[:15]


def test_token_stats_equal_a_hand_computation(tiny_model_dir):
    s = load_student(str(tiny_model_dir), device="cpu", batch_size=2)
    prefixes, conts = ["What is 12 + 7?", "The quick", "Natalia sold"], [" 19", " brown fox jumps", " clips"]
    got = s.score_texts(prefixes, conts, top_k=2, stats=True, hidden=True)
    tok, model = s.tokenizer, s.model
    for prefix, cont, sc in zip(prefixes, conts, got, strict=True):
        p_ids = tok(prefix, add_special_tokens=False)["input_ids"]
        c_ids = tok(cont, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            out = model(torch.tensor([p_ids + c_ids]), output_hidden_states=True)
        logits = out.logits[0, len(p_ids) - 1 : -1]
        logp = torch.log_softmax(logits, -1)
        prob = logp.exp()
        np.testing.assert_allclose(sc.entropy, -(prob * logp).sum(-1).numpy(), atol=1e-5)
        np.testing.assert_allclose(sc.sum_sq, (prob**2).sum(-1).numpy(), atol=1e-5)
        h = out.hidden_states[-1][0, len(p_ids) - 1 : -1]
        np.testing.assert_allclose(sc.hidden, h.numpy(), atol=1e-5)
        # The hidden state is the lm_head input: it reproduces the logits.
        np.testing.assert_allclose(model.lm_head(torch.from_numpy(sc.hidden)).detach().numpy(), logits.numpy(), atol=1e-4)


def test_sampled_answers_are_seeded_and_scored_consistently(student):
    from acqsynth.models.interfaces import GenerationParams

    params = GenerationParams(max_new_tokens=12, temperature=1.0, n=3, seed=7)
    a = student.sample(PROMPTS[:2], params)
    b = student.sample(PROMPTS[:2], params)
    assert [[c.text for c in row] for row in a] == [[c.text for c in row] for row in b]
    assert all(len(row) == 3 for row in a)
    other = student.sample(PROMPTS[:2], GenerationParams(max_new_tokens=12, temperature=1.0, n=3, seed=8))
    assert [[c.text for c in row] for row in a] != [[c.text for c in row] for row in other]
