"""Dataclass configs from YAML with `key=value` command-line overrides, checked field by field.

`load_config(RunConfig, "my.yaml", ["budget.samples=64", "train.method=full"])` starts from the
dataclass defaults, applies the YAML file, then each override (a dotted path and a YAML value),
and builds the dataclasses. A misspelt key, a wrong type or a bad line is an error that names the
key (and the file and line for YAML), listing the valid keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

import yaml

from acqsynth.errors import AcqsynthError

T = TypeVar("T")


def to_dict(config: Any) -> dict[str, Any]:
    """A dataclass config as plain data (what `save_config` writes and `load_config` reads)."""
    return dataclasses.asdict(config)


def _check_type(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except AcqsynthError as e:
                errors.append(str(e))
        raise AcqsynthError(errors[0] if len(errors) == 1 else f"{where}: {value!r} fits none of {_show(hint)}")
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):  # a hint is a class, never an instance
        if not isinstance(value, dict):
            raise AcqsynthError(f"{where}: expected a mapping of {_show(hint)} keys, got {value!r}")
        return _build(hint, value, where)
    if origin in (list, Sequence, tuple) or hint in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise AcqsynthError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        return [_check_type(v, args[0], f"{where}[{i}]") if args else v for i, v in enumerate(value)]
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise AcqsynthError(f"{where}: expected a mapping, got {value!r}")
        args = typing.get_args(hint)
        if args and args[0] is str:
            bad = [k for k in value if not isinstance(k, str)]
            if bad:  # YAML reads `1:` as an int key; a method or column name must be text
                raise AcqsynthError(f"{where}: key {bad[0]!r} must be text (quote it: '{bad[0]}')")
        return dict(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):
        try:  # YAML 1.1 reads "1e-3" (no dot) as a string
            return float(value)
        except ValueError:
            pass
    if hint in (int, float, str, bool):
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise AcqsynthError(f"{where}: expected {hint.__name__}, got {value!r}")
        return value
    return value


def _show(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _build(cls: type[T], values: dict[str, Any], where: str) -> T:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    kwargs = {}
    for key, value in values.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in fields:
            hint = _key_hint(cls, str(key), where)
            raise AcqsynthError(f"unknown config key {path!r}{hint}; valid keys here: {', '.join(fields)}")
        kwargs[key] = _check_type(value, hints[key], path)
    try:
        return cls(**kwargs)
    except AcqsynthError as e:
        message = str(e)
        if not where or message.startswith((f"{where}.", f"{where}:")):  # already names its key path
            raise
        raise AcqsynthError(f"{where}: {message}") from None


def key_paths(cls: Any, prefix: str = "") -> list[str]:
    """Every dotted key path under dataclass `cls` (`budget.samples`, `generator.label.k`, ...)."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        path = f"{prefix}{f.name}"
        out.append(path)
        hint = hints[f.name]
        inner = [a for a in typing.get_args(hint) if dataclasses.is_dataclass(a)] or [hint]
        if dataclasses.is_dataclass(inner[0]):
            out.extend(key_paths(inner[0], f"{path}."))
    return out


def _key_hint(cls: Any, key: str, where: str) -> str:
    """` (did you mean 'budget.samples'?)` for a misspelt key: the closest key at this level, else a key
    of that name (or close to it) deeper down, e.g. `epochs` at the top → `train.epochs`."""
    prefix = f"{where}." if where else ""
    here = [f.name for f in dataclasses.fields(cls) if f.init]
    close = difflib.get_close_matches(key, here, n=1)
    if close:
        return f" (did you mean {prefix + close[0]!r}?)"
    deeper = [p for p in key_paths(cls) if "." in p]
    leaves = {p.rsplit(".", 1)[1]: p for p in reversed(deeper)}  # the shallowest path of each name wins
    close = difflib.get_close_matches(key, list(leaves), n=1, cutoff=0.8)
    return f" (did you mean {prefix + leaves[close[0]]!r}?)" if close else ""


def build_config(cls: type[T], values: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from plain (nested) values, checked field by field; errors name `where`."""
    return _build(cls, values, where)


def nest(values: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys as nested mappings, at any depth: `{"a.b": 1, "c": {"d.e": 2}}` → `{"a": {"b": 1}, "c": {"d": {"e": 2}}}`."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        value = nest(value) if isinstance(value, dict) else value
        for part in reversed(str(key).split(".")[1:]):
            value = {part: value}
        out = merge(out, {str(key).split(".")[0]: value})
    return out


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """`base` with `update` laid over it, mappings merged key by key."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


MAX_YAML_VALUES = 200_000
"""A YAML document may expand to at most this many values once its aliases are followed."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], limit: int) -> int:
    """How many values `node` becomes once every alias is expanded (stops counting past `limit`)."""
    known = memo.get(id(node))
    if known is not None:
        return known
    memo[id(node)] = limit + 1  # a node reached again while being counted is a cycle: too big
    size = 1
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    for child in children:
        size += _expanded_size(child, memo, limit)
        if size > limit:
            break
    memo[id(node)] = size
    return size


def safe_load_yaml(text: str) -> Any:
    """`yaml.safe_load`, refusing a document whose aliases expand it past MAX_YAML_VALUES values.

    An "alias bomb" (billion laughs) loads instantly as shared references but explodes when it is
    merged, copied or printed; counting the composed node graph with aliases expanded catches it
    before any of that. Raises `yaml.YAMLError` (with no mark) for it.
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        if _expanded_size(node, {}, MAX_YAML_VALUES) > MAX_YAML_VALUES:
            raise yaml.YAMLError(
                f"its aliases (*name) expand it to more than {MAX_YAML_VALUES:,} values or refer to themselves; an alias bomb?"
            )
        return loader.construct_document(node)
    finally:
        loader.dispose()


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise AcqsynthError(f"config file {path} does not exist")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise AcqsynthError(f"config file {path}: cannot be read ({e.strerror or e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise AcqsynthError(f"config file {path} line {line}: not valid UTF-8 (byte {raw[e.start]:#04x})") from None
    try:
        data = safe_load_yaml(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise AcqsynthError(f"config file {path}{where}: not valid YAML ({problem})") from None
    except (ValueError, RecursionError) as e:  # an impossible date (2001-02-30), or nesting too deep
        raise AcqsynthError(f"config file {path}: not a usable YAML value ({type(e).__name__}: {e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AcqsynthError(f"config file {path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_override(item: str) -> dict[str, Any]:
    """`"a.b=3"` → `{"a": {"b": 3}}` (the value is read as YAML: numbers, booleans, lists, null)."""
    if "=" not in item:
        raise AcqsynthError(f"override {item!r} is not key=value (e.g. budget.samples=64)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise AcqsynthError(f"override {item!r}: the key must be a dotted path such as train.epochs")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except (yaml.YAMLError, ValueError, RecursionError):  # not YAML (or an impossible date): the text itself
        value = raw
    out: dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Defaults of `cls`, then the YAML file at `path`, then each `key=value` override."""
    values = to_dict(cls())
    if path is not None:
        values = merge(values, read_yaml(path))
        try:  # checked before the overrides, so that a bad key in the file is blamed on the file
            _build(cls, values, "")
        except AcqsynthError as e:
            raise AcqsynthError(f"{path}: {e}") from None
    for item in overrides:
        values = merge(values, parse_override(item))
    return _build(cls, values, "")


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config as YAML (what the run really used, defaults included)."""
    from acqsynth.samples import atomic_file  # imports `datasets`: the config module stays light

    path = Path(path)
    with atomic_file(path) as tmp:  # another process may read it (an experiment's workers do)
        tmp.write_text(yaml.safe_dump(to_dict(config), sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path
