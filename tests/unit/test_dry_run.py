"""`--dry-run`: the parameter count against real models, the memory estimate against what a tiny
model's training step actually holds, and the reports of the shipped GPU recipes (no model loaded)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from acqsynth.run.dry_run import from_config, from_name, model_reference, training_memory

TOLERANCE = 0.30
"""The estimate's stated accuracy against a measured training step (docs: ±30 %)."""


def _llama(**kw) -> LlamaForCausalLM:
    cfg = dict(vocab_size=777, hidden_size=96, intermediate_size=224, num_hidden_layers=3, num_attention_heads=6,
               num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True)
    return LlamaForCausalLM(LlamaConfig(**{**cfg, **kw}))


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_count_is_exact_for_llama_and_qwen2(tied: bool) -> None:
    llama = _llama(tie_word_embeddings=tied)
    assert from_config(llama.config.to_dict(), "t").parameters == sum(p.numel() for p in llama.parameters())
    qwen = Qwen2ForCausalLM(Qwen2Config(vocab_size=500, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=tied))
    assert from_config(qwen.config.to_dict(), "t").parameters == sum(p.numel() for p in qwen.parameters())


def test_lora_parameter_count_matches_peft() -> None:
    from peft import LoraConfig, get_peft_model

    model = _llama()
    arch = from_config(model.config.to_dict(), "t")
    peft = get_peft_model(model, LoraConfig(r=8, target_modules="all-linear"))
    trainable = sum(p.numel() for p in peft.parameters() if p.requires_grad)
    assert arch.lora_parameters(8) == trainable  # peft's all-linear leaves out the output head


def _measured(model: torch.nn.Module, batch: int, seq: int) -> tuple[int, int, int]:
    """(weights, gradients + AdamW states, saved activations) in bytes after one real training step."""
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(input_ids=ids, labels=ids).loss
    loss.backward()
    opt.step()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    states = sum(p.grad.numel() * p.grad.element_size() for p in trainable if p.grad is not None)
    states += sum(v.numel() * v.element_size() for s in opt.state.values() for v in s.values() if torch.is_tensor(v) and v.dim())
    return weights, states, sum(saved.values())


@pytest.mark.parametrize(("shape", "batch", "seq"), [
    ({}, 4, 64),
    ({"hidden_size": 192, "intermediate_size": 416, "num_hidden_layers": 2, "vocab_size": 2000}, 2, 96),
])
def test_the_estimate_is_within_its_tolerance_of_a_measured_step(shape: dict, batch: int, seq: int) -> None:
    torch.manual_seed(0)
    model = _llama(**shape)
    model.train()
    arch = from_config(model.config.to_dict(), "t")
    weights, states, activations = _measured(model, batch, seq)
    # fp32 on CPU, no checkpointing; a full finetune here keeps fp32 weights, so the estimate's fp32
    # master copy is the weights themselves: compare weights + states together
    est = training_memory(arch, "full", 16, batch, seq, bf16=False, checkpointing=False)
    assert abs((est.weights + est.trainable) - (weights + states)) <= 0.01 * (weights + states)
    assert abs(est.activations - activations) <= TOLERANCE * activations, (est.activations, activations)


def test_name_sizes_and_references_need_no_network(tmp_path) -> None:
    assert abs(from_name("Qwen/Qwen2.5-7B-Instruct").parameters - 7e9) < 0.2 * 7e9
    assert abs(from_name("SmolLM2-135M").parameters - 135e6) < 0.3 * 135e6
    assert from_name("my-model") is None
    ref = model_reference("student.model", "nobody-org/not-a-model-7B")
    assert ref.kind == "hub id" and "not cached" in ref.status
    assert model_reference("generator.model", "openai:http://127.0.0.1:9/v1@m").status.startswith("not contacted")
    assert model_reference("student.model", str(tmp_path / "absent.gguf")).status == "MISSING"


@pytest.mark.parametrize(("command", "config", "expect"), [
    ("run", "paper-gsm8k", "student training, one GPU:"),
    ("grpo", "grpo-paper", "generator training, one GPU:"),
])
def test_the_gpu_recipes_dry_run_here(command: str, config: str, expect: str) -> None:
    """The shipped recipes validate and report on this CPU machine, loading no model (the hub ids are
    not cached here, so a load would have to download: the run must not try)."""
    env_check = (f"import sys; from acqsynth.cli import main; rc = main([{command!r}, {config!r}, '--dry-run']); "
                 "assert not any(m.startswith('transformers.models.qwen2') for m in sys.modules), 'a model was loaded'; "
                 "sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", env_check], capture_output=True, text=True, timeout=300,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "config OK" in proc.stdout and expect in proc.stdout and "GiB" in proc.stdout
    assert "generation, at most:" in proc.stdout
