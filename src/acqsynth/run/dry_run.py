"""`--dry-run`: check a config on any machine and say what the run will need, loading no model and
contacting nothing.

For `acqsynth run` and `acqsynth grpo`: where each model and data set comes from and whether it is
here (an embedded alias installed, a path present, a hub id in the local Hugging Face cache or still
to download), each model's size (from its `config.json` where one is here, else from the size in its
name), the memory one GPU needs to train it, and the most generator completions and tokens the run
may spend. Memory is an estimate: weights, gradients and AdamW states are counted exactly; the
activations kept for the backward pass follow a formula fitted on Llama-style decoders
(`activation_bytes`), about ±30 % (tests/unit/test_dry_run.py measures a tiny model).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acqsynth.errors import AcqsynthError

GIB = 1024**3
ACTIVATION_OVERHEAD = 1.1
"""Peak over the sum of the counted parts: the gradient buffers alive during the backward pass."""


@dataclass(frozen=True)
class Architecture:
    """The shapes of a decoder-only transformer that decide its size and memory."""

    vocab: int
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool
    qkv_bias: bool = False
    source: str = ""
    """Where the shapes come from (a config.json, or a size in the model's name)."""

    @property
    def linear_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of each linear layer of one decoder block: q, k, v, o, gate, up, down."""
        h, i, q, kv = self.hidden, self.intermediate, self.heads * self.head_dim, self.kv_heads * self.head_dim
        return [(h, q), (h, kv), (h, kv), (q, h), (h, i), (h, i), (i, h)]

    @property
    def parameters(self) -> int:
        per_layer = sum(a * b for a, b in self.linear_shapes) + 2 * self.hidden
        if self.qkv_bias:
            per_layer += (self.heads + 2 * self.kv_heads) * self.head_dim
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * per_layer + embeddings + self.hidden

    def lora_parameters(self, r: int) -> int:
        """Trainable parameters of rank-`r` LoRA on every linear layer of every block (`all-linear`)."""
        return self.layers * sum(r * (a + b) for a, b in self.linear_shapes)


def from_config(cfg: dict[str, Any], source: str) -> Architecture:
    """The architecture in a transformers `config.json` (Llama, Qwen2, Mistral, SmolLM and alike)."""
    try:
        hidden, heads = int(cfg["hidden_size"]), int(cfg["num_attention_heads"])
        return Architecture(
            vocab=int(cfg["vocab_size"]), hidden=hidden, intermediate=int(cfg["intermediate_size"]),
            layers=int(cfg["num_hidden_layers"]), heads=heads, kv_heads=int(cfg.get("num_key_value_heads") or heads),
            head_dim=int(cfg.get("head_dim") or hidden // heads), tied=bool(cfg.get("tie_word_embeddings", False)),
            qkv_bias=cfg.get("model_type") == "qwen2", source=source,
        )
    except (KeyError, TypeError, ValueError) as e:
        raise AcqsynthError(f"{source}: not a decoder config this estimate knows (missing {e})") from None


_SIZE = re.compile(r"(?<![\d.])(\d+(?:\.\d+)?)\s*([BbMm])(?![a-zA-Z])")


def from_name(spec: str) -> Architecture | None:
    """A rough architecture for a model whose name gives its size ("Qwen2.5-7B", "SmolLM2-135M"): the
    Llama shape scaled to that many parameters (hidden ≈ (P / 12 / layers)^½, 32 layers above 1B)."""
    found = _SIZE.search(spec.rsplit("/", 1)[-1])
    if not found:
        return None
    params = float(found.group(1)) * (1e9 if found.group(2).lower() == "b" else 1e6)
    layers = 32 if params >= 1e9 else 24
    hidden = int(math.sqrt(params / (12 * layers)) // 64 * 64) or 64
    return Architecture(vocab=32000, hidden=hidden, intermediate=int(hidden * 8 / 3) // 64 * 64, layers=layers,
                        heads=max(1, hidden // 64), kv_heads=max(1, hidden // 64), head_dim=64, tied=False,
                        source=f"the size in the name ({found.group(0)})")


@dataclass(frozen=True)
class Reference:
    """One model or data set a config names, and whether it is available without a network."""

    key: str
    spec: str
    kind: str
    status: str
    architecture: Architecture | None = None


def _hub_file(repo: str, filename: str, repo_type: str = "model") -> str | None:
    """The cached copy of a hub file, or None; never contacts the hub."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(repo, filename, repo_type=repo_type)
    return found if isinstance(found, str) else None


def _config_file_architecture(path: str | Path, spec: str) -> Architecture | None:
    """The architecture in a config.json, or (a config this estimate does not know) the size in the name."""
    try:
        return from_config(json.loads(Path(path).read_text()), str(path))
    except (AcqsynthError, ValueError, OSError):
        return from_name(spec)


def _config_architecture(directory: Path) -> Architecture | None:
    cfg = directory / "config.json"
    return _config_file_architecture(cfg, directory.name) if cfg.is_file() else None


def model_reference(key: str, spec: str) -> Reference:
    """Where model `spec` (config key `key`) comes from and whether it is here, with its architecture."""
    from acqsynth.models.aliases import ALIASES, is_converted, is_present
    from acqsynth.models.aliases import hf_model_path as alias_path

    if spec.startswith("openai:"):
        return Reference(key, spec, "OpenAI-compatible server", "not contacted (a dry run opens no connection)",
                         from_name(spec))
    if ".py:" in spec:
        return Reference(key, spec, "your Python generator", "file present" if Path(spec.split(".py:")[0] + ".py").is_file()
                         else "file MISSING")
    name = spec.removeprefix("llamacpp:")
    if name in ALIASES:
        if ALIASES[name].kind != "causal-lm":
            return Reference(key, spec, "embedded alias", "installed" if is_present(name) else
                             f"not installed: run `acqsynth models install {name}`")
        if not is_present(name):
            return Reference(key, spec, "embedded alias", f"not installed: run `acqsynth models install {name}`",
                             from_name(f"{name}-{ALIASES[name].params}"))
        arch = _config_architecture(Path(alias_path(name))) if is_converted(name) else None
        return Reference(key, spec, "embedded alias", "installed", arch or from_name(f"{name}-{ALIASES[name].params}"))
    path = Path(name).expanduser()
    if name.lower().endswith(".gguf"):
        return Reference(key, spec, "GGUF file", "present" if path.is_file() else "MISSING", from_name(name))
    if path.exists():
        return Reference(key, spec, "local checkpoint", "present", _config_architecture(path) or from_name(name))
    if "/" in name:
        cached = _hub_file(name, "config.json")
        if cached:
            return Reference(key, spec, "hub id", "in the local Hugging Face cache", _config_file_architecture(cached, name))
        return Reference(key, spec, "hub id", "not cached: downloaded from the hub on first use", from_name(name))
    return Reference(key, spec, "unknown", "neither an alias, a path nor a hub id", None)


def data_reference(key: str, spec: str) -> Reference:
    """Where data set `spec` comes from and whether it is here."""
    from acqsynth.data import builtin_name

    if builtin_name(spec):
        return Reference(key, spec, "built-in", "bundled (offline)")
    path = Path(spec.split("@")[0]).expanduser()
    if path.suffix in (".jsonl", ".json", ".parquet", ".csv"):
        return Reference(key, spec, "file", "present" if path.is_file() else "MISSING")
    repo = spec.split(":")[0]
    cached = _hub_file(repo, "README.md", repo_type="dataset")
    return Reference(key, spec, "hub dataset", "in the local Hugging Face cache" if cached
                     else "not cached: downloaded from the hub on first use")


def activation_bytes(arch: Architecture, tokens: int, element: int, checkpointing: bool) -> int:
    """Bytes the forward pass keeps for the backward pass, for `tokens` tokens in a batch: per token
    about layers × (10·hidden + 4·intermediate) + vocab elements (fitted on Llama blocks with PyTorch's
    SDPA attention: 9.5, 4.2 and 1.0); with checkpointing, each block keeps only its input, plus one
    block's activations while it is recomputed."""
    block = 10 * arch.hidden + 4 * arch.intermediate
    per_token = (arch.layers * arch.hidden + block if checkpointing else arch.layers * block) + arch.vocab
    return tokens * per_token * element


@dataclass(frozen=True)
class Memory:
    """One GPU's memory for training a model, by part (bytes)."""

    weights: int
    trainable: int
    """Gradients and AdamW states (and fp32 master weights for a full finetune) of the trainable parameters."""
    activations: int
    other: int = 0
    """Frozen models resident beside it (GRPO's student and reference)."""

    @property
    def total(self) -> int:
        return int((self.weights + self.trainable + self.activations) * ACTIVATION_OVERHEAD) + self.other


def training_memory(arch: Architecture, method: str, lora_r: int, batch: int, seq: int, bf16: bool,
                    checkpointing: bool) -> Memory:
    """Memory to train `arch` with AdamW: full (fp32 master weights, gradients and two moments, 16 bytes
    per parameter, bf16 compute) or LoRA (base weights in bf16, or fp32 on CPU; 16 bytes per adapter
    parameter)."""
    element = 2 if bf16 else 4
    if method == "full":
        weights, trainable = 4 * arch.parameters, 12 * arch.parameters
    else:
        n = arch.lora_parameters(lora_r)
        weights, trainable = element * arch.parameters + 4 * n, 12 * n
    return Memory(weights, trainable, activation_bytes(arch, batch * seq, element, checkpointing))


def _gib(n: float) -> str:
    return f"{n / GIB:.2f} GiB"


def _reference_lines(refs: list[Reference]) -> list[str]:
    lines = ["references:"]
    for r in refs:
        size = f", {r.architecture.parameters / 1e9:.2f} B parameters ({r.architecture.source})" if r.architecture else ""
        lines.append(f"  {r.key}: {r.spec} -- {r.kind}, {r.status}{size}")
    return lines


def _memory_lines(title: str, mem: Memory | None, why: str) -> list[str]:
    if mem is None:
        return [f"{title}: unknown ({why})"]
    return [f"{title}: {_gib(mem.total)} (weights {_gib(mem.weights)}, gradients and optimizer {_gib(mem.trainable)}, "
            f"activations {_gib(mem.activations)}" + (f", frozen models {_gib(mem.other)}" if mem.other else "")
            + f"; {why})"]


def run_report(config: Any) -> list[str]:
    """The dry-run report of an `acqsynth run` config (`RunConfig`)."""
    from acqsynth.strategies import get_strategy
    from acqsynth.training import use_checkpointing

    c = config
    refs = [model_reference("student.model", c.student.model)]
    generates = get_strategy(c.strategy).generates or c.data.pool_source == "generated"
    if generates:
        refs.append(model_reference("generator.model", c.generator.model))
        if c.generator.label.method == "self-consistency" and c.generator.answer_model:
            refs.append(model_reference("generator.answer_model", c.generator.answer_model))
    if c.generator.embedder:
        refs.append(model_reference("generator.embedder", c.generator.embedder))
    refs.append(data_reference("data.name", c.data.name))
    lines = [f"config OK: strategy {c.strategy}, {c.rounds} round(s), budget {c.budget.samples} samples, seed {c.seed}",
             *_reference_lines(refs)]
    arch = refs[0].architecture
    t = c.train
    bf16 = t.bf16 if t.bf16 is not None else True
    checkpointing = t.gradient_checkpointing if t.gradient_checkpointing is not None else True
    mem = training_memory(arch, t.method, t.lora_r, t.batch_size, t.max_length, bf16, checkpointing) if arch else None
    lines += _memory_lines("student training, one GPU", mem,
                           f"{t.method}, batch {t.batch_size} x {t.max_length} tokens, "
                           f"{'bf16' if bf16 else 'fp32'}, checkpointing {'on' if checkpointing else 'off'}"
                           " (the CUDA defaults; ±30 %)")
    if not use_checkpointing(t.gradient_checkpointing):
        lines.append("  (on this machine, without CUDA, checkpointing is off by default)")
    if generates:
        g, b = c.generator, c.budget
        worst = g.max_new_tokens + g.label.worst_tokens()
        lines.append(f"generation, at most: {b.max_generated} generator completions of <= {g.max_new_tokens} tokens "
                     f"({b.max_generated * g.max_new_tokens:,} tokens)"
                     + (f", labelling <= {g.label.worst_tokens():,} answer-model tokens each" if g.label.worst_tokens() else "")
                     + f"; <= {b.max_generated * worst:,} completion tokens in all"
                     + (f", capped by budget.teacher_tokens {b.teacher_tokens:,}" if b.teacher_tokens else ""))
    else:
        lines.append("generation: none (this strategy selects real samples)")
    return lines


def grpo_report(settings: Any) -> list[str]:
    """The dry-run report of an `acqsynth grpo` config (`GRPOSettings`)."""
    s = settings
    refs = [model_reference("generator", s.generator), model_reference("student", s.student)]
    if s.embedder:
        refs.append(model_reference("embedder", s.embedder))
    refs.append(data_reference("data", s.data))
    per_step = s.prompts_per_step * s.group_size
    steps = s.max_steps if s.max_steps > 0 else math.ceil((s.prompts or 0) * s.epochs / s.prompts_per_step)
    lines = [f"config OK: reward {s.reward} ({s.reward_transform}), group {s.group_size} x {s.prompts_per_step} "
             f"prompts per step, {steps} steps", *_reference_lines(refs)]
    gen, student = refs[0].architecture, refs[1].architecture
    bf16 = s.bf16 if s.bf16 is not None else True
    checkpointing = s.gradient_checkpointing if s.gradient_checkpointing is not None else True
    mem = None
    if gen:
        base = training_memory(gen, s.method, s.lora_r, per_step, s.max_completion_length + 512, bf16, checkpointing)
        frozen = 2 * student.parameters if student else 0
        if s.beta > 0 and s.method == "full":
            frozen += 2 * gen.parameters  # a separate reference model (LoRA's is the base with adapters off)
        mem = Memory(base.weights, base.trainable, base.activations, frozen)
    lines += _memory_lines("generator training, one GPU", mem,
                           f"{s.method}, {per_step} completions of <= {s.max_completion_length} tokens after "
                           "a prompt of <= 512, the frozen student beside it, bf16 (±30 %)"
                           + ("; vLLM's own memory not included" if s.use_vllm else ""))
    lines.append(f"generation, at most: {steps * per_step:,} generator completions of <= {s.max_completion_length} "
                 f"tokens ({steps * per_step * s.max_completion_length:,} tokens); the student's own answers: "
                 f"<= {steps * per_step:,} x {s.answer_max_new_tokens} tokens")
    return lines
