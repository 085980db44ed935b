"""Cloze scoring on the real SmolLM2-135M and real ARC-Easy items: the cached, batched option scores
equal a plain uncached forward pass, and acc_norm's pick follows lm-eval's length rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from acqsynth.data import load_data
from acqsynth.evaluation.cloze import cloze_request, cloze_scores, encode_pair
from acqsynth.models.loader import load_student
from acqsynth.samples import iter_samples

pytestmark = pytest.mark.integration


def test_cached_option_scores_equal_a_full_forward_on_real_items() -> None:
    student = load_student("smollm2-135m-instruct", batch_size=3)
    samples = list(iter_samples(load_data("arc-easy", split="eval").select(range(6))))
    res = cloze_scores(student, samples)
    for s, ll, pick_norm in zip(samples, res.loglik, res.pick_norm, strict=True):
        context, conts = cloze_request(s)
        want = []
        for c in conts:
            ctx, cont = encode_pair(student.tokenizer, context, c)
            with torch.no_grad():
                logits = student.model(input_ids=torch.tensor([ctx + cont])).logits[0].float()
            logp = torch.log_softmax(logits, -1)
            want.append(float(sum(logp[len(ctx) - 1 + t, tok] for t, tok in enumerate(cont))))
        np.testing.assert_allclose(ll, want, rtol=1e-4, atol=2e-4)
        assert pick_norm == int(np.argmax(np.array(want) / np.array([len(c) for c in s.choices], dtype=float)))
