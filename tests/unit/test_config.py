"""Dataclass configs from YAML and key=value overrides: defaults, merging, and errors that name the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from acqsynth.config import load_config, parse_override, save_config, to_dict
from acqsynth.errors import AcqsynthError
from acqsynth.run.config import RunConfig, default_config_path


def test_defaults_then_file_then_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("strategy: static\nbudget:\n  samples: 10\ntrain:\n  epochs: 2\n")
    c = load_config(RunConfig, f, ["budget.samples=12", "train.lora_targets=[q_proj, v_proj]", "generator.threads=null"])
    assert c.strategy == "static"
    assert c.budget.samples == 12  # the override wins over the file
    assert c.train.epochs == 2.0 and isinstance(c.train.epochs, float)  # int accepted for a float field
    assert c.train.lora_targets == ["q_proj", "v_proj"]
    assert c.generator.threads is None
    assert c.train.learning_rate == RunConfig().train.learning_rate  # untouched keys keep their defaults


def test_embedded_default_loads_and_round_trips(tmp_path: Path) -> None:
    c = load_config(RunConfig, default_config_path())
    assert (c.strategy, c.data.name, c.data.warmup, c.data.eval_n) == ("filtered", "arithmetic-2d", 32, 500)
    assert c.selection.acquisition == "learnability" and c.generator.label.method == "compute"
    assert c.generator.hygiene.embedding_threshold is None
    saved = save_config(c, tmp_path / "resolved.yaml")
    assert load_config(RunConfig, saved) == c
    assert yaml.safe_load(saved.read_text()) == to_dict(c)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("budget.sampels=3", "unknown config key 'budget.sampels' (did you mean 'budget.samples'?); "
                             "valid keys here: samples, generated, teacher_tokens"),
        ("budget.samples=many", "budget.samples: expected int, got 'many'"),
        ("strategy=bogus", "strategy 'bogus' is unknown; choose one of active, static, rejection, random"),
        ("train.method=qlora", "train.method must be 'lora' or 'full'"),
        ("budget.samples=0", "budget.samples must be >= 1"),
        ("budget", "is not key=value"),
        ("budget..samples=3", "must be a dotted path"),
        ("generator.label.method=vote", "label method 'vote' is unknown"),
    ],
)
def test_bad_overrides_name_the_key(override: str, message: str) -> None:
    with pytest.raises(AcqsynthError, match=re.escape(message)):
        load_config(RunConfig, None, [override])


def test_bad_yaml_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("strategy: active\nbudget:\n  samples: [1, 2\n")
    with pytest.raises(AcqsynthError, match=r"bad\.yaml line \d+, column \d+: not valid YAML"):
        load_config(RunConfig, f)
    f.write_text("- just\n- a list\n")
    with pytest.raises(AcqsynthError, match="top level must be a mapping"):
        load_config(RunConfig, f)
    f.write_text("budget:\n  nope: 1\n")
    with pytest.raises(AcqsynthError, match=r"bad\.yaml: unknown config key 'budget\.nope'"):
        load_config(RunConfig, f)
    with pytest.raises(AcqsynthError, match="does not exist"):
        load_config(RunConfig, tmp_path / "missing.yaml")


def test_parse_override_reads_yaml_values() -> None:
    assert parse_override("a.b.c=1.5") == {"a": {"b": {"c": 1.5}}}
    assert parse_override("x=true") == {"x": True}
    assert parse_override("x=null") == {"x": None}
    assert parse_override("x=a=b") == {"x": "a=b"}
    assert parse_override("x=") == {"x": ""}
    assert load_config(RunConfig, None, ["train.learning_rate=1e-3"]).train.learning_rate == 1e-3
