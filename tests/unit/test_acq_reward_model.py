"""Reward-model scores against naive one-sample, unpadded forwards of a tiny random reward model."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tiny import make_tokenizer, tiny_llama_config
from transformers import (
    GPT2Config,
    GPT2ForSequenceClassification,
    LlamaForSequenceClassification,
)

import acqsynth.acquisition.reward_model as rm
from acqsynth.acquisition.base import ScoringContext
from acqsynth.acquisition.reward_model import RewardModel
from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import GenerationParams
from acqsynth.models.loader import load_student
from acqsynth.samples import Sample

QUESTIONS = [
    ("q1", "What is 12 + 7?", "19"),
    ("q2", "Natalia sold clips to 48 of her friends in April, and then half as many in May. How many?", "72"),
    ("q3", "Which gas do plants absorb?", "carbon dioxide"),
    ("q4", "def add(a, b):", "return a + b"),
    ("q5", "The quick brown fox", "jumps over the lazy dog 0 1 2 3 4 5 6 7 8 9"),
    ("q6", "hi", "0"),
]


def make_reward_model(num_labels: int, seed: int = 0, arch: str = "llama") -> tuple[object, object]:
    """A 2-layer random reward model (Llama: rotary positions; GPT-2: absolute positions, where padding
    on the wrong side would change the scores), weights scaled up so that scores differ clearly by
    input. Its config has no pad id: the function under test must set one."""
    tok = make_tokenizer()
    torch.manual_seed(seed)
    if arch == "llama":
        config = tiny_llama_config(tok, num_labels=num_labels, pad_token_id=None)
        model = LlamaForSequenceClassification(config).eval()
    else:
        config = GPT2Config(
            vocab_size=len(tok),
            n_embd=32,
            n_layer=2,
            n_head=4,
            n_positions=512,
            num_labels=num_labels,
            pad_token_id=None,
            bos_token_id=None,
            eos_token_id=tok.eos_token_id,
        )
        model = GPT2ForSequenceClassification(config).eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" not in name and "ln_" not in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return model, tok


@pytest.fixture(scope="module")
def rm1():
    return make_reward_model(1)


@pytest.fixture(scope="module")
def rm3():
    return make_reward_model(3, seed=7)


@pytest.fixture
def samples():
    return [Sample(id=i, question=q, answer=a) for i, q, a in QUESTIONS]


def naive_reward(model, tok, question: str, answer: str | None, label: int, max_length: int = 10**9) -> float:
    """One sample, no padding, no pooling logic: the score head on the hidden state of the last token."""
    if tok.chat_template:
        messages = [{"role": "user", "content": question}]
        if answer is not None:
            messages.append({"role": "assistant", "content": answer})
        ids = tok(tok.apply_chat_template(messages, tokenize=False), add_special_tokens=False)["input_ids"]
    else:
        ids = tok(question if answer is None else question + "\n\n" + answer)["input_ids"]
    ids = ids[:max_length]
    with torch.no_grad():
        hidden = getattr(model, model.base_model_prefix)(torch.tensor([ids])).last_hidden_state[0, -1]
        return float(model.score(hidden)[label].double())


@pytest.fixture(scope="module")
def gpt2_rm():
    return make_reward_model(2, seed=11, arch="gpt2")


@pytest.mark.parametrize("answer", ["reference", "none"])
@pytest.mark.parametrize("which", ["llama-1", "llama-3", "gpt2-2"])
def test_scores_equal_naive_unpadded_forward(rm1, rm3, gpt2_rm, samples, answer, which):
    model, tok = {"llama-1": rm1, "llama-3": rm3, "gpt2-2": gpt2_rm}[which]
    num_labels = model.config.num_labels
    for label in range(num_labels):
        got = RewardModel(label=label, answer=answer, batch_size=4).score(
            samples, ScoringContext(reward_model=(model, tok))
        )
        want = [
            naive_reward(model, tok, s.question, s.answer if answer == "reference" else None, label)
            for s in samples
        ]
        assert got.dtype == np.float64 and got.shape == (len(samples),)
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    assert len(set(np.round(got, 3))) == len(samples)  # the inputs really lead to different scores


def test_own_answer_is_the_students_first_sample(rm1, samples, tiny_model_dir):
    model, tok = rm1
    student = load_student(str(tiny_model_dir), device="cpu", batch_size=3)
    ctx = ScoringContext(
        student=student,
        reward_model=(model, tok),
        answer_params=GenerationParams(max_new_tokens=8, temperature=0.7),
    )
    got = RewardModel(answer="own").score(samples, ctx)
    own = [a[0] for a in ctx.answers(samples, 1, by="test")]  # cached: the same answers the function scored
    want = [naive_reward(model, tok, s.question, a, 0) for s, a in zip(samples, own, strict=True)]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_without_chat_template_reads_question_blank_line_answer(rm1, samples):
    model, tok = rm1
    plain = copy.deepcopy(tok)
    plain.chat_template = None
    got = RewardModel().score(samples, ScoringContext(reward_model=(model, plain)))
    want = [naive_reward(model, plain, s.question, s.answer, 0) for s in samples]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)
    templated = RewardModel().score(samples, ScoringContext(reward_model=(model, tok)))
    assert not np.allclose(got, templated)


@settings(max_examples=15, deadline=None)
@given(order=st.permutations(range(len(QUESTIONS))), batch_size=st.integers(1, len(QUESTIONS) + 1))
def test_independent_of_batch_size_and_order(rm3, order, batch_size):
    model, tok = rm3
    samples = [Sample(id=i, question=q, answer=a) for i, q, a in QUESTIONS]
    ctx = ScoringContext(reward_model=(model, tok))
    base = RewardModel(label=2, batch_size=1).score(samples, ctx)
    shuffled = RewardModel(label=2, batch_size=batch_size).score([samples[i] for i in order], ctx)
    np.testing.assert_allclose(shuffled, base[list(order)], atol=1e-5, rtol=0)


def test_label_picks_its_logit(rm3, samples):
    model, tok = rm3
    ctx = ScoringContext(reward_model=(model, tok))
    cols = np.stack([RewardModel(label=k).score(samples, ctx) for k in range(3)], axis=1)
    for s, row in zip(samples, cols, strict=True):
        ids = tok(
            tok.apply_chat_template(
                [{"role": "user", "content": s.question}, {"role": "assistant", "content": s.answer}],
                tokenize=False,
            ),
            add_special_tokens=False,
        )["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([ids])).logits[0].double().numpy()
        np.testing.assert_allclose(row, logits, atol=1e-5, rtol=0)
    assert not np.allclose(cols[:, 0], cols[:, 1]) and not np.allclose(cols[:, 1], cols[:, 2])
    with pytest.raises(AcqsynthError, match="3 output logit"):
        RewardModel(label=3).score(samples, ctx)


def test_pad_token_set_from_eos_when_missing(samples):
    model, tok = make_reward_model(1, seed=3)
    tok.pad_token = None
    assert tok.pad_token_id is None and model.config.pad_token_id is None
    got = RewardModel(batch_size=6).score(samples, ScoringContext(reward_model=(model, tok)))
    assert tok.pad_token_id == tok.eos_token_id and model.config.pad_token_id == tok.eos_token_id
    want = [naive_reward(model, tok, s.question, s.answer, 0) for s in samples]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_truncation_cuts_and_warns_once(rm1, samples):
    model, tok = rm1
    lengths = [
        len(
            tok(
                tok.apply_chat_template(
                    [{"role": "user", "content": s.question}, {"role": "assistant", "content": s.answer}],
                    tokenize=False,
                ),
                add_special_tokens=False,
            )["input_ids"]
        )
        for s in samples
    ]
    limit = sorted(lengths)[2]
    n_cut = sum(n > limit for n in lengths)
    with pytest.warns(UserWarning) as record:
        got = RewardModel(max_length=limit).score(samples, ScoringContext(reward_model=(model, tok)))
    assert len(record) == 1 and f"{n_cut} of {len(samples)} inputs exceed max_length={limit}" in str(
        record[0].message
    )
    want = [naive_reward(model, tok, s.question, s.answer, 0, max_length=limit) for s in samples]
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_loads_from_a_path_once_per_context(rm3, samples, tmp_path, monkeypatch):
    model, tok = rm3
    model.config.pad_token_id = tok.pad_token_id
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    loads = []

    def counting_load(spec):
        loads.append(spec)
        return real_load(spec)

    real_load = rm.load_reward_model
    monkeypatch.setattr(rm, "load_reward_model", counting_load)
    monkeypatch.setattr(rm, "default_device", lambda: torch.device("cpu"))  # fp32, as the pair
    ctx = ScoringContext(reward_model=str(tmp_path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from_path = RewardModel(label=1).score(samples, ctx)
        again = RewardModel(label=2).score(samples, ctx)
    assert loads == [str(tmp_path)]
    ctx_pair = ScoringContext(reward_model=(model, tok))
    np.testing.assert_allclose(from_path, RewardModel(label=1).score(samples, ctx_pair), atol=1e-5, rtol=0)
    np.testing.assert_allclose(again, RewardModel(label=2).score(samples, ctx_pair), atol=1e-5, rtol=0)


def test_errors_and_empty_input(rm1, samples, tmp_path):
    model, tok = rm1
    ctx = ScoringContext(reward_model=(model, tok))
    with pytest.raises(AcqsynthError, match="reference, own, none"):
        RewardModel(answer="gold").score(samples, ctx)
    with pytest.raises(AcqsynthError, match="reward-model.*--reward-model"):
        RewardModel().score(samples, ScoringContext())
    with pytest.raises(AcqsynthError, match="'q1'.*answer"):
        RewardModel().score([Sample(id="q1", question="What?", answer="")], ctx)
    with pytest.raises(AcqsynthError, match="cannot load reward model"):
        RewardModel().score(samples, ScoringContext(reward_model=str(tmp_path / "missing")))
    assert RewardModel().score([], ctx).shape == (0,)
