"""A transformers causal LM: loading one, and the left-padded batches that the student, the HF
generator, training and gradient scoring all feed it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from acqsynth.models.aliases import hf_model_path


def default_device() -> torch.device:
    """CUDA if present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def left_pad(seqs: Sequence[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, position_ids) of left-padded rows; positions count real tokens only."""
    width = max(len(x) for x in seqs)
    input_ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, x in enumerate(seqs):
        input_ids[row, width - len(x) :] = torch.tensor(x, dtype=torch.long)
        mask[row, width - len(x) :] = 1
    return input_ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def load_causal_lm(spec: str, device: str | None = None, dtype: str | torch.dtype | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) for an alias, checkpoint directory, GGUF file or hub id; fp32 on CPU, bf16 on CUDA."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = hf_model_path(spec)
    dev = torch.device(device) if device else default_device()
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    dtype = dtype or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    model = model.to(dev)  # type: ignore[arg-type]  # @wraps(Module.to) types `self` as the 1st argument
    return model, tokenizer
