"""Model spec resolution: aliases, local paths, hub ids, and clear errors for bad specs."""

from __future__ import annotations

import pytest

from acqsynth.errors import AcqsynthError
from acqsynth.models.aliases import ALIASES, gguf_path, hf_model_path


def test_unknown_alias_suggests_the_closest():
    with pytest.raises(AcqsynthError, match="Did you mean 'smollm2-135m-instruct'") as e:
        hf_model_path("smollm2-135m-instruc")
    assert "minilm-l6" in str(e.value)


def test_corrupted_gguf_names_the_file(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"NOPE" + b"\0" * 100)
    with pytest.raises(AcqsynthError, match=r"broken\.gguf: not a GGUF file"):
        hf_model_path(str(bad))
    with pytest.raises(AcqsynthError, match=r"missing\.gguf: no such GGUF file"):
        gguf_path(str(tmp_path / "missing.gguf"))


def test_truncated_gguf_fails_clearly_and_leaves_no_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("ACQSYNTH_CACHE", str(tmp_path / "cache"))
    bad = tmp_path / "trunc.gguf"
    bad.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\xff" * 20)
    with pytest.raises(AcqsynthError, match=r"trunc\.gguf: cannot read this GGUF"):
        hf_model_path(str(bad))
    leftovers = [p for p in (tmp_path / "cache" / "models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []


def test_local_checkpoint_dir_and_hub_id(tmp_path, tiny_model_dir):
    assert hf_model_path(str(tiny_model_dir)) == str(tiny_model_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(AcqsynthError, match="needs a config.json"):
        hf_model_path(str(tmp_path / "empty"))
    assert hf_model_path("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_optional_alias_is_not_default():
    assert not ALIASES["qwen2.5-coder-0.5b-instruct"].default
    assert "unclear" in ALIASES["qwen2.5-coder-0.5b-instruct"].license
