"""Exact per-sample gradient norms from one batched pass, against one backward per sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from peft import LoraConfig, get_peft_model
from tiny import make_tiny_model

from acqsynth.acquisition import GradientNorm, ScoringContext, coverage, per_sample_grad_norms
from acqsynth.errors import AcqsynthError
from acqsynth.models.loader import load_student
from acqsynth.samples import Sample

PAIRS = [
    ("What is 12 + 7?", " 19 #### 19"),
    ("The quick brown fox", " jumps over the lazy dog"),
    ("x", " 1"),
    ("Natalia sold clips to 48 of her friends in April, and then", " she sold half as many clips in May."),
]


def naive_norm(model, prompt_ids: list[int], answer_ids: list[int]) -> float:
    """One forward and one backward for one sample; the norm of all parameter gradients, by loops."""
    model.zero_grad(set_to_none=True)
    ids = torch.tensor([prompt_ids + answer_ids])
    logits = model(ids).logits[0, len(prompt_ids) - 1 : -1]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(answer_ids))
    loss.backward()
    total = 0.0
    for p in model.parameters():
        if p.grad is not None:
            for v in p.grad.double().flatten().tolist():
                total += v * v
    model.zero_grad(set_to_none=True)
    return total**0.5


def tokenised(tok):
    return [(tok(p, add_special_tokens=False)["input_ids"], tok(a, add_special_tokens=False)["input_ids"]) for p, a in PAIRS]


@pytest.fixture(scope="module")
def student(tiny_model_dir):
    return load_student(str(tiny_model_dir), device="cpu", batch_size=3)


def test_full_model_with_tied_embeddings_matches_naive(student):
    model = student.model
    assert model.get_input_embeddings().weight is model.lm_head.weight  # the tied case is exercised
    pairs = tokenised(student.tokenizer)
    got = per_sample_grad_norms(model, pairs, student.pad_id)
    ref = np.array([naive_norm(model, p, a) for p, a in pairs])
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert not any(p.requires_grad is False for p in model.parameters())  # flags restored
    cov = coverage(model)
    assert set(cov) == {"tied-embedding", "tied-linear", "linear", "vmap"}
    assert len(cov["linear"]) == 2 * 7 and len(cov["vmap"]) == 2 * 2 + 1  # q,k,v,o,gate,up,down; norms


def test_untied_model_with_biases_matches_naive(tmp_path):
    from transformers import AutoModelForCausalLM

    path = make_tiny_model(tmp_path / "m", seed=3)
    model = AutoModelForCausalLM.from_pretrained(path, tie_word_embeddings=False, attention_bias=True)
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone() + 0.01)
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and m.bias is not None:
            torch.nn.init.normal_(m.bias, std=0.1)
    model.eval()
    student = load_student(str(path), device="cpu")
    pairs = tokenised(student.tokenizer)
    got = per_sample_grad_norms(model, pairs, student.pad_id)
    ref = np.array([naive_norm(model, p, a) for p, a in pairs])
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert "tied-embedding" not in coverage(model)


def test_lora_matches_naive(student, tmp_path):
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(student.model.name_or_path)
    model = get_peft_model(base, LoraConfig(r=4, target_modules=["q_proj", "v_proj", "down_proj"], lora_dropout=0.1))
    for n, p in model.named_parameters():
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.1)  # B starts at 0; give it a value so both factors count
    model.eval()
    pairs = tokenised(student.tokenizer)
    got = per_sample_grad_norms(model, pairs, student.pad_id)
    ref = np.array([naive_norm(model, p, a) for p, a in pairs])
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert set(coverage(model)) == {"linear"}


def test_batching_and_padding_do_not_change_norms(student):
    pairs = tokenised(student.tokenizer)
    together = per_sample_grad_norms(student.model, pairs, student.pad_id)
    alone = np.array([per_sample_grad_norms(student.model, [p], student.pad_id)[0] for p in pairs])
    np.testing.assert_allclose(together, alone, rtol=1e-5)


def test_properties(student):
    tok = student.tokenizer
    p, a = tokenised(tok)[0]
    # an empty answer has no loss: undefined, reported as NaN
    assert np.isnan(per_sample_grad_norms(student.model, [(p, [])], student.pad_id)[0])
    # a duplicated sample gets exactly its own norm, not a shared or doubled one
    both = per_sample_grad_norms(student.model, [(p, a), (p, a)], student.pad_id)
    assert both[0] == pytest.approx(both[1], rel=1e-6)


def test_acquisition_on_samples_and_frozen_model(student):
    samples = [Sample(id=str(i), question=q, answer=a.strip()) for i, (q, a) in enumerate(PAIRS)]
    ctx = ScoringContext(student=student)
    scores = GradientNorm().score(samples, ctx)
    assert scores.shape == (4,) and np.all(scores > 0)
    # same through the naive path on the chat-formatted text
    ref = []
    for s in samples:
        prompt = student.format_prompt([{"role": "user", "content": s.question}])
        ref.append(naive_norm(student.model, student._ids(prompt), student._ids(s.answer)))
    np.testing.assert_allclose(scores, ref, rtol=1e-4)
    for p in student.model.parameters():
        p.requires_grad_(False)
    try:
        with pytest.raises(AcqsynthError, match="no trainable parameters"):
            GradientNorm().score(samples, ctx)
    finally:
        for p in student.model.parameters():
            p.requires_grad_(True)


def test_trainable_module_outside_the_forward_is_refused(tmp_path):
    from transformers import AutoModelForCausalLM

    path = make_tiny_model(tmp_path / "m2", seed=5)
    model = AutoModelForCausalLM.from_pretrained(path)
    model.value_head = torch.nn.Linear(4, 1)  # trainable, never called: its gradient would be missing
    student = load_student(str(path), device="cpu")
    model.eval()
    train_mode_before = model.training
    with pytest.raises(AcqsynthError, match="value_head did not run"):
        per_sample_grad_norms(model, tokenised(student.tokenizer)[:2], student.pad_id)
    assert model.training == train_mode_before


def test_default_scores_the_final_answer_alone_as_the_authors_code(student):
    """With a task whose target is reasoning + `#### answer`, the default (`answer=final`) takes the
    gradient of the loss on the final answer's tokens only; `answer=reference` on the whole target."""
    from acqsynth.tasks import get_task

    task = get_task("math")
    samples = [Sample(id="a", question="What is 12 + 7?", reasoning="12 + 7 = 19.", answer="19"),
               Sample(id="b", question="Tom has 3 apples and eats 1.", reasoning="3 - 1 = 2.", answer="2")]
    ctx = ScoringContext(student=student, task=task)
    final = GradientNorm().score(samples, ctx)
    whole = GradientNorm(answer="reference").score(samples, ctx)
    hand = [naive_norm(student.model, student._ids(student.format_prompt(task.prompt(s))), student._ids(s.answer))
            for s in samples]
    np.testing.assert_allclose(final, hand, rtol=1e-4)
    assert task.target(samples[0]) != samples[0].answer and not np.allclose(final, whole, rtol=1e-3)
    with pytest.raises(AcqsynthError, match="empty 'answer' field"):
        GradientNorm().score([Sample(id="c", question="q", reasoning="r", answer="")], ctx)
