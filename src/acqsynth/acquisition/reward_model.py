"""Reward-model score: any Hugging Face sequence-classification reward model rates (question, answer).

`ctx.reward_model` is a loaded `(model, tokenizer)` pair, or a checkpoint directory / hub id that is
loaded once per context with `AutoModelForSequenceClassification` (fp32 on CPU, bf16 on CUDA).

The text the reward model reads is the conversation [prompt, assistant: answer] formatted with the
tokenizer's chat template, where the prompt is `ctx.prompt(sample)` (the bare question as the user
turn when there is no task). A tokenizer without a chat template reads the prompt's message texts
and the answer joined by blank lines. The answer is the reference answer, the student's own first
sampled answer, or nothing (`answer="none"`: the question alone).

Sequences are sorted by length, right-padded into batches, and scored in inference mode. The score
is logit `label` at the last token that is not the pad token (transformers' own rule for sequence
classification, so a padded row scores what it scores alone); the pad id is the model config's, else
the tokenizer's, else EOS, and is written into the model config when it has none. Inputs longer than
`max_length` tokens are cut on the tokenizer's `truncation_side` (one warning counts them).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from acqsynth.acquisition.base import ScoringContext
from acqsynth.errors import AcqsynthError
from acqsynth.models.causal_lm import default_device
from acqsynth.samples import Sample
from acqsynth.tasks.base import Messages

ANSWER_MODES = ("reference", "own", "none")


def load_reward_model(spec: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a sequence-classification checkpoint directory or hub id, in eval mode."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    device = default_device()
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(spec)
        model = AutoModelForSequenceClassification.from_pretrained(spec, dtype=dtype)
    except (OSError, ValueError) as e:
        raise AcqsynthError(f"cannot load reward model {spec!r}: {e}") from None
    return model.to(device).eval(), tokenizer


def reward_ids(tokenizer: Any, prompt: Messages, answer: str | None) -> list[int]:
    """Token ids of the conversation [prompt, assistant: answer] as the reward model reads it (untruncated)."""
    messages = list(prompt) + ([{"role": "assistant", "content": answer}] if answer is not None else [])
    if getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False)
        return tokenizer(text, add_special_tokens=False)["input_ids"]  # the template holds any BOS
    return tokenizer("\n\n".join(m["content"] for m in messages))["input_ids"]


def pad_id_for(model: Any, tokenizer: Any) -> int:
    """The id rows are padded with, set as the model config's pad id so that transformers pools the
    last real token; the tokenizer gets EOS as its pad token when it has none."""
    config = model.config.get_text_config()
    if tokenizer.pad_token_id is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    pad = config.pad_token_id if config.pad_token_id is not None else tokenizer.pad_token_id
    if pad is None:
        raise AcqsynthError("reward model: the tokenizer has neither a pad nor an EOS token to pad with")
    if config.pad_token_id is None:
        config.pad_token_id = int(pad)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = int(pad)
    return int(pad)


@torch.inference_mode()
def reward_logits(model: Any, seqs: Sequence[list[int]], pad_id: int, batch_size: int) -> np.ndarray:
    """Logits [N, num_labels] (float64) of token sequences, in input order; batched longest first."""
    device = next(model.parameters()).device
    out = np.full((len(seqs), model.config.num_labels), np.nan, dtype=np.float64)
    order = sorted((i for i, s in enumerate(seqs) if s), key=lambda i: -len(seqs[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        width = max(len(seqs[i]) for i in rows)
        input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, i in enumerate(rows):
            input_ids[r, : len(seqs[i])] = torch.tensor(seqs[i], dtype=torch.long)
            mask[r, : len(seqs[i])] = 1
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        out[rows] = logits.double().cpu().numpy()
    return out


@dataclass
class RewardModel:
    """A reward model's score of each sample's question with its reference or student answer (or of
    the question alone). One of the selection criteria compared in active synthetic data generation
    (arXiv 2512.00884). The score is the raw reward: higher reward = higher score."""

    name: ClassVar[str] = "reward-model"
    label: int = 0
    """Which output logit is the score (a one-logit reward model has only label 0)."""
    answer: str = "reference"
    """'reference' (the sample's answer), 'own' (the student's first sampled answer) or 'none' (question only)."""
    batch_size: int = 8
    """Sequences per forward pass."""
    max_length: int = 1024
    """Longest input in tokens; longer ones are cut on the tokenizer's truncation side."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        if self.answer not in ANSWER_MODES:
            raise AcqsynthError(
                f"acquisition {self.name!r}: answer={self.answer!r} is not one of {', '.join(ANSWER_MODES)}"
            )
        if self.batch_size < 1 or self.max_length < 1:
            raise AcqsynthError(f"acquisition {self.name!r}: batch_size and max_length must be >= 1")
        if not samples:
            return np.empty(0, dtype=np.float64)
        source = ctx.need("reward_model", by=self.name)
        if isinstance(source, str):
            model, tokenizer = ctx.memo(f"{self.name}:{source}", lambda: load_reward_model(source))
        else:
            model, tokenizer = source
        num_labels = model.config.num_labels
        if not 0 <= self.label < num_labels:
            raise AcqsynthError(
                f"acquisition {self.name!r}: label={self.label} but the reward model has {num_labels} "
                f"output logit(s); use 0..{num_labels - 1}"
            )
        if self.answer == "reference":
            answers: list[str | None] = [ctx.reference_answer(s, by=self.name) for s in samples]
        elif self.answer == "own":
            answers = [a[0] for a in ctx.answers(samples, 1, by=self.name)]
        else:
            answers = [None] * len(samples)
        seqs = [reward_ids(tokenizer, ctx.prompt(s), a) for s, a in zip(samples, answers, strict=True)]
        cut = [len(s) > self.max_length for s in seqs]
        if any(cut):
            warnings.warn(
                f"{self.name}: {sum(cut)} of {len(seqs)} inputs exceed max_length={self.max_length} tokens "
                f"and were cut on the {getattr(tokenizer, 'truncation_side', 'right')} side",
                stacklevel=2,
            )
        seqs = [self._fit(s, getattr(tokenizer, "truncation_side", "right")) for s in seqs]
        model.eval()
        return reward_logits(model, seqs, pad_id_for(model, tokenizer), self.batch_size)[:, self.label]

    def _fit(self, ids: list[int], side: str) -> list[int]:
        if len(ids) <= self.max_length:
            return ids
        return ids[-self.max_length :] if side == "left" else ids[: self.max_length]
