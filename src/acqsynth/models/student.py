"""The student: the model whose learning the data is targeted at, scored through transformers.

Everything here is batched. Sequences are sorted by length, LEFT-padded with explicit position ids
(so a padded row gives the same numbers as the row alone), and only the logits of continuation
positions are materialised (`logits_to_keep`), which keeps memory at batch × continuation × vocab.
Prompt and continuation are tokenised separately and concatenated, as TRL does: the continuation's
tokens are exactly what the student would have to produce after the prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from acqsynth.models.generator import Completion, GenerationParams
from acqsynth.tasks.base import Messages


@dataclass
class TokenScores:
    """Per-token scores of one continuation under the student."""

    token_ids: np.ndarray
    """Continuation token ids, shape [T]."""
    logprobs: np.ndarray
    """log p(token_t | prefix, tokens_<t), shape [T]."""
    topk_logprobs: np.ndarray | None = None
    """The k largest next-token log-probs at each position (descending), shape [T, k]."""
    topk_ids: np.ndarray | None = None
    """Token ids of `topk_logprobs`, shape [T, k]."""

    @property
    def mean_nll(self) -> float:
        """Mean negative log-likelihood per continuation token (0.0 for an empty continuation)."""
        return float(-self.logprobs.mean()) if self.logprobs.size else 0.0


class Student(Protocol):
    """What acquisition functions and evaluation need from a student model."""

    def format_prompt(self, prompt: Messages) -> str:
        """The chat-formatted text of a prompt, ending where the assistant's answer begins."""
        ...

    def score(self, prompts: Sequence[Messages], completions: Sequence[str], top_k: int = 0) -> list[TokenScores]:
        """Token log-probs (and optionally top-k log-probs) of each completion after its chat prompt."""
        ...

    def score_texts(self, prefixes: Sequence[str], continuations: Sequence[str], top_k: int = 0) -> list[TokenScores]:
        """Like `score`, on raw text prefixes (no chat template)."""
        ...

    def answer_loss(self, prompts: Sequence[Messages], completions: Sequence[str]) -> np.ndarray:
        """Mean cross-entropy over the completion tokens only, one float per pair."""
        ...

    def embed(self, prompts: Sequence[Messages]) -> np.ndarray:
        """Mean-pooled final hidden states of the chat-formatted prompts, shape [N, hidden]."""
        ...

    def sample(self, prompts: Sequence[Messages], params: GenerationParams) -> list[list[Completion]]:
        """The student's own answers: `params.n` completions per prompt, reproducible under `params.seed`."""
        ...


def left_pad(seqs: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, position_ids) of left-padded rows; positions count real tokens only."""
    width = max(len(x) for x in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, x in enumerate(seqs):
        input_ids[row, width - len(x) :] = torch.tensor(x, dtype=torch.long)
        mask[row, width - len(x) :] = 1
    return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def default_device() -> torch.device:
    """CUDA if present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class TransformersStudent:
    """A causal LM from transformers (any checkpoint, alias or GGUF via `load_student`) as a Student."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 8,
        max_length: int = 1024,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.max_length = max_length
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token")
        self.pad_id = int(pad)
        self._generator: Any = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def format_prompt(self, prompt: Messages) -> str:
        return self.tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def score(self, prompts: Sequence[Messages], completions: Sequence[str], top_k: int = 0) -> list[TokenScores]:
        return self.score_texts([self.format_prompt(p) for p in prompts], completions, top_k=top_k)

    def score_texts(self, prefixes: Sequence[str], continuations: Sequence[str], top_k: int = 0) -> list[TokenScores]:
        if len(prefixes) != len(continuations):
            raise ValueError(f"{len(prefixes)} prefixes but {len(continuations)} continuations")
        pairs = [(self._ids(p), self._ids(c)) for p, c in zip(prefixes, continuations, strict=True)]
        return self.score_ids(pairs, top_k=top_k)

    def score_ids(self, pairs: Sequence[tuple[list[int], list[int]]], top_k: int = 0) -> list[TokenScores]:
        """Score pre-tokenised (prefix ids, continuation ids) pairs; the prefix is cut from the left to fit."""
        out: list[TokenScores | None] = [None] * len(pairs)
        seqs = []
        for prefix, cont in pairs:
            if len(cont) + 1 > self.max_length:
                raise ValueError(f"a continuation of {len(cont)} tokens exceeds max_length={self.max_length}")
            keep = self.max_length - len(cont)
            prefix = prefix[-keep:] if prefix else [self.pad_id]  # an empty prefix is scored after one pad token
            seqs.append((prefix, cont))
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]) + len(seqs[i][1]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            for i, scores in zip(idx, self._score_batch([seqs[i] for i in idx], top_k), strict=True):
                out[i] = scores
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def _score_batch(self, batch: list[tuple[list[int], list[int]]], top_k: int) -> list[TokenScores]:
        max_cont = max(len(c) for _, c in batch)
        input_ids, mask, position_ids = left_pad([p + c for p, c in batch], self.pad_id)
        dev = self.device
        if max_cont == 0:
            return [TokenScores(np.zeros(0, np.int64), np.zeros(0, np.float32)) for _ in batch]
        logits = self.model(
            input_ids=input_ids.to(dev),
            attention_mask=mask.to(dev),
            position_ids=position_ids.to(dev),
            logits_to_keep=max_cont + 1,
        ).logits[:, :-1].float()  # the last max_cont positions, each predicting the next token
        logp = torch.log_softmax(logits, dim=-1)
        results = []
        for row, (_, c) in enumerate(batch):
            n = len(c)
            if n == 0:
                results.append(TokenScores(np.zeros(0, np.int64), np.zeros(0, np.float32)))
                continue
            lp = logp[row, max_cont - n :]
            ids = torch.tensor(c, device=lp.device)
            token_lp = lp.gather(-1, ids[:, None])[:, 0]
            scores = TokenScores(np.asarray(c, dtype=np.int64), token_lp.cpu().numpy())
            if top_k:
                vals, tops = lp.topk(top_k, dim=-1)
                scores.topk_logprobs, scores.topk_ids = vals.cpu().numpy(), tops.cpu().numpy()
            results.append(scores)
        return results

    def sample(self, prompts: Sequence[Messages], params: GenerationParams) -> list[list[Completion]]:
        from acqsynth.models.hf_generator import HFGenerator

        if self._generator is None:
            self._generator = HFGenerator.from_student(self)
        return self._generator.generate(list(prompts), params)

    def answer_loss(self, prompts: Sequence[Messages], completions: Sequence[str]) -> np.ndarray:
        return np.array([s.mean_nll for s in self.score(prompts, completions)], dtype=np.float64)

    @torch.inference_mode()
    def embed(self, prompts: Sequence[Messages]) -> np.ndarray:
        texts = [self.format_prompt(p) for p in prompts]
        ids = [self._ids(t)[-self.max_length :] for t in texts]
        hidden = self.model.config.hidden_size
        out = np.zeros((len(ids), hidden), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            input_ids, mask, position_ids = left_pad([ids[i] for i in idx], self.pad_id)
            dev = self.device
            h = self.model(
                input_ids=input_ids.to(dev),
                attention_mask=mask.to(dev),
                position_ids=position_ids.to(dev),
                output_hidden_states=True,
                logits_to_keep=1,
            ).hidden_states[-1].float()
            m = mask.to(h.device).unsqueeze(-1).float()
            pooled = (h * m).sum(1) / m.sum(1).clamp(min=1)
            out[idx] = pooled.cpu().numpy()
        return out


def load_causal_lm(spec: str, device: str | None = None, dtype: str | torch.dtype | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for an alias, checkpoint directory, GGUF file or hub id; fp32 on CPU, bf16 on CUDA."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from acqsynth.models.aliases import hf_model_path

    path = hf_model_path(spec)
    dev = torch.device(device) if device else default_device()
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(dev)
    return model, tokenizer


def load_student(
    spec: str,
    device: str | None = None,
    dtype: str | None = None,
    batch_size: int = 8,
    max_length: int = 1024,
) -> TransformersStudent:
    """Load a student from an alias, checkpoint directory, GGUF file or hub id (fp32 on CPU by default)."""
    model, tokenizer = load_causal_lm(spec, device, dtype)
    return TransformersStudent(model, tokenizer, batch_size=batch_size, max_length=max_length)
