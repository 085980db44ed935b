"""Tiny random causal LMs with an in-test trained tokenizer and a chat template: no downloads, fast."""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "What is 12 + 7? The answer is 19. #### 19",
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "Question: Which gas do plants absorb? A. oxygen B. carbon dioxide C. helium D. neon Answer: B",
    "def add(a, b):\n    return a + b\n",
    "The quick brown fox jumps over the lazy dog 0 1 2 3 4 5 6 7 8 9 \\boxed{42} <question> </question>",
] * 20


def make_tokenizer(vocab_size: int = 300) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on a small corpus, with chat special tokens and a template."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(CORPUS, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token=None
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def tiny_llama_config(tok: PreTrainedTokenizerFast, **overrides: object) -> LlamaConfig:
    """A 2-layer, 32-wide Llama config over `tok`'s vocabulary; `overrides` set or replace fields."""
    fields: dict[str, object] = {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 512,
        "eos_token_id": tok.eos_token_id,
        "bos_token_id": None,
    }
    return LlamaConfig(**{**fields, **overrides})


def make_tiny_model(path: Path, seed: int = 0, vocab_size: int = 300) -> Path:
    """Save a 2-layer random Llama and its tokenizer to `path`; return `path`."""
    tok = make_tokenizer(vocab_size)
    torch.manual_seed(seed)
    config = tiny_llama_config(tok, pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.eos_token_id
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path
