"""Fuzzing config and data loading: whatever the input, the result is a config or dataset, or an
AcqsynthError (what the CLI prints as `acqsynth: error: ...`); any other exception is a bug.

Inputs are drawn both blind (random text and bytes) and aimed (the real key paths with values of
random types, rows with the real Sample fields holding random JSON), since blind input rarely gets
past the first parse.
"""

from __future__ import annotations

import csv
import io
import json
import math
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acqsynth.config import build_config, key_paths, load_config, parse_override, to_dict
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError
from acqsynth.experiment.grid import ExperimentConfig, cells
from acqsynth.run.config import RunConfig
from acqsynth.samples import read_samples
from acqsynth.strategies.grpo import GRPOSettings

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)
"""Modest and reproducible: the same examples every run, the whole file in well under a minute."""

RUN_KEYS = key_paths(RunConfig)
SAMPLE_FIELDS = ["id", "question", "answer", "reasoning", "choices", "tests", "entry_point", "source", "metadata"]


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    """One scratch directory for every example (hypothesis runs many examples per test function)."""
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def only_acqsynth_errors(call: Callable[[], Any]) -> Any:
    """Run `call`; an AcqsynthError is an accepted outcome, anything else fails the test."""
    try:
        return call()
    except AcqsynthError as e:
        assert str(e), "an error must say what is wrong"
        return None


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["", "active", "top-k", "loss", "lora", "1e-3", "null", "~", "2001-02-30"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4)),
    max_leaves=12,
)


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted key → default value, down to the scalar, list and free-form mapping fields."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


RUN_DEFAULTS = _leaves(to_dict(RunConfig()))
GRPO_DEFAULTS = _leaves(to_dict(GRPOSettings()))
EXP_DEFAULTS = {**_leaves(to_dict(ExperimentConfig())), "methods": {}, "overrides": {}, "method_budgets": {}}

NAMES = {
    "strategy": ["active", "static", "rejection", "random", "mistakes", "filtered", "actve"],
    "selection.method": ["top-k", "diverse", "quantile", "stratified", "topk"],
    "selection.acquisition": ["loss", "confidence", "0.5*loss + 0.5*diversity", "answer-variance(k=4)", "loss(",
                              "loss(answer=own", "los", "-1*loss", "loss(k=x)", "2*", "my.py:fn"],
    "train.method": ["lora", "full", "qlora"],
    "generator.label.method": ["keep", "self-consistency", "execution", "compute", "vote"],
    "generator.label.grouping": ["auto", "exact", "embedding", "x"],
    "generator.template": [None, "math", "mathh", ""],
    "data.name": ["arithmetic", "gsm8k", "mmlu:anatomy", "gsm8", "x.jsonl", "owner/name", ""],
    "data.task": [None, "math", "mcqa", "maths", "t.yaml"],
    "data.eval_split": ["eval", "pool", "test"],
    "student.model": ["smollm2-135m-instruct", "smolm2", "owner/name", "./dir", ""],
    "reward": ["confidence", "loss", "0.5*loss + 0.5*diversity", "los"],
    "vllm_mode": ["colocate", "server", "serve"],
    "generator.model": ["smollm2-135m-instruct", "llamacpp:smol", "openai:http://h:1/v1@m", "f.py:make", "a.gguf"],
}


def typed_value(key: str, default: Any) -> st.SearchStrategy[Any]:
    """Mostly a value of the default's type (in and out of range, or a known name), sometimes anything."""
    if key in NAMES:
        base: st.SearchStrategy[Any] = st.sampled_from(NAMES[key])
    elif isinstance(default, bool):
        base = st.booleans()
    elif isinstance(default, int):
        base = st.one_of(st.integers(-2, 70), st.integers(-(2**70), 2**70))
    elif isinstance(default, float):
        base = st.one_of(st.floats(-0.5, 1.5), st.floats())
    elif isinstance(default, str):
        base = st.one_of(st.just(default), st.text(max_size=8))
    elif isinstance(default, list):
        base = st.lists(st.one_of(st.integers(-1, 40), st.floats(-1, 2), st.text(max_size=4)), max_size=4)
    else:  # None (an optional field) or a free-form mapping
        base = st.one_of(st.none(), st.integers(-2, 70), st.floats(-0.5, 2), st.text(max_size=8))
    return st.one_of(base, base, base, values)


def aimed_config(defaults: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Nested config dicts over the real key paths with values near their types; now and then a
    misspelt or random key."""
    keys = sorted(defaults)
    typed = st.lists(st.sampled_from(keys), max_size=4, unique=True).flatmap(
        lambda ks: st.fixed_dictionaries({k: typed_value(k, defaults[k]) for k in ks}))
    stray = st.dictionaries(st.one_of(st.sampled_from(keys).map(lambda k: k[:-1] or "x"), st.text(max_size=6)),
                            values, max_size=1)
    return st.tuples(typed, st.one_of(st.just({}), st.just({}), st.just({}), stray)).map(
        lambda t: _nest({**t[0], **t[1]}))


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        parts = str(key).split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


def _dump(data: Any) -> str:
    """YAML for `data`, or random-looking text if PyYAML cannot represent it (it always can here)."""
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except (yaml.YAMLError, ValueError):
        return str(data)


# ---------------------------------------------------------------- config


@FUZZ
@given(data=aimed_config(RUN_DEFAULTS))
def test_fuzz_run_config_dicts(data: dict[str, Any]) -> None:
    only_acqsynth_errors(lambda: build_config(RunConfig, data))


@FUZZ
@given(data=aimed_config(GRPO_DEFAULTS))
def test_fuzz_grpo_settings(data: dict[str, Any]) -> None:
    only_acqsynth_errors(lambda: build_config(GRPOSettings, data))


@FUZZ
@given(text=st.one_of(st.text(max_size=200), aimed_config(RUN_DEFAULTS).map(_dump), st.binary(max_size=200)))
def test_fuzz_run_config_yaml_files(workdir: Path, text: str | bytes) -> None:
    path = workdir / "run.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    only_acqsynth_errors(lambda: load_config(RunConfig, path))


@FUZZ
@given(items=st.lists(st.one_of(
    st.text(max_size=30),
    st.sampled_from(sorted(RUN_DEFAULTS)).flatmap(
        lambda k: typed_value(k, RUN_DEFAULTS[k]).map(lambda v, k=k: f"{k}={_flow(v)}")),
    st.tuples(st.sampled_from(RUN_KEYS), st.text(max_size=20)).map(lambda kv: f"{kv[0]}={kv[1]}"),
), max_size=4))
def test_fuzz_overrides(items: list[str]) -> None:
    for item in items:
        only_acqsynth_errors(lambda item=item: parse_override(item))
    only_acqsynth_errors(lambda: load_config(RunConfig, None, items))


def _flow(value: Any) -> str:
    """`value` as one line of YAML, as a user would type it after `key=`."""
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).removesuffix("\n...\n").strip()


@FUZZ
@given(data=st.one_of(aimed_config(EXP_DEFAULTS), st.fixed_dictionaries({
    "methods": st.dictionaries(st.text(min_size=1, max_size=6), st.one_of(st.none(), aimed_config(RUN_DEFAULTS)), max_size=3),
    "budgets": st.lists(st.integers(-2, 64), max_size=3),
    "overrides": aimed_config(RUN_DEFAULTS),
    "generated_per_sample": st.one_of(st.none(), st.floats()),
}).map(lambda d: {**d, "baseline": next(iter(d["methods"]), "static")})))
def test_fuzz_experiment_configs(workdir: Path, data: dict[str, Any]) -> None:
    """An experiment YAML, loaded and expanded into the run configs of its cells."""
    path = workdir / "exp.yaml"
    path.write_text(_dump(data), encoding="utf-8")

    def load_and_expand() -> None:
        exp = load_config(ExperimentConfig, path)
        cells(exp, workdir / "exp")

    only_acqsynth_errors(load_and_expand)


ACQ_TOKENS = ["loss", "confidence", "answer-variance", "diversity", "my.py:fn", "(", ")", "k=", "answer=", "own", "=",
              "*", "+", " - ", "-", "0.5", "1e999", "nan", "[", "]", ",", "2001-02-30", "!!python/name:x", "&a", " "]


@FUZZ
@given(spec=st.one_of(st.lists(st.sampled_from(ACQ_TOKENS), max_size=8).map("".join), st.text(max_size=20)))
def test_fuzz_acquisition_specs(spec: str) -> None:
    """`selection.acquisition` is parsed when the config is built, so a bad expression fails there."""
    only_acqsynth_errors(lambda: build_config(RunConfig, {"selection": {"acquisition": spec}}))


# ---------------------------------------------------------------- data

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=8,
)
text = st.one_of(st.text(min_size=1, max_size=10), st.sampled_from(["A", "b", "0", "What is 2+2?"]))
text_or_any = st.one_of(text, text, text, text, st.sampled_from(["", " "]), json_values)
choice_lists = st.lists(st.one_of(st.text(max_size=4), st.text(max_size=4), json_values), max_size=5)
OPTIONAL_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "id": st.one_of(st.uuids().map(str), st.uuids().map(str), st.sampled_from(["1", ""]), json_values),
    "choices": st.one_of(st.lists(text, min_size=2, max_size=5), st.lists(text, min_size=2, max_size=5), choice_lists,
                         text_or_any),
    "tests": st.one_of(st.lists(text, max_size=2), text_or_any),
    "metadata": st.one_of(st.dictionaries(st.text(max_size=4), json_values, max_size=2), text_or_any),
    **{name: text_or_any for name in ("reasoning", "entry_point", "source", "opa", "opb")},
    "x": json_values,
}


@st.composite
def rows(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Rows sharing one set of columns (as a real file's do), now and then with a stray row."""
    keys = draw(st.lists(st.sampled_from(sorted(OPTIONAL_FIELDS)), max_size=4, unique=True))
    row = st.fixed_dictionaries({"question": text_or_any, "answer": st.one_of(text_or_any, st.integers(-1, 5)),
                                 **{k: OPTIONAL_FIELDS[k] for k in keys}})
    stray = st.dictionaries(st.one_of(st.sampled_from(SAMPLE_FIELDS), st.text(max_size=5)), json_values, max_size=3)
    return draw(st.lists(st.one_of(row, row, row, row, row, row, stray), min_size=1, max_size=4))


tasks = st.sampled_from([None, "math", "mcqa", "code"])
mappings = st.one_of(st.none(), st.dictionaries(st.sampled_from(SAMPLE_FIELDS + ["nope"]),
                                                st.sampled_from(["question", "answer", "x", "opa,opb", "", "missing"]),
                                                max_size=3))


def _lines(rows_: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows_).encode()


@FUZZ
@given(content=st.one_of(
    st.binary(max_size=300),
    rows().map(_lines),
    st.tuples(rows().map(_lines), st.binary(max_size=20), rows().map(_lines)).map(lambda t: t[0] + t[1] + t[2]),
), suffix=st.sampled_from([".jsonl", ".json"]), task=tasks, mapping=mappings)
def test_fuzz_jsonl_files(workdir: Path, content: bytes, suffix: str, task: str | None,
                          mapping: dict[str, str] | None) -> None:
    path = workdir / f"data{suffix}"
    path.write_bytes(content)
    only_acqsynth_errors(lambda: load_data(str(path), task=task, mapping=mapping))
    only_acqsynth_errors(lambda: load_data(str(path), split="seed"))
    only_acqsynth_errors(lambda: read_samples(path))


def _csv(rows_: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    columns = list(dict.fromkeys(k for r in rows_ for k in r)) or ["question"]
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()} for r in rows_)
    return out.getvalue().encode()


@FUZZ
@given(content=st.one_of(
    st.binary(max_size=300),
    rows().map(_csv),
    st.tuples(rows().map(_csv), st.binary(max_size=20)).map(lambda t: t[0] + t[1]),
), suffix=st.sampled_from([".csv", ".tsv"]), task=tasks, mapping=mappings)
def test_fuzz_csv_files(workdir: Path, content: bytes, suffix: str, task: str | None,
                        mapping: dict[str, str] | None) -> None:
    path = workdir / f"data{suffix}"
    path.write_bytes(content)
    only_acqsynth_errors(lambda: load_data(str(path), task=task, mapping=mapping))


@FUZZ
@given(array=rows().map(lambda r: json.dumps(r).encode()), task=tasks)
def test_fuzz_json_array_files(workdir: Path, array: bytes, task: str | None) -> None:
    path = workdir / "array.json"
    path.write_bytes(array)
    only_acqsynth_errors(lambda: load_data(str(path), task=task))


column_types = st.sampled_from([pa.string(), pa.int64(), pa.float64(), pa.bool_(), pa.binary(), pa.list_(pa.string()),
                                pa.list_(pa.int64()), pa.struct([("text", pa.list_(pa.string()))]), pa.null()])


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    """A Parquet-able table: Sample-ish column names with random types and values."""
    n = draw(st.integers(0, 4))
    names = draw(st.lists(st.sampled_from(SAMPLE_FIELDS + ["x", "opa", "opb"]), max_size=4, unique=True))
    if draw(st.integers(0, 3)):
        names = ["question", "answer", *(n for n in names if n not in ("question", "answer"))]
    columns = {}
    for name in names:
        typ = draw(st.one_of(st.just(pa.string()), column_types))
        vals = [_value(draw, typ) for _ in range(n)]
        columns[name] = pa.array(vals, type=typ)
    return pa.table(columns) if columns else pa.table({"x": pa.array([None] * n, pa.null())})


def _value(draw: st.DrawFn, typ: pa.DataType) -> Any:
    if draw(st.integers(0, 5)) == 0 or typ == pa.null():
        return None
    if typ == pa.string():
        return draw(st.text(max_size=8))
    if typ == pa.int64():
        return draw(st.integers(-(2**63), 2**63 - 1))
    if typ == pa.float64():
        return draw(st.floats())
    if typ == pa.bool_():
        return draw(st.booleans())
    if typ == pa.binary():
        return draw(st.binary(max_size=8))
    if typ == pa.list_(pa.string()):
        return draw(st.lists(st.one_of(st.none(), st.text(max_size=4)), max_size=4))
    if typ == pa.list_(pa.int64()):
        return draw(st.lists(st.integers(-5, 5), max_size=4))
    return {"text": draw(st.lists(st.text(max_size=4), max_size=3))}


@FUZZ
@given(table=tables(), cut=st.one_of(st.none(), st.floats(0, 1)), task=tasks, mapping=mappings)
def test_fuzz_parquet_files(workdir: Path, table: pa.Table, cut: float | None, task: str | None,
                            mapping: dict[str, str] | None) -> None:
    """Random tables, whole or truncated at a random point (a crash mid-write, a partial copy)."""
    path = workdir / "data.parquet"
    pq.write_table(table, path)
    if cut is not None:
        raw = path.read_bytes()
        path.write_bytes(raw[: math.floor(len(raw) * cut)])
    only_acqsynth_errors(lambda: load_data(str(path), task=task, mapping=mapping))
    only_acqsynth_errors(lambda: read_samples(path))
