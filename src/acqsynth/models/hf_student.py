"""The student: the model whose learning the data is targeted at, scored through transformers.

Everything here is batched. Sequences are sorted by length, LEFT-padded with explicit position ids
(so a padded row gives the same numbers as the row alone), and only the logits of continuation
positions are materialised (`logits_to_keep`), which keeps memory at batch × continuation × vocab.
Prompt and continuation are tokenised separately and concatenated, as TRL does: the continuation's
tokens are exactly what the student would have to produce after the prompt.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from acqsynth.models.causal_lm import left_pad
from acqsynth.models.hf_generator import HFGenerator
from acqsynth.models.interfaces import Completion, GenerationParams, TokenScores
from acqsynth.tasks.base import Messages

_BLOCK = 32
"""Continuation positions reduced at a time (32 × a 49k vocabulary ≈ 6 MB per temporary)."""


def _cache_argument(model: Any) -> str:
    """The forward argument that takes a KV cache: `cache` in recent transformers, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


class TransformersStudent:
    """A causal LM from transformers (any checkpoint, alias or GGUF via `models.loader.load_student`) as a Student."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        batch_size: int = 8,
        max_length: int = 1024,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        if batch_size < 1 or max_length < 2:
            raise ValueError(f"batch_size must be >= 1 and max_length >= 2, got {batch_size} and {max_length}")
        self.batch_size = batch_size
        context = getattr(model.config, "max_position_embeddings", None)
        self.max_length = min(max_length, context) if context else max_length
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("the tokenizer has neither a pad nor an eos token")
        self.pad_id = int(pad)
        self._generator: HFGenerator | None = None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def format_prompt(self, prompt: Messages) -> str:
        return self.tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def score(
        self,
        prompts: Sequence[Messages],
        completions: Sequence[str],
        top_k: int = 0,
        stats: bool = False,
        hidden: bool = False,
    ) -> list[TokenScores]:
        formatted = [self.format_prompt(p) for p in prompts]
        return self.score_texts(formatted, completions, top_k=top_k, stats=stats, hidden=hidden)

    def score_texts(
        self,
        prefixes: Sequence[str],
        continuations: Sequence[str],
        top_k: int = 0,
        stats: bool = False,
        hidden: bool = False,
    ) -> list[TokenScores]:
        if len(prefixes) != len(continuations):
            raise ValueError(f"{len(prefixes)} prefixes but {len(continuations)} continuations")
        pairs = [(self._ids(p), self._ids(c)) for p, c in zip(prefixes, continuations, strict=True)]
        return self.score_ids(pairs, top_k=top_k, stats=stats, hidden=hidden)

    def fit(self, pairs: Sequence[tuple[list[int], list[int]]]) -> tuple[list[tuple[list[int], list[int]]], list[bool]]:
        """Pairs cut to `max_length`: the end of the prefix and the start of the continuation survive.

        An empty prefix becomes one pad token (so the first continuation token has a context). One
        warning counts the pairs that were cut; the flags say which.
        """
        seqs, cut = [], []
        for prefix, cont in pairs:
            prefix = list(prefix) or [self.pad_id]
            was_cut = len(prefix) + len(cont) > self.max_length
            if was_cut:  # the answer keeps at most the room the prompt does not need, and half at least
                room = max(self.max_length - len(prefix), self.max_length // 2, 1)
                cont = list(cont[: min(room, self.max_length - 1)])
                prefix = prefix[-(self.max_length - len(cont)) :]
            cut.append(was_cut)
            seqs.append((prefix, list(cont)))
        if any(cut):
            warnings.warn(
                f"{sum(cut)} of {len(pairs)} sequences exceed max_length={self.max_length} tokens: "
                "kept the end of the prompt and the start of the answer",
                stacklevel=3,
            )
        return seqs, cut

    def length_batches(self, seqs: Sequence[tuple[list[int], list[int]]]) -> list[list[int]]:
        """Indices of `seqs` grouped into batches of similar total length (longest first)."""
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]) + len(seqs[i][1]), reverse=True)
        return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]

    def score_ids(
        self,
        pairs: Sequence[tuple[list[int], list[int]]],
        top_k: int = 0,
        stats: bool = False,
        hidden: bool = False,
    ) -> list[TokenScores]:
        """Score pre-tokenised (prefix ids, continuation ids) pairs in length-sorted batches.

        Over-long pairs are cut by `fit` and flagged `truncated`. `stats` adds per-token entropy and
        sum of squared probabilities, `hidden` the lm_head inputs.
        """
        seqs, cut = self.fit(pairs)
        out: list[TokenScores | None] = [None] * len(pairs)
        for idx in self.length_batches(seqs):
            batch = [seqs[i] for i in idx]
            for i, scores in zip(idx, self._score_batch(batch, top_k, stats, hidden), strict=True):
                scores.truncated = cut[i]
                out[i] = scores
        return out  # type: ignore[return-value]

    @torch.inference_mode()
    def continuation_logits(
        self, batch: Sequence[tuple[list[int], list[int]]], hidden: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward over a batch: fp32 logits at every continuation position, flattened.

        Row b's continuation occupies `len(c_0) + … + len(c_{b-1})` onwards; position t's logits
        predict continuation token t. With `hidden`, also the final hidden states there ([N, d]).
        Pairs must already fit `max_length` (see `fit`).
        """
        max_cont = max(len(c) for _, c in batch)
        dev = self.device
        if max_cont == 0:
            return torch.zeros(0, self.model.config.vocab_size, device=dev), (
                torch.zeros(0, self.model.config.hidden_size, device=dev) if hidden else None
            )
        out = self._forward([p + c for p, c in batch], max_cont + 1, hidden)
        logits = torch.cat([out.logits[b, max_cont - len(c) : max_cont] for b, (_, c) in enumerate(batch)]).float()
        h = None
        if hidden:
            last = out.hidden_states[-1]
            width = last.shape[1]
            h = torch.cat([last[b, width - len(c) - 1 : width - 1] for b, (_, c) in enumerate(batch)]).float()
        return logits, h

    @torch.inference_mode()
    def score_options(
        self, contexts: Sequence[list[int]], options: Sequence[Sequence[list[int]]]
    ) -> list[np.ndarray]:
        """Sum of log p(option tokens | context) for every option of every context.

        Each context is computed once: a batch of contexts goes through the model with a KV cache,
        the cache is copied to one row per option, and all options of the batch follow in a second
        forward pass. So a question with four options costs one prompt pass, not four. Every
        option must have at least one token; over-long contexts keep their end (see `fit`).
        """
        if len(contexts) != len(options):
            raise ValueError(f"{len(contexts)} contexts but {len(options)} option lists")
        if any(len(o) == 0 for opts in options for o in opts):
            raise ValueError("every option needs at least one token")
        out: list[np.ndarray] = [np.zeros(0) for _ in contexts]
        longest = [max((len(o) for o in opts), default=0) for opts in options]
        ctxs = []
        for ctx, room in zip(contexts, longest, strict=True):
            ctx = list(ctx) or [self.pad_id]
            keep = max(self.max_length - room, 1)
            if len(ctx) > keep:
                warnings.warn(f"a context of {len(ctx)} tokens was cut to its last {keep}", stacklevel=2)
            ctxs.append(ctx[-keep:])
        order = sorted(range(len(ctxs)), key=lambda i: len(ctxs[i]), reverse=True)
        for start in range(0, len(order), self.batch_size):
            idx = [i for i in order[start : start + self.batch_size] if options[i]]
            if idx:
                for i, sums in zip(idx, self._options_batch([ctxs[i] for i in idx], [options[i] for i in idx]),
                                   strict=True):
                    out[i] = sums
        return out

    def _options_batch(self, ctxs: list[list[int]], options: list[Sequence[list[int]]]) -> list[np.ndarray]:
        """`score_options` for one batch of contexts: a cached prompt pass, then one pass over all options."""
        dev = self.device
        input_ids, mask, position_ids = left_pad(ctxs, self.pad_id)
        first = self.model(
            input_ids=input_ids.to(dev), attention_mask=mask.to(dev), position_ids=position_ids.to(dev),
            use_cache=True, logits_to_keep=1,
        )
        first_logp = torch.log_softmax(first.logits[:, -1].float(), -1)  # predicts each option's first token
        owner = torch.tensor([b for b, opts in enumerate(options) for _ in opts], device=dev)
        conts = [o for opts in options for o in opts]
        cache = getattr(first, "cache", None) or first.past_key_values
        cache.batch_select_indices(owner)
        width = max(len(c) for c in conts)
        cont_ids = torch.full((len(conts), width), self.pad_id, dtype=torch.long)
        cont_mask = torch.zeros((len(conts), width), dtype=torch.long)
        for r, c in enumerate(conts):
            cont_ids[r, : len(c)] = torch.tensor(c)
            cont_mask[r, : len(c)] = 1
        lengths = mask.sum(1).to(dev)[owner]
        second = self.model(
            input_ids=cont_ids.to(dev),
            attention_mask=torch.cat([mask.to(dev)[owner], cont_mask.to(dev)], 1),
            position_ids=lengths[:, None] + torch.arange(width, device=dev)[None],
            use_cache=True,
            **{_cache_argument(self.model): cache},
        )
        sums = []
        for r, c in enumerate(conts):
            target = torch.tensor(c, device=dev)
            total = first_logp[owner[r], target[0]]
            if len(c) > 1:
                logp = torch.log_softmax(second.logits[r, : len(c) - 1].float(), -1)
                total = total + logp.gather(-1, target[1:, None]).sum()
            sums.append(float(total))
        per_ctx, k = [], 0
        for opts in options:
            per_ctx.append(np.asarray(sums[k : k + len(opts)], dtype=np.float64))
            k += len(opts)
        return per_ctx

    def _forward(self, seqs: list[list[int]], keep: int, hidden: bool) -> Any:
        """The model on left-padded `seqs`, logits for the last `keep` positions only."""
        input_ids, mask, position_ids = left_pad(seqs, self.pad_id)
        dev = self.device
        return self.model(
            input_ids=input_ids.to(dev),
            attention_mask=mask.to(dev),
            position_ids=position_ids.to(dev),
            logits_to_keep=keep,
            output_hidden_states=hidden,
        )

    @torch.inference_mode()
    def _score_batch(
        self, batch: list[tuple[list[int], list[int]]], top_k: int, stats: bool = False, hidden: bool = False
    ) -> list[TokenScores]:
        max_cont = max(len(c) for _, c in batch)
        hidden_size = self.model.config.hidden_size if hidden else 0
        if max_cont == 0:
            return [self._empty(top_k, stats, hidden_size) for _ in batch]
        out = self._forward([p + c for p, c in batch], max_cont + 1, hidden)
        dev = self.device
        width = max(len(p) + len(c) for p, c in batch)
        results = []
        for row, (_, c) in enumerate(batch):
            n = len(c)
            if n == 0:
                results.append(self._empty(top_k, stats, hidden_size))
                continue
            targets = torch.tensor(c, device=dev)
            parts: dict[str, list[torch.Tensor]] = {"lp": [], "tv": [], "ti": [], "ent": [], "sq": []}
            # Position blocks small enough to stay in cache: these reductions are memory-bound.
            for lo in range(0, n, _BLOCK):
                hi = min(n, lo + _BLOCK)
                logits = out.logits[row, max_cont - n + lo : max_cont - n + hi].float()
                logp = logits - torch.logsumexp(logits, -1, keepdim=True)
                parts["lp"].append(logp.gather(-1, targets[lo:hi, None])[:, 0])
                if top_k:
                    vals, ids = logp.topk(top_k, dim=-1)
                    parts["tv"].append(vals)
                    parts["ti"].append(ids)
                if stats:
                    prob = logp.exp()
                    parts["ent"].append(torch.special.entr(prob).sum(-1))
                    parts["sq"].append(prob.square().sum(-1))
            scores = TokenScores(np.asarray(c, dtype=np.int64), torch.cat(parts["lp"]).cpu().numpy())
            if top_k:
                scores.topk_logprobs = torch.cat(parts["tv"]).cpu().numpy()
                scores.topk_ids = torch.cat(parts["ti"]).cpu().numpy()
            if stats:
                scores.entropy = torch.cat(parts["ent"]).cpu().numpy()
                scores.sum_sq = torch.cat(parts["sq"]).cpu().numpy()
            if hidden:
                scores.hidden = out.hidden_states[-1][row, width - n - 1 : width - 1].float().cpu().numpy()
            results.append(scores)
        return results

    @staticmethod
    def _empty(top_k: int, stats: bool, hidden_size: int) -> TokenScores:
        scores = TokenScores(np.zeros(0, np.int64), np.zeros(0, np.float32))
        if top_k:
            scores.topk_logprobs, scores.topk_ids = np.zeros((0, top_k), np.float32), np.zeros((0, top_k), np.int64)
        if stats:
            scores.entropy, scores.sum_sq = np.zeros(0, np.float32), np.zeros(0, np.float32)
        if hidden_size:
            scores.hidden = np.zeros((0, hidden_size), np.float32)
        return scores

    def sample(
        self, prompts: Sequence[Messages], params: GenerationParams, seed_index: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        if self._generator is None:
            self._generator = HFGenerator.from_student(self)
        return self._generator.generate(list(prompts), params, seed_index=seed_index)

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
