"""GRPO generator training (AcquisitionSynthesis, arXiv 2605.13149) with TRL's `GRPOTrainer`.

The generator sees a seed example and writes a new tagged sample. Its reward is
`T(A(q)) + format_weight · F`, where `A` is any acquisition function (or weighted combination)
computed by a *frozen* student on the parsed sample, `T` maps it into [0, reward_clip] by a transform
chosen per reward (`strategies/reward_transform.py`; the paper's is clip(A, 0, 2)) and `F` is the
format reward (`generation.parsing.format_reward`, see docs/methods.md); a completion that does not
parse gets 0.
A whole group of completions is scored in one batched call (the reference code scored one sample per
HTTP call).

The prompt is the chat template up to the assistant turn plus the response prefix `<question>`, as
plain text, so TRL continues it exactly as `acqsynth generate` does. The same code runs on CPU, on a
GPU (bf16 automatically), with vLLM (`use_vllm: true`) and under `accelerate launch` (TRL handles
the processes; each loads its own frozen student).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch

from acqsynth.acquisition import column_name, parse_acquisition
from acqsynth.acquisition.scoring import score_samples
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError, check_range, suggest
from acqsynth.generation.parsing import format_reward, parse_completion
from acqsynth.generation.pipeline import load_seeds
from acqsynth.generation.prompts import PromptBuilder, template_kind
from acqsynth.generation.setup import builtin_task_name
from acqsynth.models.aliases import check_model_spec
from acqsynth.models.causal_lm import load_causal_lm
from acqsynth.models.embedder import LazyEmbedder
from acqsynth.models.hf_generator import format_chat
from acqsynth.models.hf_student import TransformersStudent
from acqsynth.strategies.reward_transform import TRANSFORMS, RewardTransform, resolve
from acqsynth.strategies.scoring import student_context
from acqsynth.tasks import get_task, task_kind
from acqsynth.training import (
    checkpointing_argument,
    extra_arguments,
    save_model,
    use_bf16,
    use_checkpointing,
    weights_digest,
)

PROVENANCE_FILE = "acqsynth_generator.json"
"""Written beside a trained generator: which student and reward it was trained against (for transfer)."""


@dataclass
class GRPOSettings:
    """`acqsynth grpo`: train a generator whose reward is the frozen student's acquisition score."""

    generator: str = "smollm2-135m-instruct"
    """The generator to train: alias, checkpoint directory or hub id (loaded with transformers)."""
    student: str = "smollm2-135m-instruct"
    """The frozen student that computes the reward."""
    data: str = "gsm8k"
    """Seed examples: built-in dataset, file or HF id."""
    task: str | None = None
    """math, mcqa, code or a task file; None = the built-in dataset's task."""
    split: str = "pool"
    """Split the training prompts come from (pool, so that later generation from the seed split is held out)."""
    prompts: int | None = 500
    """Seed examples to train on (first N of the split; the paper used 500)."""
    template: str | None = None
    """Generator prompt template (built-in name or file); None = the task's."""
    reward: str = "confidence"
    """Acquisition function or weighted combination computed by the frozen student."""
    reward_clip: float = 2.0
    """Upper bound of the acquisition term (the paper's clip(A, 0, 2)), whatever the transform."""
    reward_transform: str = "auto"
    """How the acquisition score becomes the term in [0, reward_clip]: clip (the paper's clip(A, 0, c)),
    scale (A over the running median |A|, then clipped), rank (c times A's percentile rank in the step)
    or auto (clip for scores on the paper's [0, 2] scale, scale for unbounded non-negative ones such as
    gradient and loss, rank for the rest); see docs/methods.md#the-grpo-reward."""
    format_weight: float = 1.0
    """Weight of the format reward F (0 turns it off)."""
    format_when_unparsable: bool = False
    """Give an unparsable completion its format reward instead of 0: shaping for a weak generator that
    rarely parses, so there is a signal towards the tags at all (the paper gives 0)."""
    embedder: str | None = "minilm-l6"
    """Sentence embedder for embedding-based rewards (proximity, diversity, answer-variance)."""
    group_size: int = 4
    """Completions per prompt (GRPO group)."""
    prompts_per_step: int = 12
    """Prompts per optimiser step (per device)."""
    max_steps: int = -1
    """Optimiser steps (-1: one pass of `epochs` over the prompts)."""
    epochs: float = 1.0
    """Passes over the prompts when max_steps is -1."""
    learning_rate: float = 1e-6
    """Peak learning rate (the paper: 1e-6 for a full finetune; LoRA usually wants ~1e-5–1e-4)."""
    method: str = "lora"
    """"lora" (adapter on the generator) or "full"."""
    lora_r: int = 16
    """LoRA rank."""
    lora_alpha: int = 32
    """LoRA scaling numerator."""
    lora_targets: str | list[str] = "all-linear"
    """Modules that get adapters."""
    beta: float = 0.0
    """KL coefficient against the initial generator (the paper used none; > 0 also logs the KL)."""
    max_completion_length: int = 256
    """Length limit of one generated sample."""
    temperature: float = 1.0
    """Generator sampling temperature during training."""
    answer_max_new_tokens: int = 512
    """Length of the student's own sampled answers (confidence, answer-variance); the paper used 512."""
    answer_temperature: float = 0.7
    """Temperature of the student's sampled answers."""
    use_vllm: bool = False
    """Generate with vLLM (GPU; `pip install acqsynth[vllm]`)."""
    vllm_mode: str = "colocate"
    """vLLM mode: colocate (same GPUs) or server (a `trl vllm-serve` process)."""
    bf16: bool | None = None
    """bf16 mixed precision; None = on where CUDA supports it."""
    gradient_checkpointing: bool | None = None
    """Recompute activations in the backward pass to save memory; None = on with CUDA, off on CPU."""
    seed: int = 0
    """Seed of sampling and data order."""
    logging_steps: int = 1
    """Log every this many steps."""
    save_merged: bool = True
    """Also save the generator with the adapter merged (a plain checkpoint `acqsynth generate` loads)."""
    output: str | None = None
    """Output directory (None = runs/grpo-TIMESTAMP)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Further `trl.GRPOConfig` arguments, passed as they are."""

    def __post_init__(self) -> None:
        if self.method not in ("lora", "full"):
            raise AcqsynthError(f"method must be 'lora' or 'full', got {self.method!r}")
        if self.group_size < 2:
            raise AcqsynthError(f"group_size must be >= 2 (GRPO compares completions within a group), got {self.group_size}")
        if self.prompts_per_step < 1:
            raise AcqsynthError(f"prompts_per_step must be >= 1, got {self.prompts_per_step}")
        if self.reward_clip <= 0:
            raise AcqsynthError(f"reward_clip must be > 0, got {self.reward_clip}")
        if self.reward_transform not in TRANSFORMS:
            raise AcqsynthError(f"reward_transform must be one of {', '.join(TRANSFORMS)}"
                                f"{suggest(self.reward_transform, TRANSFORMS)}, got {self.reward_transform!r}")
        check_range("prompts", self.prompts, 1)
        check_range("epochs", self.epochs, 0, low_open=self.max_steps <= 0)
        check_range("learning_rate", self.learning_rate, 0, low_open=True)
        check_range("lora_r", self.lora_r, 1)
        check_range("beta", self.beta, 0)
        check_range("max_completion_length", self.max_completion_length, 1)
        check_range("temperature", self.temperature, 0, low_open=True)  # GRPO needs varied completions
        check_range("answer_max_new_tokens", self.answer_max_new_tokens, 1)
        check_range("answer_temperature", self.answer_temperature, 0)
        check_range("seed", self.seed, 0, 2**32 - 1)
        check_range("logging_steps", self.logging_steps, 1)

        for key in ("generator", "student", "embedder"):
            if getattr(self, key) is not None:
                check_model_spec(getattr(self, key), key)
        if ".py:" not in self.reward:  # a user's file is imported when training starts, not here
            try:
                parse_acquisition(self.reward)
            except AcqsynthError as e:
                raise AcqsynthError(f"reward: {e}") from None
        if self.vllm_mode not in ("colocate", "server"):
            raise AcqsynthError(f"vllm_mode must be 'colocate' or 'server'{suggest(self.vllm_mode, ('colocate', 'server'))}, "
                                f"got {self.vllm_mode!r}")


class AcquisitionReward:
    """The GRPO reward: T(A) + w·F for a parsable completion, 0 otherwise (w·F with
    `format_when_unparsable`); T is the `transform` (`reward_transform.RewardTransform`).

    Each call parses a batch of completions, scores every parsable one with the acquisition function
    in one batched call on the frozen student, logs the parse rate and the reward terms (through
    TRL's `log_metric`), and appends every completion to `completions.jsonl`.
    """

    __name__ = "acquisition_reward"

    def __init__(self, acquisition: Any, ctx: Any, task: Any, prompt_builder: Any, transform: RewardTransform,
                 format_weight: float, log_path: Path | None = None, format_when_unparsable: bool = False) -> None:
        self.acquisition, self.ctx, self.task, self.builder = acquisition, ctx, task, prompt_builder
        self.transform, self.format_weight, self.log_path = transform, format_weight, log_path
        self.format_when_unparsable = format_when_unparsable
        self.calls = 0

    def score(self, completions: list[str]) -> dict[str, list[Any]]:
        """Parsed samples, acquisition, format reward and total reward of each completion."""

        texts = [self.builder.response_prefix + c for c in completions]
        fmt = [format_reward(t) for t in texts]
        parsed = []
        for t in texts:
            p = parse_completion(t, task=task_kind(self.task))
            ok = p.sample is not None and self.builder.copied_placeholder(p.sample) is None
            parsed.append(p.sample if ok else None)
        idx = [i for i, s in enumerate(parsed) if s is not None]
        acq = [math.nan] * len(texts)
        if idx:
            self.ctx.forget_samples()  # every step brings new samples: drop the last step's caches
            scores, _ = score_samples([s for s in parsed if s is not None], [self.acquisition], self.ctx)
            for i, v in zip(idx, scores[column_name(self.acquisition)], strict=True):
                acq[i] = float(v)
        terms = self.transform(acq)  # unparsable completions' NaN scores get 0 and do not count
        rewards = []
        for s, term, f in zip(parsed, terms, fmt, strict=True):
            if s is None:
                rewards.append(self.format_weight * f if self.format_when_unparsable else 0.0)
            else:
                rewards.append(term + self.format_weight * f)
        return {"parsed": parsed, "acquisition": acq, "term": terms, "format": fmt, "reward": rewards}

    def __call__(self, prompts: list[Any], completions: list[Any], **kwargs: Any) -> list[float | None]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        out = self.score(texts)
        n_ok = sum(s is not None for s in out["parsed"])
        finite = [a for a in out["acquisition"] if math.isfinite(a)]
        log = kwargs.get("log_metric")
        if log is not None:
            log("parse_rate", n_ok / max(1, len(texts)))
            if finite:  # a step where nothing parsed has no acquisition to average
                log("acquisition_mean", float(np.mean(finite)))
            log("format_mean", float(np.mean(out["format"])))
        state = kwargs.get("trainer_state")
        step = int(state.global_step) if state is not None else self.calls
        self.calls += 1
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as f:
                for t, s, a, term, fm, r in zip(texts, out["parsed"], out["acquisition"], out["term"], out["format"],
                                                out["reward"], strict=True):
                    f.write(json.dumps({
                        "step": step, "completion": t, "question": s.question if s else None,
                        "answer": s.answer if s else None, "acquisition": a if math.isfinite(a) else None,
                        "term": term if s else None, "format": fm, "reward": r,
                    }, ensure_ascii=False) + "\n")
        return out["reward"]


def prompt_rows(settings: GRPOSettings, tokenizer: Any) -> tuple[datasets.Dataset, Any, Any]:
    """The training prompts (chat text ending in the response prefix), the task and the prompt builder."""

    task = get_task(settings.task or builtin_task_name(settings.data))
    seeds = load_seeds(load_data(settings.data, split=settings.split, task=settings.task), settings.prompts)
    if not seeds:
        raise AcqsynthError(f"dataset {settings.data!r} has no rows in its {settings.split!r} split")
    builder = PromptBuilder(template_kind(task_kind(task)), settings.template)
    rows = datasets.Dataset.from_list(
        [{"prompt": format_chat(tokenizer, builder(s)), "seed_id": s.id} for s in seeds]
    )
    return rows, task, builder


def train_generator(settings: GRPOSettings, output: str | Path, progress: bool = True) -> dict[str, Any]:
    """Train the generator with GRPO; save it under `output`; return per-step logs and a summary."""
    from peft import LoraConfig
    from trl import GRPOConfig, GRPOTrainer


    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    acquisition = parse_acquisition(settings.reward)
    # a full finetune keeps fp32 weights (bf16 compute): bf16 ones would round updates of ~1e-6 away
    model, tokenizer = load_causal_lm(settings.generator, dtype=torch.float32 if settings.method == "full" else None)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows, task, builder = prompt_rows(settings, tokenizer)
    student_model, student_tok = load_causal_lm(settings.student)
    student = TransformersStudent(student_model.eval(), student_tok)
    embedder = LazyEmbedder(settings.embedder) if settings.embedder else None
    ctx = student_context(student, task, embedder, load_reference(settings), settings.seed,
                          settings.answer_max_new_tokens, settings.answer_temperature)
    trainer_args: dict[str, Any] = {
        "output_dir": str(out / "trainer"),
        "learning_rate": settings.learning_rate,
        "num_train_epochs": settings.epochs,
        "max_steps": settings.max_steps,
        "per_device_train_batch_size": settings.group_size * settings.prompts_per_step,
        "gradient_accumulation_steps": 1,
        "num_generations": settings.group_size,
        "max_completion_length": settings.max_completion_length,
        "temperature": settings.temperature,
        "beta": settings.beta,
        "use_vllm": settings.use_vllm,
        "vllm_mode": settings.vllm_mode,
        "bf16": use_bf16(settings.bf16, option="bf16"),
        **checkpointing_argument(GRPOConfig, use_checkpointing(settings.gradient_checkpointing)),
        "use_cpu": not torch.cuda.is_available(),
        "seed": settings.seed,
        "logging_steps": settings.logging_steps,
        "save_strategy": "no",
        "report_to": "none",
        "disable_tqdm": not progress,
        "dataloader_num_workers": 0,
    }
    args = GRPOConfig(**trainer_args, **extra_arguments(settings.extra, trainer_args, ""))
    transform = resolve(settings.reward_transform, acquisition)
    reward = AcquisitionReward(acquisition, ctx, task, builder, RewardTransform(transform, settings.reward_clip),
                               settings.format_weight,
                               log_path=out / "completions.jsonl",
                               format_when_unparsable=settings.format_when_unparsable)
    peft_config = None
    if settings.method == "lora":
        peft_config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha,
                                 target_modules=settings.lora_targets, task_type="CAUSAL_LM")
    trainer = GRPOTrainer(model=model, reward_funcs=[reward], args=args, train_dataset=rows,
                          processing_class=tokenizer, peft_config=peft_config)
    if trainer.accelerator.is_main_process:
        (out / "completions.jsonl").write_text("")
    else:
        reward.log_path = None
    start = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - start
    logs = [h for h in trainer.state.log_history if "reward" in h or "loss" in h]
    summary = {
        "steps": int(trainer.state.global_step),
        "wall_s": round(wall, 1),
        "s_per_step": round(wall / max(1, trainer.state.global_step), 2),
        "settings": asdict(settings),
        "reward_transform": transform,
        "processes": trainer.accelerator.num_processes,
    }
    if trainer.accelerator.is_main_process:
        trained: Any = trainer.model  # a PeftModel under LoRA
        if settings.method == "lora":
            saved = save_model(trained, tokenizer, out / "adapter")
            if settings.save_merged:
                saved = save_model(trained.merge_and_unload(), tokenizer, out / "generator")
        else:
            saved = save_model(trained, tokenizer, out / "generator")
        provenance = {"trained_by": "acqsynth grpo", "student": settings.student, "reward": settings.reward,
                      "reward_transform": transform, "data": settings.data, "split": settings.split, "prompts": len(rows),
                      "steps": int(trainer.state.global_step), "base_generator": settings.generator,
                      "weights_sha256": weights_digest(saved)}
        (saved / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2) + "\n")
        with (out / "log.jsonl").open("w", encoding="utf-8") as f:
            for h in logs:
                f.write(json.dumps(h) + "\n")
        (out / "summary.json").write_text(json.dumps({**summary, "first": _window(logs, 0), "last": _window(logs, -1)},
                                                     indent=2) + "\n")
    trainer.accelerator.wait_for_everyone()
    return {**summary, "logs": logs, "main_process": trainer.accelerator.is_main_process}


def load_reference(settings: GRPOSettings) -> list[str]:
    """Seed questions that proximity / diversity rewards measure against (the seed split of the data)."""

    ref = load_data(settings.data, split="seed", task=settings.task)
    return list(ref["question"])


def _window(logs: list[dict[str, Any]], end: int, size: int = 5) -> dict[str, float | None]:
    """Mean reward, parse rate and KL over the first (end=0) or last (end=-1) `size` logged steps."""
    part = logs[:size] if end == 0 else logs[-size:]

    def mean(key: str) -> float | None:
        vals = [h[key] for h in part if key in h]
        return round(float(np.mean(vals)), 4) if vals else None

    return {"steps": len(part), "reward": mean("reward"), "parse_rate": mean("parse_rate"), "kl": mean("kl"),
            "acquisition": mean("acquisition_mean"), "format": mean("format_mean")}
