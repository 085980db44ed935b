"""Write docs/config.md, the reference of every config key, from the config dataclasses themselves.

Each key's type, default and help come from its dataclass field and the docstring under it, so the
reference cannot say something the code does not. After changing a config dataclass, run

    .venv/bin/python scripts/config_reference.py

`tests/unit/test_docs.py` fails while the committed docs/config.md differs from what this writes.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from acqsynth.cli.flags import field_specs
from acqsynth.experiment.grid import ExperimentConfig
from acqsynth.run.config import RunConfig, builtin_configs
from acqsynth.strategies.grpo import GRPOSettings

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "docs" / "config.md"


@dataclass(frozen=True)
class Command:
    """One command whose config is documented: its dataclass and the built-in config compared with it."""

    command: str
    config: type
    intro: str
    builtin: str | None = None
    """A built-in config (configs/NAME.yaml) whose values are shown where they differ from the defaults."""
    builtin_label: str = ""


COMMANDS = (
    Command(
        "acqsynth run", RunConfig,
        "`acqsynth run [CONFIG] [KEY=VALUE ...]`. Without a CONFIG file, the run starts from the embedded "
        "default config (`configs/default.yaml`, the main job), and the **main job** column shows the values "
        "it sets. A CONFIG file of your own starts from the **default** column instead.",
        builtin="default", builtin_label="main job",
    ),
    Command(
        "acqsynth grpo", GRPOSettings,
        "`acqsynth grpo [CONFIG] [KEY=VALUE ...]`: GRPO training of the generator (see "
        "[strategies.md](strategies.md)). Without a CONFIG file it starts from the **default** column; the "
        "**grpo-cpu** column shows what the built-in `grpo-cpu` config (`acqsynth grpo grpo-cpu`) sets.",
        builtin="grpo-cpu", builtin_label="grpo-cpu",
    ),
    Command(
        "acqsynth experiment", ExperimentConfig,
        "`acqsynth experiment CONFIG [KEY=VALUE ...]`: a grid of runs (see [experiments.md](experiments.md)). "
        "`base`, `overrides` and `methods` name `acqsynth run` keys, so every key of the first table can "
        "be set per experiment or per method.",
    ),
)


def field_docs(cls: type) -> dict[str, tuple[str, str]]:
    """Field name -> (annotation as written, the docstring under the field) for dataclass `cls`: the
    same help text `acqsynth COMMAND --help` shows (`cli/flags.py` reads it)."""
    specs = field_specs(f"{cls.__module__}:{cls.__qualname__}")
    out = {}
    for name, spec in specs.items():
        annotation = inspect.get_annotations(cls).get(name, spec.type)
        out[name] = (annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation)),
                     spec.doc)
    return out


def nested_dataclass(hint: Any) -> type | None:
    """The dataclass a field holds (also through `X | None`), or None."""
    for candidate in (hint, *typing.get_args(hint)):
        if dataclasses.is_dataclass(candidate) and isinstance(candidate, type):
            return candidate
    return None


def show(value: Any) -> str:
    """A value as it is written in YAML or on the command line (`null`, `true`, `[1]`, `all-linear`)."""
    if isinstance(value, str) and value == "":
        return "`\"\"`"
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6).strip()
    text = text.removesuffix("...").strip()
    return f"`{text}`"


MISSING = object()


def _same(value: Any, f: dataclasses.Field[Any]) -> bool:
    """Whether a built-in config's value is the field's default (so `3` equals `3.0`)."""
    if f.default is not dataclasses.MISSING:
        return bool(value == f.default)
    if f.default_factory is not dataclasses.MISSING:
        return bool(value == f.default_factory())
    return False


def cell(text: str) -> str:
    return text.replace("|", "\\|")


def flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> value of a nested mapping (what a config file sets)."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict) and value and all(isinstance(k, str) for k in value):
            nested = flatten(value, f"{prefix}{key}.")
            out.update(nested)
        out[f"{prefix}{key}"] = value
    return out


def source_link(cls: type) -> str:
    path = Path(inspect.getfile(cls)).resolve().relative_to(ROOT)
    return f"[`{path.relative_to('src/acqsynth') if path.is_relative_to('src/acqsynth') else path}`](../{path})"


def section(cmd: Command) -> list[str]:
    builtin = {}
    if cmd.builtin is not None:
        builtin = flatten(yaml.safe_load(builtin_configs()[cmd.builtin].read_text(encoding="utf-8")) or {})
    lines = [f"## `{cmd.command}`", "", cmd.intro, ""]
    tables: list[tuple[str, type]] = [("", cmd.config)]
    while tables:
        prefix, cls = tables.pop(0)
        hints = typing.get_type_hints(cls)
        docs = field_docs(cls)
        title = f"`{prefix.rstrip('.')}.*`" if prefix else "top level"
        lines += [f"### {title}: `{cls.__name__}` ({source_link(cls)})", ""]
        summary = " ".join(inspect.cleandoc(cls.__doc__ or "").split("\n\n")[0].split())
        lines += [summary, ""] if summary else []
        head = ["key", "type", "default", *( [cmd.builtin_label] if builtin else []), "meaning"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        nested = []
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            key = f"{prefix}{f.name}"
            annotation, doc = docs.get(f.name, (str(hints[f.name]), ""))
            inner = nested_dataclass(hints[f.name])
            if inner is not None:
                nested.append((f"{key}.", inner))
                default = f"see `{key}.*`"
                doc = f"{doc} (keys below)" if doc else "(keys below)"
            elif f.default is not dataclasses.MISSING:
                default = show(f.default)
            elif f.default_factory is not dataclasses.MISSING:
                default = show(f.default_factory())
            else:
                default = "(required)"
            row = [f"`{key}`", f"`{annotation}`", default]
            if builtin:
                value = builtin.get(key, MISSING)
                differs = value is not MISSING and inner is None and not _same(value, f)
                row.append(show(value) if differs else "")
            row.append(doc)
            lines.append("| " + " | ".join(cell(c) for c in row) + " |")
        lines.append("")
        tables[0:0] = nested
    return lines


def render() -> str:
    """The whole of docs/config.md."""
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by scripts/config_reference.py from the config dataclasses; do not edit by hand. -->",
        "",
        "Every key of the configs that `acqsynth run`, `acqsynth grpo` and `acqsynth experiment` read, with",
        "its type, its default and what it does. A config is an optional YAML file (nested mappings) followed",
        "by `KEY=VALUE` overrides on the command line, where KEY is the dotted path shown here and VALUE is",
        "read as YAML:",
        "",
        "```bash",
        "acqsynth run budget.samples=64 selection.acquisition='0.5*loss + 0.5*diversity'",
        "acqsynth run my.yaml train.method=full generator.template=null",
        "acqsynth experiment experiments/cpu-study.yaml 'seeds=[0, 1]'",
        "```",
        "",
        "`null` sets a key to None, `[a, b]` is a list and `{a: 1}` a mapping. A misspelt key, a value of the",
        "wrong type or one out of range is an error that names the key before any model is loaded. The",
        "resolved config is saved as `config.yaml` in the output directory.",
        "",
        "The other commands (`acqsynth data`, `eval`, `grade`, `score`, `generate`) take flags instead;",
        "`acqsynth COMMAND --help` lists them, with defaults and help read off their dataclass configs in",
        "the same way.",
        "",
    ]
    for cmd in COMMANDS:
        lines += section(cmd)
    return "\n".join(lines).rstrip("\n") + "\n"


def main() -> int:
    OUTPUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
