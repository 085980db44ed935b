"""Student finetuning (SFT) with TRL's `SFTTrainer`, as a LoRA adapter (default) or a full finetune.

The student is trained on prompt → completion pairs made by its task: the prompt is exactly the
chat prompt it is evaluated with (`task.prompt`), the completion is the task's target
(`task.target`: reasoning then the final answer), and the loss covers completion tokens only.
Training always starts from the *base* model passed in (a deep copy is trained), so a round of the
active loop that retrains on all data so far does not inherit the previous round's drift, and the
base model stays usable as the frozen reference.

CPU-safe by default: fp32 on CPU, bf16 only where a CUDA device supports it, no dataloader workers.
A full finetune of a half-precision base trains fp32 weights (bf16 compute) and returns them in the
base's dtype: in bf16 most optimiser updates of a typical learning rate would round to nothing.
The same function runs under `accelerate launch` (TRL handles the distributed set-up).

Seeding: one seed (`TrainConfig.seed`) drives the LoRA initialisation, the data order (`seed` and
`data_seed` of the trainer) and dropout. It is set with `transformers.set_seed` before the trainer
creates the adapter, so the adapter does not depend on whatever the process drew before. In a run
the seed comes from the run's seed unless `train.seed` is set (`RunConfig.train_seed`).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import datasets
import torch

from acqsynth.config import to_dict
from acqsynth.errors import AcqsynthError, check_range
from acqsynth.samples import Sample, iter_samples
from acqsynth.tasks.base import Task


@dataclass
class TrainConfig:
    """How the student is finetuned on synthetic data."""

    method: str = "lora"
    """"lora" (a peft LoRA adapter; the base weights stay frozen) or "full" (every weight trained)."""
    epochs: float = 3.0
    """Passes over the training data."""
    max_steps: int = -1
    """Stop after this many optimiser steps (-1: run all epochs)."""
    learning_rate: float = 2e-4
    """Peak learning rate (LoRA wants ~1e-4–5e-4; a full finetune ~2e-5, as AcquisitionSynthesis used)."""
    lr_scheduler: str = "cosine"
    """transformers scheduler name."""
    warmup: float = 0.05
    """Warm-up: a fraction of the steps (< 1) or a number of steps (≥ 1)."""
    batch_size: int = 8
    """Rows per device per optimiser step (before gradient accumulation)."""
    grad_accum: int = 1
    """Gradient accumulation steps."""
    max_length: int = 512
    """Prompt + completion tokens kept per row (longer rows are cut at the end)."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = alpha / r)."""
    lora_dropout: float = 0.0
    """Dropout on the LoRA input."""
    lora_targets: str | list[str] = "all-linear"
    """Modules that get adapters: "all-linear" or a list of module names (e.g. [q_proj, v_proj])."""
    bf16: bool | None = None
    """bf16 mixed precision; None = on only where CUDA supports it (never on CPU)."""
    gradient_checkpointing: bool | None = None
    """Recompute activations in the backward pass to save memory. None = on with CUDA (TRL's default), off
    on CPU, where memory is rarely the limit: there it costs time (9 % for a 135M LoRA student) for the same
    result (bench/checkpointing.py)."""
    seed: int | None = None
    """Seed of the adapter initialisation, the data order and dropout. None = derived: in a run, the
    run's `seed` (every round, see `RunConfig.train_seed`); trained on its own, 0. Set it to pin the
    training seed whatever the run's seed."""
    logging_steps: int = 1
    """Log the training loss every this many steps."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further `trl.SFTConfig` arguments, passed as they are (e.g. {max_grad_norm: 0.5})."""

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise AcqsynthError(f"train.method must be 'lora' or 'full', got {self.method!r}")
        if self.epochs <= 0 and self.max_steps <= 0:
            raise AcqsynthError("train.epochs must be > 0 (or set train.max_steps)")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise AcqsynthError("train.batch_size and train.grad_accum must be >= 1")
        check_range("train.epochs", self.epochs, 0)
        check_range("train.learning_rate", self.learning_rate, 0, low_open=True)
        check_range("train.warmup", self.warmup, 0)
        check_range("train.max_length", self.max_length, 2)
        check_range("train.weight_decay", self.weight_decay, 0)
        check_range("train.lora_r", self.lora_r, 1)
        check_range("train.lora_alpha", self.lora_alpha, 1)
        check_range("train.lora_dropout", self.lora_dropout, 0, 1, high_open=True)
        check_range("train.seed", self.seed, 0, 2**32 - 1)
        check_range("train.logging_steps", self.logging_steps, 1)


@dataclass
class TrainResult:
    """What one finetune produced."""

    model: Any
    """The trained student, adapters merged into the weights (ready for scoring and generation)."""
    steps: int
    """Optimiser steps taken."""
    losses: list[float]
    """Training loss at each logged step."""
    wall_s: float
    """Seconds spent training (model copy and merge included)."""
    saved: Path | None
    """Where the adapter (LoRA) or the full model was saved, if anywhere."""
    seed: int
    """The training seed used (adapter initialisation, data order, dropout)."""

    def metrics(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "steps": self.steps,
            "loss_first": self.losses[0] if self.losses else None,
            "loss_last": self.losses[-1] if self.losses else None,
            "losses": self.losses,
            "wall_s": round(self.wall_s, 3),
            "saved": str(self.saved) if self.saved else None,
        }


def sft_rows(samples: Sequence[Sample], task: Task) -> datasets.Dataset:
    """Conversational prompt → completion rows in TRL's format: the task's prompt and its target."""
    if not samples:
        raise AcqsynthError("no training samples: the student cannot be finetuned on an empty set")
    return datasets.Dataset.from_list(
        [
            {"prompt": task.prompt(s), "completion": [{"role": "assistant", "content": task.target(s)}]}
            for s in samples
        ]
    )


def use_bf16(requested: bool | None, option: str = "train.bf16") -> bool:
    """Whether to train in bf16: as `requested`, else (None) only where a CUDA device supports it."""
    available = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if requested is None:
        return available
    if requested and not available:
        raise AcqsynthError(f"{option} is true but no CUDA device with bf16 is available (CPU trains in fp32)")
    return requested


RESULT_NEUTRAL = ("gradient_checkpointing",)
"""Training settings that change how training runs, not the weights it produces: left out of cache keys,
so changing one reuses what was trained or scored before."""


def train_key(config: TrainConfig) -> dict[str, Any]:
    """The settings that decide what `config` trains, as a cache-key mapping (`RESULT_NEUTRAL` left out)."""
    return {k: v for k, v in to_dict(config).items() if k not in RESULT_NEUTRAL}


def use_checkpointing(requested: bool | None) -> bool:
    """Whether to checkpoint activations: as `requested`, else (None) only on CUDA, where memory is the limit."""
    return torch.cuda.is_available() if requested is None else requested


CHECKPOINTING_NAMES = ("activation_checkpointing", "gradient_checkpointing")
"""The trainer argument for activation checkpointing, by its current name and by its deprecated alias."""


def checkpointing_argument(args_class: type, on: bool) -> dict[str, bool]:
    """The trainer argument that turns activation checkpointing on or off. Recent transformers names it
    `activation_checkpointing` and warns on every trainer built with the old `gradient_checkpointing`
    (which TRL's configs set by default); earlier 5.x releases know only the old name."""
    names = {f.name for f in fields(args_class)}
    return {CHECKPOINTING_NAMES[0] if CHECKPOINTING_NAMES[0] in names else CHECKPOINTING_NAMES[1]: on}


def extra_arguments(extra: dict[str, Any], settings: dict[str, Any], prefix: str) -> dict[str, Any]:
    """`extra` trainer arguments, refused where acqsynth sets the argument itself (it would be passed twice);
    `prefix` is the options' prefix in error messages ("train." or "" for `acqsynth grpo`)."""
    set_here = set(settings) | (set(CHECKPOINTING_NAMES) if set(CHECKPOINTING_NAMES) & set(settings) else set())
    clash = sorted(set(extra) & set_here)
    if clash:
        raise AcqsynthError(f"{prefix}extra.{clash[0]}: acqsynth sets this trainer argument itself; use its own "
                            f"{prefix}* option (docs/config.md) instead of {prefix}extra")
    return extra


def save_model(model: Any, tokenizer: Any, path: Path) -> Path:
    """Save a model (or adapter) with its tokenizer, so the directory loads on its own."""
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def weights_digest(path: Path) -> str:
    """sha256 (16 hex digits) of a saved model's weight files (*.safetensors, by name): which weights a
    directory holds, so runs that load it by path record what they used, and a rebuild can be checked
    against the first build."""
    digest = hashlib.sha256()
    files = sorted(Path(path).glob("*.safetensors"))
    if not files:
        raise AcqsynthError(f"{path} holds no *.safetensors weight files")
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()[:16]


def lora_config(config: TrainConfig) -> Any:
    """The peft `LoraConfig` for `config`."""
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.lora_targets,
        task_type="CAUSAL_LM",
    )


def sft_trainer(
    base_model: Any,
    tokenizer: Any,
    samples: Sequence[Sample],
    task: Task,
    config: TrainConfig,
    output_dir: str | Path,
    progress: bool = False,
) -> Any:
    """A TRL `SFTTrainer` on a copy of `base_model`, its adapter (LoRA) created and seeded, not yet trained.

    `config.seed` must be set. The global RNGs are seeded with it right before the trainer is built, so
    the LoRA initialisation depends on the seed alone (TRL ≥ 1.0 also does so itself; this does not rely
    on it), and the trainer seeds the data order and dropout with it.
    """
    from transformers import set_seed
    from trl import SFTConfig, SFTTrainer

    if config.seed is None:
        raise AcqsynthError("sft_trainer needs a training seed: resolve train.seed first")
    rows = sft_rows(samples, task)
    out = Path(output_dir)
    model = copy.deepcopy(base_model)
    half = getattr(model, "dtype", torch.float32) in (torch.float16, torch.bfloat16)
    if config.method == "full" and half:  # fp32 master weights: bf16 ones round most small updates away
        model = model.float()
    model.train()
    settings: dict[str, Any] = {
        "output_dir": str(out / "trainer"),
        "num_train_epochs": config.epochs,
        "max_steps": config.max_steps,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup,
        "per_device_train_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accum,
        "weight_decay": config.weight_decay,
        "max_length": config.max_length,
        "completion_only_loss": True,
        "bf16": use_bf16(config.bf16),
        "fp16": False,
        **checkpointing_argument(SFTConfig, use_checkpointing(config.gradient_checkpointing)),
        "use_cpu": not torch.cuda.is_available(),
        "seed": config.seed,
        "data_seed": config.seed,
        "logging_steps": config.logging_steps,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": not progress,
        "dataloader_num_workers": 0,
    }
    args = SFTConfig(**settings, **extra_arguments(config.extra, settings, "train."))
    set_seed(config.seed)  # before the adapter's random A matrices are drawn
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=rows,
        processing_class=tokenizer,
        peft_config=lora_config(config) if config.method == "lora" else None,
    )
    if not progress:
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)
    return trainer


def train_student(
    base_model: Any,
    tokenizer: Any,
    data: datasets.Dataset | Sequence[Sample],
    task: Task,
    config: TrainConfig,
    output_dir: str | Path,
    save: bool = True,
    progress: bool = False,
) -> TrainResult:
    """Finetune a copy of `base_model` on `data` (Sample rows) with TRL; return it merged, with metrics.

    `base_model` itself is not modified. With `save`, the LoRA adapter (or the full model) and the
    tokenizer are written to `output_dir/adapter` (or `output_dir/model`), with the config trained
    with (its seed resolved) in `acqsynth_train.json`. An unset `config.seed` trains with seed 0.
    """
    samples = list(iter_samples(data)) if isinstance(data, datasets.Dataset) else list(data)
    seed = 0 if config.seed is None else config.seed
    config = replace(config, seed=seed)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    half = getattr(base_model, "dtype", torch.float32) in (torch.float16, torch.bfloat16)
    bars = datasets.is_progress_bar_enabled()
    if not progress:
        datasets.disable_progress_bars()
    try:
        trainer = sft_trainer(base_model, tokenizer, samples, task, config, out, progress=progress)
        trainer.train()
    finally:
        if bars:
            datasets.enable_progress_bars()
    losses = [float(h["loss"]) for h in trainer.state.log_history if "loss" in h]
    bad = [x for x in losses if not math.isfinite(x)]
    if bad:
        raise AcqsynthError(f"student training diverged: loss became {bad[0]} (lower train.learning_rate)")
    trained = trainer.model
    if config.method == "full" and half:  # back to the base's dtype, as a reload of the saved model gives
        trained = trained.to(base_model.dtype)
    saved = None
    if save:
        saved = save_model(trained, tokenizer, out / ("adapter" if config.method == "lora" else "model"))
        record = {**asdict(config), "weights_sha256": weights_digest(saved)}
        (saved / "acqsynth_train.json").write_text(json.dumps(record, indent=2) + "\n")
    if config.method == "lora":
        trained = trained.merge_and_unload()
    trained.eval()
    return TrainResult(
        model=trained,
        steps=int(trainer.state.global_step),
        losses=losses,
        wall_s=time.perf_counter() - start,
        saved=saved,
        seed=seed,
    )
