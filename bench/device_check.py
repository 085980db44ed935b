"""Device check for the GPU recipes: a real SFT step, a real GRPO step and batched generation on
randomly initialised models of the recipes' real sizes, with nothing but torch, transformers, TRL
and peft installed and no network (no weights are downloaded: the architectures are written below).

Prints one JSON line: seconds per SFT and GRPO step (after one warm-up step each), generated tokens
per second, and peak memory (GPU: `torch.cuda.max_memory_allocated`; CPU: the process's peak RSS).

    python bench/device_check.py                      # on a GPU: Qwen2.5-1.5B shapes, bf16
    python bench/device_check.py --model qwen2.5-3b --grpo-method lora
    python bench/device_check.py --tiny               # the CPU smoke test (tests/unit/test_device_check.py)
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from typing import Any

import torch

ARCHITECTURES: dict[str, dict[str, Any]] = {
    # the shapes of the public config.json files (Qwen2.5 Instruct), written here so nothing is downloaded
    "qwen2.5-1.5b": dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                         num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-3b": dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                       num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True),
    "qwen2.5-7b": dict(hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                       num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=1100, tie_word_embeddings=True),
}
WORDS = 1000


def tokenizer() -> Any:
    """A word-level tokenizer built in code (no download): words w0..w999 and special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(WORDS)} | {"[UNK]": WORDS, "[PAD]": WORDS + 1, "[EOS]": WORDS + 2}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", eos_token="[EOS]")


def model(name: str, device: torch.device, dtype: torch.dtype) -> Any:
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(**ARCHITECTURES[name], max_position_embeddings=4096, pad_token_id=WORDS + 1,
                      eos_token_id=WORDS + 2, bos_token_id=WORDS + 2)
    torch.manual_seed(0)
    return Qwen2ForCausalLM(cfg).to(device=device, dtype=dtype)


def words(n: int, rng: torch.Generator) -> str:
    return " ".join(f"w{i}" for i in torch.randint(0, WORDS, (n,), generator=rng).tolist())


def peak_memory(device: torch.device) -> float:
    """GiB: the GPU's peak allocation, or this process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024**3
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def timed_steps(trainer: Any) -> float:
    """Seconds per optimiser step over the steps after the first (the first pays warm-up)."""
    marks: list[float] = []

    from transformers import TrainerCallback

    class Clock(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            marks.append(time.perf_counter())

    trainer.add_callback(Clock())
    trainer.train()
    return (marks[-1] - marks[0]) / max(1, len(marks) - 1)


def sft_step(name: str, device: torch.device, dtype: torch.dtype, args: argparse.Namespace, out: str) -> float:
    import datasets
    from trl import SFTConfig, SFTTrainer

    rng = torch.Generator().manual_seed(1)
    rows = datasets.Dataset.from_list([{"text": words(args.seq, rng)} for _ in range(args.batch * (args.steps + 1))])
    config = SFTConfig(output_dir=out, per_device_train_batch_size=args.batch, max_steps=args.steps + 1,
                       learning_rate=2e-5, bf16=dtype == torch.bfloat16, use_cpu=device.type == "cpu",
                       gradient_checkpointing=device.type == "cuda", max_length=args.seq, report_to="none",
                       save_strategy="no", logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    trainer = SFTTrainer(model=model(name, device, torch.float32 if args.full_fp32 else dtype), args=config,
                         train_dataset=rows, processing_class=tokenizer())
    return timed_steps(trainer)


def grpo_step(name: str, device: torch.device, dtype: torch.dtype, args: argparse.Namespace, out: str) -> float:
    import datasets
    from trl import GRPOConfig, GRPOTrainer

    rng = torch.Generator().manual_seed(2)
    prompts = datasets.Dataset.from_list([{"prompt": words(args.prompt, rng)} for _ in range(args.prompts * (args.steps + 1))])

    def reward(completions: list[str], **kwargs: Any) -> list[float]:
        return [len(set(c.split())) / 10 for c in completions]

    config = GRPOConfig(output_dir=out, per_device_train_batch_size=args.group * args.prompts, num_generations=args.group,
                        max_completion_length=args.completion, max_steps=args.steps + 1, learning_rate=1e-6, beta=0.0,
                        bf16=dtype == torch.bfloat16, use_cpu=device.type == "cpu", report_to="none", save_strategy="no",
                        logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0, temperature=1.0)
    peft = None
    if args.grpo_method == "lora":
        from peft import LoraConfig

        peft = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=model(name, device, dtype), reward_funcs=[reward], args=config, train_dataset=prompts,
                          processing_class=tokenizer(), peft_config=peft)
    return timed_steps(trainer)


def generation(name: str, device: torch.device, dtype: torch.dtype, args: argparse.Namespace) -> float:
    """Generated tokens per second for one batch of `gen_batch` prompts, `completion` new tokens each."""
    m = model(name, device, dtype).eval()
    tok = tokenizer()
    rng = torch.Generator().manual_seed(3)
    batch = tok([words(args.prompt, rng) for _ in range(args.gen_batch)], return_tensors="pt", padding=True).to(device)
    kwargs = dict(max_new_tokens=args.completion, min_new_tokens=args.completion, do_sample=True, pad_token_id=WORDS + 1)
    with torch.no_grad():
        m.generate(**batch, **{**kwargs, "max_new_tokens": 2, "min_new_tokens": 2})  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = m.generate(**batch, **kwargs)
        if device.type == "cuda":
            torch.cuda.synchronize()
        wall = time.perf_counter() - start
    return (out.shape[1] - batch["input_ids"].shape[1]) * args.gen_batch / wall


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-1.5b", choices=[k for k in ARCHITECTURES if k != "tiny"])
    ap.add_argument("--grpo-model", default=None, help="shapes for the GRPO step (default: --model)")
    ap.add_argument("--grpo-method", default="full", choices=["full", "lora"])
    ap.add_argument("--tiny", action="store_true", help="tiny shapes on CPU, fp32: the smoke test")
    ap.add_argument("--batch", type=int, default=8, help="SFT sequences per step")
    ap.add_argument("--seq", type=int, default=1024, help="SFT tokens per sequence")
    ap.add_argument("--group", type=int, default=4, help="GRPO completions per prompt")
    ap.add_argument("--prompts", type=int, default=12, help="GRPO prompts per step")
    ap.add_argument("--prompt", type=int, default=256, help="prompt words (generation and GRPO)")
    ap.add_argument("--completion", type=int, default=256, help="new tokens per completion")
    ap.add_argument("--gen-batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2, help="timed steps after one warm-up step")
    ap.add_argument("--full-fp32", action="store_true", help="SFT with fp32 master weights (as acqsynth's full finetune)")
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.tiny else "cpu")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    name = "tiny" if args.tiny else args.model
    grpo_name = "tiny" if args.tiny else (args.grpo_model or args.model)
    if args.tiny:
        args.batch, args.seq, args.prompts, args.prompt, args.completion, args.gen_batch = 2, 32, 2, 8, 8, 4
    figures: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                               "model": name, "grpo_model": grpo_name, "dtype": str(dtype).removeprefix("torch.")}
    with tempfile.TemporaryDirectory() as out:
        figures["sft_s_per_step"] = round(sft_step(name, device, dtype, args, out + "/sft"), 4)
        figures["sft_tokens_per_s"] = round(args.batch * args.seq / figures["sft_s_per_step"], 1)
        figures["sft_peak_gib"] = round(peak_memory(device), 3)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        figures["grpo_s_per_step"] = round(grpo_step(grpo_name, device, dtype, args, out + "/grpo"), 4)
        figures["grpo_peak_gib"] = round(peak_memory(device), 3)
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        figures["generate_tokens_per_s"] = round(generation(name, device, dtype, args), 1)
        figures["generate_peak_gib"] = round(peak_memory(device), 3)
    figures |= {"sft_batch": args.batch, "sft_seq": args.seq, "grpo_group": args.group, "grpo_prompts": args.prompts,
                "grpo_method": args.grpo_method, "completion_tokens": args.completion, "gen_batch": args.gen_batch,
                "steps_timed": args.steps, "torch": torch.__version__, "python": sys.version.split()[0]}
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
