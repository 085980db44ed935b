"""Student SFT with TRL on a tiny random model: the loss falls, the base model is untouched, the
loss covers the completion only, and the saved adapter rebuilds the same model."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from tiny import make_tiny_model

from acqsynth.errors import AcqsynthError
from acqsynth.models.causal_lm import load_causal_lm
from acqsynth.models.hf_student import TransformersStudent
from acqsynth.samples import Sample
from acqsynth.tasks import get_task
from acqsynth.training import TrainConfig, sft_rows, train_student, weights_digest

SAMPLES = [Sample(id=f"s{i}", question=f"What is {i} + 7?", answer=str(i + 7)) for i in range(12)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("m") / "tiny")


def test_rows_are_the_task_prompt_and_target() -> None:
    task = get_task("math")
    rows = sft_rows(SAMPLES[:2], task)
    assert rows[0]["prompt"] == task.prompt(SAMPLES[0])
    assert rows[0]["completion"] == [{"role": "assistant", "content": "#### 7"}]
    with pytest.raises(AcqsynthError, match="empty set"):
        sft_rows([], task)


def test_lora_training_lowers_the_loss_and_leaves_the_base_alone(tiny: Path, tmp_path: Path) -> None:
    model, tok = load_causal_lm(str(tiny))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    task = get_task("math")
    student = TransformersStudent(model, tok)
    prompts = [task.prompt(s) for s in SAMPLES]
    targets = [task.target(s) for s in SAMPLES]
    loss_before = student.answer_loss(prompts, targets).mean()
    result = train_student(model, tok, SAMPLES, task, TrainConfig(epochs=20, batch_size=4, learning_rate=1e-2), tmp_path)
    assert result.steps == 60 and len(result.losses) == 60
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    loss_after = TransformersStudent(result.model, tok).answer_loss(prompts, targets).mean()
    assert loss_after < loss_before - 0.25, (loss_before, loss_after)
    # the saved adapter on a fresh copy of the base gives the merged model's logits
    rebuilt = PeftModel.from_pretrained(copy.deepcopy(model), str(result.saved)).merge_and_unload()
    ids = tok("What is 3 + 7?", return_tensors="pt").input_ids.to(model.device)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(ids).logits, result.model(ids).logits, rtol=1e-5, atol=1e-5)
    assert (result.saved / "acqsynth_train.json").exists()


def test_loss_is_on_the_completion_only(tiny: Path, tmp_path: Path) -> None:
    """Training on one prompt with two different long prompts but the same answer must not teach the
    prompt: the student's loss on the prompt text itself stays where it was."""
    model, tok = load_causal_lm(str(tiny))
    task = get_task("math")
    student = TransformersStudent(model, tok)
    prompt_text = task.prompt(SAMPLES[0])[0]["content"]
    base_prompt_loss = student.score_texts([""], [prompt_text])[0].mean_nll
    result = train_student(model, tok, SAMPLES, task, TrainConfig(epochs=8, batch_size=4, learning_rate=1e-2),
                           tmp_path, save=False)
    trained_prompt_loss = TransformersStudent(result.model, tok).score_texts([""], [prompt_text])[0].mean_nll
    assert result.saved is None
    assert abs(trained_prompt_loss - base_prompt_loss) < 0.5 * abs(base_prompt_loss)


def test_full_finetune_changes_every_layer(tiny: Path, tmp_path: Path) -> None:
    model, tok = load_causal_lm(str(tiny))
    result = train_student(model, tok, SAMPLES[:4], get_task("math"),
                           TrainConfig(method="full", epochs=3, batch_size=4, learning_rate=1e-3), tmp_path)
    changed = [k for k, v in result.model.state_dict().items() if not torch.equal(v, model.state_dict()[k])]
    assert any("layers.0" in k for k in changed) and any("layers.1" in k for k in changed)
    assert (result.saved / "config.json").exists()


def test_a_half_precision_base_trains_fp32_weights_like_its_fp32_copy(tiny: Path, tmp_path: Path) -> None:
    """On CUDA the student loads in bf16; a full finetune must not step bf16 weights (an update of
    lr 2e-5 is below bf16's resolution near 0.02 and rounds away). It trains an fp32 copy and hands back
    the base's dtype, so it ends exactly where the fp32 copy of the same weights ends, cast to bf16."""
    model, tok = load_causal_lm(str(tiny))
    half = model.to(torch.bfloat16)
    config = TrainConfig(method="full", epochs=2, batch_size=4, learning_rate=2e-5)
    from_half = train_student(half, tok, SAMPLES[:4], get_task("math"), config, tmp_path / "h", save=False)
    fp32 = copy.deepcopy(half).float()  # Module.to/float work in place
    from_fp32 = train_student(fp32, tok, SAMPLES[:4], get_task("math"), config, tmp_path / "f", save=False)
    assert half.dtype == from_half.model.dtype == torch.bfloat16
    expected = {k: v.to(torch.bfloat16) for k, v in from_fp32.model.state_dict().items()}
    for k, v in from_half.model.state_dict().items():
        torch.testing.assert_close(v, expected[k], rtol=0, atol=0, msg=k)
    changed = sum(not torch.equal(v, half.state_dict()[k]) for k, v in from_half.model.state_dict().items())
    assert changed > 0


def test_bad_settings_are_clear() -> None:
    with pytest.raises(AcqsynthError, match="train.method must be 'lora' or 'full'"):
        TrainConfig(method="qlora")
    with pytest.raises(AcqsynthError, match="batch_size"):
        TrainConfig(batch_size=0)
    if not torch.cuda.is_available():
        from acqsynth.training import use_bf16

        with pytest.raises(AcqsynthError, match="train.bf16 is true but no CUDA device with bf16"):
            use_bf16(TrainConfig(bf16=True).bf16)


def _lora_a(trainer: object) -> dict[str, torch.Tensor]:
    """The adapter's A matrices (B starts at zero, so A is what the seed draws)."""
    return {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_A" in k}  # type: ignore[attr-defined]


def _first_batches(trainer: object, n: int = 3) -> list[torch.Tensor]:
    loader = trainer.get_train_dataloader()  # type: ignore[attr-defined]
    return [b["input_ids"].clone() for _, b in zip(range(n), loader, strict=False)]


def test_the_seed_alone_decides_the_lora_initialisation_and_the_data_order(tiny: Path, tmp_path: Path) -> None:
    """The adapter is drawn when the trainer is built; it must follow `train.seed`, not whatever the process
    drew before (the global RNG is put in different states before each build)."""
    from acqsynth.training import sft_trainer

    model, tok = load_causal_lm(str(tiny))
    task = get_task("math")

    def build(seed: int, ambient: int) -> object:
        torch.manual_seed(ambient)
        torch.rand(ambient % 7 + 1)  # a different amount drawn, too
        return sft_trainer(model, tok, SAMPLES, task, TrainConfig(epochs=1, batch_size=4, seed=seed), tmp_path)

    a, again, other = build(0, 11), build(0, 12345), build(1, 11)
    first, second, third = _lora_a(a), _lora_a(again), _lora_a(other)
    assert first and first.keys() == second.keys() == third.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not any(torch.equal(first[k], third[k]) for k in first)
    order, order_again, order_other = _first_batches(a), _first_batches(again), _first_batches(other)
    assert all(torch.equal(x, y) for x, y in zip(order, order_again, strict=True))
    assert not all(x.shape == y.shape and torch.equal(x, y) for x, y in zip(order, order_other, strict=True))
    with pytest.raises(AcqsynthError, match="needs a training seed"):
        sft_trainer(model, tok, SAMPLES, task, TrainConfig(epochs=1), tmp_path)


def test_training_is_reproducible_under_its_seed_and_changes_with_it(tiny: Path, tmp_path: Path) -> None:
    """Initialisation, data order and dropout all follow the seed: the same seed twice trains the same
    weights, another seed other weights; the seed used is reported and saved with the adapter."""
    model, tok = load_causal_lm(str(tiny))
    task = get_task("math")

    def train(seed: int | None, name: str, ambient: int) -> object:
        torch.manual_seed(ambient)
        config = TrainConfig(epochs=1, batch_size=4, learning_rate=1e-2, lora_dropout=0.3, seed=seed)
        return train_student(model, tok, SAMPLES, task, config, tmp_path / name)

    a, again, other, unset = train(5, "a", 1), train(5, "b", 2), train(6, "c", 1), train(None, "d", 3)
    wa, wb, wc = (r.model.state_dict() for r in (a, again, other))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa)
    assert (a.seed, other.seed, unset.seed) == (5, 6, 0) and a.metrics()["seed"] == 5
    import json

    assert json.loads((a.saved / "acqsynth_train.json").read_text())["seed"] == 5
    assert json.loads((unset.saved / "acqsynth_train.json").read_text())["seed"] == 0  # resolved, not null
    # the saved weights' digest names them: the same for the same seed, another for another seed
    digest = {name: json.loads((r.saved / "acqsynth_train.json").read_text())["weights_sha256"]
              for name, r in (("a", a), ("again", again), ("other", other))}
    assert digest["a"] == digest["again"] == weights_digest(a.saved) != digest["other"]
    assert len(digest["a"]) == 16
    with pytest.raises(AcqsynthError, match=r"holds no \*\.safetensors weight files"):
        weights_digest(tmp_path)


def test_train_seed_defaults_to_derived_and_is_checked() -> None:
    assert TrainConfig().seed is None
    with pytest.raises(AcqsynthError, match="train.seed"):
        TrainConfig(seed=-1)


def test_checkpointing_is_off_on_cpu_and_changes_nothing_but_time(tiny: Path, tmp_path: Path) -> None:
    """Activation checkpointing recomputes the same forward pass: the trained weights are the same with
    and without it, so turning it off on CPU (the default there) cannot change a result."""
    from acqsynth.training import sft_trainer, use_checkpointing

    model, tok = load_causal_lm(str(tiny))
    task = get_task("math")
    if not torch.cuda.is_available():
        assert use_checkpointing(None) is False
        with warnings.catch_warnings():  # the setting goes by its current name: no deprecation warning
            warnings.filterwarnings("error", message="`gradient_checkpointing` is deprecated", category=FutureWarning)
            trainer = sft_trainer(model, tok, SAMPLES[:4], task, TrainConfig(seed=0), tmp_path / "t")
        assert trainer.args.gradient_checkpointing is False
    trained = [train_student(model, tok, SAMPLES, task, TrainConfig(epochs=1, batch_size=4, learning_rate=1e-2,
                                                                     gradient_checkpointing=on),
                             tmp_path / str(on), save=False) for on in (True, False)]
    assert trained[0].losses == trained[1].losses
    on, off = (r.model.state_dict() for r in trained)
    assert all(torch.allclose(on[k], off[k], atol=1e-6) for k in on)


def test_extra_trainer_arguments_cannot_override_an_option(tiny: Path, tmp_path: Path) -> None:
    from acqsynth.training import sft_trainer

    model, tok = load_causal_lm(str(tiny))
    config = TrainConfig(seed=0, extra={"gradient_checkpointing": True})
    with pytest.raises(AcqsynthError, match=r"train.extra.gradient_checkpointing: acqsynth sets this trainer argument"):
        sft_trainer(model, tok, SAMPLES[:4], get_task("math"), config, tmp_path / "t")
    config = TrainConfig(seed=0, extra={"activation_checkpointing": True})  # the same setting by its new name
    with pytest.raises(AcqsynthError, match=r"train.extra.activation_checkpointing: acqsynth sets this trainer"):
        sft_trainer(model, tok, SAMPLES[:4], get_task("math"), config, tmp_path / "t")
    config = TrainConfig(seed=0, extra={"max_grad_norm": 0.5})  # not one acqsynth sets: passed through
    assert sft_trainer(model, tok, SAMPLES[:4], get_task("math"), config, tmp_path / "u").args.max_grad_norm == 0.5
