"""A Generator on transformers `generate`: batched, left-padded, seeded per sample.

Prompts are chat-formatted with the tokenizer's template, sorted by length (longest first, so an
out-of-memory batch shows up at once), left-padded into batches of `batch_size` rows, and the
results are put back in prompt order. Position ids come from the attention mask, so a padded row
computes what it would compute alone.

Sampling does not use transformers' global-RNG sampler. A logits processor draws each row's token
with that row's own `torch.Generator`, seeded with `sample_seed(seed, prompt_index, sample_index)`,
by the exponential race argmax(p / E), E ~ Exp(1) (an exact draw from p). `generate` then runs in
greedy mode and picks that token. So a sample depends on its prompt, index and seed only, not on the
batch it lands in, the other prompts or `batch_size`, and the global torch RNG is left untouched.
The `n` samples of a prompt are rows of the batch, as `num_return_sequences=n` would make them.

Guarantee: same model, device, dtype, prompt, prompt index, params and seed → same text, whatever
the batching. One caveat is floating point: a padded row's logits differ from the row alone by
~1e-6 in fp32 (different matmul shapes), so a token flips only at a near-exact tie; in tests (tiny
model and SmolLM2-135M, fp32 CPU, batch sizes 1 to 12) texts were identical. bf16 on GPU has far
larger batch-shape effects, so there equal texts across batch compositions are likely, not certain.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

from acqsynth.errors import AcqsynthError
from acqsynth.models.causal_lm import left_pad, load_causal_lm
from acqsynth.models.interfaces import Completion, GenerationParams
from acqsynth.models.sampling import cut_at_stop, refuse_grammar, response_prefix, sample_seed, seed_indices
from acqsynth.tasks.base import Messages

if TYPE_CHECKING:  # hf_student imports this module
    from acqsynth.models.hf_student import TransformersStudent


def format_chat(tokenizer: Any, prompt: Messages) -> str:
    """The chat-formatted prompt text, ending where the assistant's answer begins; a final
    assistant message is a response prefix that the model continues."""
    prefix = response_prefix(prompt)
    if prefix is not None:
        head = tokenizer.apply_chat_template(list(prompt[:-1]), tokenize=False, add_generation_prompt=True)
        return head + prefix
    return tokenizer.apply_chat_template(list(prompt), tokenize=False, add_generation_prompt=True)


class SeededSampler(LogitsProcessor):
    """Samples one token per row from temperature/top-p-adjusted probabilities with a per-row RNG.

    Returns scores that are -inf everywhere except at the chosen token, so greedy decoding picks it.
    """

    def __init__(self, seeds: list[int], temperature: float, top_p: float) -> None:
        self.seeds, self.temperature, self.top_p = seeds, temperature, top_p
        self.generators: list[torch.Generator] | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        if self.generators is None:  # created on the device of the logits; one independent stream per row
            self.generators = [torch.Generator(device=scores.device).manual_seed(s) for s in self.seeds]
        probs = torch.softmax(scores.float() / self.temperature, dim=-1)
        if self.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True, stable=True)
            outside = (sorted_p.cumsum(-1) - sorted_p) >= self.top_p  # the top token is always kept
            probs = probs.masked_fill(outside.scatter(-1, order, outside), 0.0)
        noise = torch.stack(
            [
                torch.empty(probs.shape[-1], device=probs.device).exponential_(generator=g)
                for g in self.generators
            ]
        )
        chosen = (probs / noise).argmax(dim=-1, keepdim=True)
        return torch.full_like(scores, float("-inf")).scatter(-1, chosen, 0.0)


class FinishTracker(StoppingCriteria):
    """Records when each row finished (EOS or a stop string in its decoded text) and stops it there."""

    def __init__(
        self, tokenizer: Any, prompt_width: int, eos_ids: list[int], stop: list[str] | None, rows: int
    ):
        self.tokenizer, self.prompt_width, self.stop = tokenizer, prompt_width, stop or []
        self.eos_ids = torch.tensor(eos_ids, dtype=torch.long)
        # a stop string spans at most 4 byte-level tokens per character; a margin keeps decode context intact
        self.window = 4 * max((len(s) for s in self.stop), default=0) + 8
        self.lengths: list[int | None] = [None] * rows

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        generated = input_ids[:, self.prompt_width :]
        steps = generated.shape[1]
        tail = generated[:, -self.window :].cpu()
        done = torch.isin(tail[:, -1], self.eos_ids)
        for row, length in enumerate(self.lengths):
            if length is not None:
                done[row] = True
                continue
            if not done[row] and self.stop:
                text = self.tokenizer.decode(tail[row].tolist(), skip_special_tokens=True)
                done[row] = any(s in text for s in self.stop)
            if done[row]:
                self.lengths[row] = steps
        return done.to(input_ids.device)


class HFGenerator:
    """A transformers causal LM as a Generator.

    `model_or_path` is a checkpoint directory or hub id, or an already-loaded `(model, tokenizer)`
    pair (then `device` and `dtype` are ignored and the model is shared, e.g. with a Student).
    `batch_size` counts rows, i.e. prompts × samples, so it bounds memory whatever `n` is.

    Token counts are exact: `prompt_tokens` is the length of the chat-formatted prompt;
    `completion_tokens` counts every generated token, including a final EOS and any tokens of a stop
    string that was cut from the text.
    """

    def __init__(
        self,
        model_or_path: str | Path | tuple[Any, Any],
        device: str | None = None,
        batch_size: int = 8,
        dtype: str | torch.dtype | None = None,
        name: str | None = None,
    ) -> None:
        """`name`: what the model is called in `self.name` ("hf:NAME"), which keys the completion cache;
        None = the checkpoint's path or the loaded model's own name. Callers pass the spec the user gave
        (an alias), so that loading it and sharing a student's weights give the same cache keys."""
        if isinstance(model_or_path, tuple):
            model, tokenizer = model_or_path
            source = getattr(model.config, "_name_or_path", "") or type(model).__name__
        else:
            model, tokenizer = load_causal_lm(str(model_or_path), device, dtype)
            source = str(model_or_path)
        if getattr(tokenizer, "chat_template", None) is None:
            raise AcqsynthError(
                f"{source}: the tokenizer has no chat template, so chat prompts cannot be formatted"
            )
        self.model, self.tokenizer = model.eval(), tokenizer
        self.batch_size = batch_size
        self.name = f"hf:{name or source}"
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id
        eos = eos if eos is not None else tokenizer.eos_token_id
        if pad is None or eos is None:
            raise AcqsynthError(
                f"{source}: the tokenizer needs an EOS token (and a pad token or EOS to pad with)"
            )
        self.pad_id = int(pad)
        self.eos_ids = [int(e) for e in (eos if isinstance(eos, list) else [eos])]

    @classmethod
    def from_student(cls, student: TransformersStudent, batch_size: int | None = None) -> HFGenerator:
        """A generator sharing a TransformersStudent's model and tokenizer (no second copy in memory)."""
        return cls((student.model, student.tokenizer), batch_size=batch_size or student.batch_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def format_prompt(self, prompt: Messages) -> str:
        """The chat-formatted prompt text (see `format_chat`)."""
        return format_chat(self.tokenizer, prompt)

    def prompt_ids(self, prompt: Messages) -> list[int]:
        """Token ids of the chat-formatted prompt (the template already holds any BOS token)."""
        return self.tokenizer(self.format_prompt(prompt), add_special_tokens=False)["input_ids"]

    def generate(
        self, prompts: list[Messages], params: GenerationParams, seed_index: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        """`params.n` completions per prompt. Sample j of prompt i is seeded by (seed, i, j), or by
        (seed, seed_index[i], j) when given, so that a caller can make samples independent of order."""
        refuse_grammar(self.name, params)
        greedy = params.temperature == 0
        index = seed_indices(len(prompts), seed_index)
        ids = [self.prompt_ids(p) for p in prompts]
        # greedy samples of one prompt are identical: decode once and copy
        rows = [(i, j) for i in range(len(prompts)) for j in range(1 if greedy else params.n)]
        rows.sort(key=lambda r: -len(ids[r[0]]))  # stable: a prompt's samples stay together
        results: dict[tuple[int, int], Completion] = {}
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            seeds = None if greedy else [sample_seed(params.seed, index[i], j) for i, j in batch]
            outs = self._generate_batch([ids[i] for i, _ in batch], seeds, params)
            for (i, j), (tokens, length) in zip(batch, outs, strict=True):
                results[i, j] = self._completion(tokens[:length], len(ids[i]), params.stop)
        return [
            [replace(results[i, 0 if greedy else j]) for j in range(params.n)] for i in range(len(prompts))
        ]

    def _completion(self, tokens: list[int], prompt_tokens: int, stop: list[str] | None) -> Completion:
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        text, stopped = cut_at_stop(text, stop)
        ended = stopped or (bool(tokens) and tokens[-1] in self.eos_ids)
        return Completion(text, prompt_tokens, len(tokens), "stop" if ended else "length")

    @torch.inference_mode()
    def _generate_batch(
        self, batch: list[list[int]], seeds: list[int] | None, params: GenerationParams
    ) -> list[tuple[list[int], int]]:
        """Generate for left-padded rows; per row, the generated ids and how many of them count."""
        input_ids, mask, _ = left_pad(batch, self.pad_id)
        width = input_ids.shape[1]
        tracker = FinishTracker(self.tokenizer, width, self.eos_ids, params.stop, len(batch))
        processors = LogitsProcessorList()
        if seeds is not None:
            processors.append(SeededSampler(seeds, params.temperature, params.top_p))
        out = self.model.generate(
            input_ids=input_ids.to(self.device),
            attention_mask=mask.to(self.device),
            max_new_tokens=params.max_new_tokens,
            do_sample=False,
            num_beams=1,
            repetition_penalty=1.0,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids,
            logits_processor=processors,
            stopping_criteria=StoppingCriteriaList([tracker]),
        )
        generated = out[:, width:].cpu().tolist()
        return [(g, n if n is not None else len(g)) for g, n in zip(generated, tracker.lengths, strict=True)]
