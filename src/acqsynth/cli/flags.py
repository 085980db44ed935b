"""Command-line flags read off dataclass configs: one source of names, types, defaults and help.

A `Flag` names one field of a dataclass as `"module:Class"` and the field's name. Its option
(`max_new_tokens` → `--max-new-tokens`), type (from the annotation), default and help (the attribute
docstring under the field) come from the dataclass. They are read from the module's source with `ast`,
not by importing it: several config modules import torch, and `acqsynth --help` must stay fast.
A command builds its configs from `values(args, flags, source)`, importing them only when it runs.
"""

from __future__ import annotations

import argparse
import ast
import functools
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acqsynth.errors import AcqsynthError


class _Marker:
    """A named stand-in for a default (compared by identity)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED: Any = _Marker("REQUIRED")
"""The default of a field without one: its flag must be given."""
FIELD_DEFAULT: Any = _Marker("FIELD_DEFAULT")
"""A `Flag.default` that keeps the field's own default."""
UNREADABLE: Any = _Marker("UNREADABLE")
"""A default that is not a literal (a `default_factory`, an expression): no flag can carry it."""
SCALARS = {"int": int, "float": float, "str": str, "bool": bool}
"""Field types a flag can carry: a scalar, `X | None`, `list[X]` (any number of values) or
`dict[str, str]` (any number of KEY=VALUE items)."""


@dataclass(frozen=True)
class FieldSpec:
    """What a parser needs of one dataclass field, read from the source of its class."""

    name: str
    type: str
    """One of SCALARS (the values' type for a list or a mapping), else the annotation as written."""
    optional: bool
    """The annotation admits None."""
    shape: str
    """"one" value, a "list" or a "dict" (of KEY=VALUE items): the flag takes any number of values."""
    default: Any
    """The field's default, REQUIRED or UNREADABLE."""
    doc: str
    """The attribute docstring, whitespace collapsed."""


@dataclass(frozen=True)
class Flag:
    """A command-line flag for field `field` of the dataclass `source` ("module:Class")."""

    source: str
    field: str
    names: tuple[str, ...] = ()
    """Option strings; default `--field-name` (`--no-field-name` for a boolean that defaults to True)."""
    default: Any = FIELD_DEFAULT
    """This command's default where it differs from the field's; say why in `note`."""
    note: str = ""
    """Appended to the field's docstring in this command's help."""
    choices: str | None = None
    """`"module:CONSTANT"`: a module-level tuple of the valid values (read from source, too)."""
    metavar: str | None = None

    @property
    def spec(self) -> FieldSpec:
        specs = field_specs(self.source)
        if self.field not in specs:
            raise KeyError(f"{self.source} has no field {self.field!r} that a flag can carry")
        return specs[self.field]

    @property
    def dest(self) -> str:
        return f"{self.source}.{self.field}"

    @property
    def value_default(self) -> Any:
        """The value the flag takes when it is not given (REQUIRED: it must be given)."""
        return self.spec.default if self.default is FIELD_DEFAULT else self.default

    @property
    def option_strings(self) -> tuple[str, ...]:
        if self.names:
            return self.names
        flag = self.field.replace("_", "-")
        return (f"--no-{flag}",) if self.spec.type == "bool" and self.value_default is True else (f"--{flag}",)

    def help(self) -> str:
        """The field's docstring, this command's note, the default; `Switch off: ...` for a `--no-` flag."""
        default = self.value_default
        text = " ".join(p for p in (self.spec.doc, self.note) if p)
        if self.spec.type == "bool" and default is True:
            text = f"Switch off: {text[:1].lower()}{text[1:]}"
        if default is not REQUIRED and default is not None and not isinstance(default, bool):
            text = f"{text.removesuffix('.')} (default {default})."
        return text.replace("%", "%%")  # argparse formats help with %

    def add_to(self, parser: argparse.ArgumentParser) -> argparse.Action:
        spec, default = self.spec, self.value_default
        if spec.type not in SCALARS or default is UNREADABLE:
            raise TypeError(f"{self.dest}: a flag cannot carry a field of type {spec.type} with default {default!r}")
        kwargs: dict[str, Any] = {"dest": self.dest, "help": self.help()}
        if spec.type == "bool":
            if spec.shape != "one" or default is REQUIRED:
                raise TypeError(f"{self.dest}: a boolean flag needs a default and a single value")
            kwargs["action"] = "store_false" if default else "store_true"
        else:
            kwargs["type"] = SCALARS[spec.type]
            if self.choices:  # argparse shows them as the metavar: {a,b,c}
                kwargs["choices"] = module_constant(self.choices)
            if self.metavar or not self.choices:
                kwargs["metavar"] = self.metavar or self.option_strings[0].lstrip("-").replace("-", "_").upper()
            if spec.shape != "one":
                kwargs["nargs"] = "*"
        if default is REQUIRED:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
        return parser.add_argument(*self.option_strings, **kwargs)


def add_flags(parser: argparse.ArgumentParser, flags: Sequence[Flag]) -> None:
    """Add each flag to `parser`, in order."""
    for flag in flags:
        flag.add_to(parser)


def values(args: argparse.Namespace, flags: Sequence[Flag], source: str) -> dict[str, Any]:
    """The parsed values of the flags for fields of `source`, by field name (keyword arguments of its class).
    KEY=VALUE items of a mapping field become a dict (none given: None)."""
    out = {}
    for f in flags:
        if f.source == source:
            value = getattr(args, f.dest)
            out[f.field] = _mapping(value, f) if f.spec.shape == "dict" and value is not None else value
    return out


def _mapping(items: Sequence[str], flag: Flag) -> dict[str, str] | None:
    if not items:
        return None
    mapping = {}
    for item in items:
        if "=" not in item:
            raise AcqsynthError(f"{flag.option_strings[0]} expects {flag.metavar or 'KEY=VALUE'}, got {item!r}")
        k, v = item.split("=", 1)
        mapping[k.strip()] = v.strip()
    return mapping


# ---------------------------------------------------------------- reading sources
def module_file(module: str) -> Path:
    """The source file of `module`, found without importing the module or its parent packages."""
    top, *rest = module.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"no package {top!r}")
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@functools.cache
def _module_tree(module: str) -> ast.Module:
    return ast.parse(module_file(module).read_text(encoding="utf-8"))


def _constants(tree: ast.Module) -> dict[str, Any]:
    """Module-level `NAME = <literal>` assignments."""
    out: dict[str, Any] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(target, ast.Name) and node.value is not None:
            try:
                out[target.id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def module_constant(ref: str) -> Any:
    """The literal value of a module-level constant `"module:NAME"`, read from source."""
    module, _, name = ref.partition(":")
    constants = _constants(_module_tree(module))
    if name not in constants:
        raise KeyError(f"{module} has no literal module-level constant {name!r}")
    return constants[name]


def _default(node: ast.expr | None, constants: dict[str, Any]) -> Any:
    if node is None:
        return REQUIRED
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "field":
        given = {k.arg: k.value for k in node.keywords}
        if "default" in given:
            return _default(given["default"], constants)
        return UNREADABLE if "default_factory" in given else REQUIRED
    if isinstance(node, ast.Name) and node.id in constants:
        return constants[node.id]
    return ast.literal_eval(node)


def _annotation(node: ast.expr) -> tuple[str, bool, str]:
    """(scalar type, optional, shape) of an annotation such as `int | None` or `list[str] | None`."""
    parts: list[ast.expr] = []

    def split(n: ast.expr) -> None:
        if isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr):
            split(n.left)
            split(n.right)
        else:
            parts.append(n)

    split(node)
    optional = any(isinstance(p, ast.Constant) and p.value is None for p in parts)
    kinds = [p for p in parts if not (isinstance(p, ast.Constant) and p.value is None)]
    if len(kinds) == 1:
        kind, shape = kinds[0], "one"
        if isinstance(kind, ast.Subscript) and getattr(kind.value, "id", None) == "list":
            kind, shape = kind.slice, "list"
        elif isinstance(kind, ast.Subscript) and ast.unparse(kind) == "dict[str, str]":
            kind, shape = ast.Name("str"), "dict"
        if isinstance(kind, ast.Name) and kind.id in SCALARS:
            return kind.id, optional, shape
    return ast.unparse(node), optional, "one"  # not a flag type: refused when a flag names the field


@functools.cache
def field_specs(source: str) -> dict[str, FieldSpec]:
    """The fields of dataclass `source` ("module:Class") with their annotated types, defaults and docstrings."""
    module, _, name = source.partition(":")
    tree = _module_tree(module)
    cls = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name), None)
    if cls is None:
        raise KeyError(f"{module} defines no class {name!r}")
    constants = _constants(tree)
    out: dict[str, FieldSpec] = {}
    body = cls.body
    for i, node in enumerate(body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        if ast.unparse(node.annotation).startswith(("ClassVar", "typing.ClassVar")):
            continue
        after = body[i + 1] if i + 1 < len(body) else None
        doc = after.value.value if (
            isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)
        ) else ""
        kind, optional, shape = _annotation(node.annotation)
        try:
            default = _default(node.value, constants)
        except ValueError:  # not a literal: only a problem for a flag that uses it
            default = UNREADABLE
        out[node.target.id] = FieldSpec(node.target.id, kind, optional, shape, default, " ".join(doc.split()))
    return out
