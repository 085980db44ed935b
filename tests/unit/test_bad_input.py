"""Bad input everywhere: each kind gets one AcqsynthError naming the key path, file and line, or the
unknown name with the valid ones, and a failed write leaves the earlier file as it was.

What test_config.py and test_data_errors.py already cover (a misspelt override, a malformed JSONL
line, a missing required field, an unknown dataset) is not repeated here.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from acqsynth.cli.commands import main
from acqsynth.config import load_config
from acqsynth.data import load_data
from acqsynth.errors import AcqsynthError, check_range, unknown_name
from acqsynth.experiment.grid import ExperimentConfig
from acqsynth.generation.prompts import load_template
from acqsynth.models.aliases import hf_model_path
from acqsynth.models.loader import load_generator
from acqsynth.run.config import RunConfig
from acqsynth.samples import read_samples
from acqsynth.tasks import get_task

ROW = {"question": "What is 2 + 3?", "answer": "5"}


def raises(message: str) -> pytest.RaisesContext[AcqsynthError]:
    """`pytest.raises(AcqsynthError)` matching `message` literally."""
    return pytest.raises(AcqsynthError, match=re.escape(message))


def write(path: Path, data: str | bytes) -> str:
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------- config: keys, types, ranges


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("generator.label.methd=keep", "unknown config key 'generator.label.methd' (did you mean 'generator.label.method'?)"),
        ("epochs=2", "unknown config key 'epochs' (did you mean 'train.epochs'?); valid keys here: strategy, rounds"),
        ("sampels=2", "unknown config key 'sampels' (did you mean 'budget.samples'?)"),
        ("selection.aquisition=loss", "unknown config key 'selection.aquisition' (did you mean 'selection.acquisition'?)"),
        ("data.zzz=1", "unknown config key 'data.zzz'; valid keys here: name, task, seeds, pool, pool_seeded, pool_source, warmup, eval_n"),
    ],
)
def test_misspelt_config_key_gives_the_dotted_path_and_a_suggestion(override: str, message: str) -> None:
    with raises(message):
        load_config(RunConfig, None, [override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("train.learning_rate=fast", "train.learning_rate: expected float, got 'fast'"),
        ("eval.pass_k=[1, x]", "eval.pass_k[1]: expected int, got 'x'"),
        ("generator.label=3", "generator.label: expected a mapping of LabelConfig keys, got 3"),
        ("data.name=[a, b]", "data.name: expected str, got ['a', 'b']"),
        ("eval.loglik=maybe", "eval.loglik: expected bool, got 'maybe'"),
    ],
)
def test_wrong_type_names_the_path_and_the_expected_type(override: str, message: str) -> None:
    with raises(message):
        load_config(RunConfig, None, [override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("generator.top_p=1.5", "generator.top_p must be in (0, 1], got 1.5"),
        ("generator.temperature=-0.1", "generator.temperature must be >= 0, got -0.1"),
        ("train.learning_rate=0", "train.learning_rate must be > 0, got 0.0"),
        ("train.lora_dropout=1", "train.lora_dropout must be in [0, 1), got 1.0"),
        ("train.epochs=.nan", "train.epochs must be >= 0, got nan"),
        ("data.eval_n=0", "data.eval_n must be >= 1, got 0"),
        ("data.seeds=-5", "data.seeds must be >= 1, got -5"),
        ("budget.teacher_tokens=0", "budget.teacher_tokens must be >= 1, got 0"),
        ("student.batch_size=0", "student.batch_size must be >= 1, got 0"),
        ("eval.temperature=-1", "eval.temperature must be >= 0, got -1.0"),
        ("seed=-1", "seed must be in [0, 4294967295], got -1"),
        ("selection.quantiles=0", "selection.quantiles must be >= 1, got 0"),
        ("generator.label.min_agreement=1.5", "generator.label: min_agreement must be in [0, 1], got 1.5"),
        ("generator.label.cluster_threshold=3", "generator.label: cluster_threshold must be in [0, 2], got 3.0"),
        ("generator.hygiene.ngram_min_overlap=2", "generator.hygiene: ngram_min_overlap must be in [0, 1], got 2.0"),
    ],
)
def test_out_of_range_value_names_the_path_and_the_allowed_range(override: str, message: str) -> None:
    with raises(message):
        load_config(RunConfig, None, [override])


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("budgets: [8, x]\n", "budgets[1]: expected int, got 'x'"),
        ("tau: [1.5]\n", "tau[0] must be in [0, 1], got 1.5"),
        ("generated_per_sample: 0\n", "generated_per_sample must be in (0, 1000000], got 0.0"),
        ("generated_per_sample: .inf\n", "generated_per_sample must be in (0, 1000000], got inf"),
        ("seeds: [0, -1]\n", "seeds[1] must be in [0, 4294967295], got -1"),
        ("methods:\n  1: {strategy: static}\n", "methods: key 1 must be text (quote it: '1')"),
        ("method_budgets:\n  2: [8]\n", "method_budgets: key 2 must be text"),
        ("budgts: [8]\n", "unknown config key 'budgts' (did you mean 'budgets'?)"),
    ],
)
def test_experiment_config_errors_name_file_and_key(tmp_path: Path, yaml_text: str, message: str) -> None:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml_text)
    with raises(f"{path}: {message}"):
        load_config(ExperimentConfig, path)


def test_unreadable_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "u.yaml", b"strategy: static\nbudget:\n  samples: \xff\n")
    with raises(f"config file {path} line 3: not valid UTF-8 (byte 0xff)"):
        load_config(RunConfig, path)
    path = write(tmp_path / "date.yaml", "data:\n  name: 2001-02-30\n")  # YAML reads it as a date
    with raises(f"config file {path}: not a usable YAML value (ValueError: day is out of range for month)"):
        load_config(RunConfig, path)
    path = write(tmp_path / "bom.yaml", "\ufeffstrategy: static\n".encode())  # a BOM is fine
    assert load_config(RunConfig, path).strategy == "static"


def _alias_bomb(levels: int = 9) -> str:
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_yaml_alias_bombs_are_refused_before_they_expand(tmp_path: Path) -> None:
    """9 levels of 9 aliases would be 387 million strings; refused at once, while ordinary anchors work."""
    path = write(tmp_path / "bomb.yaml", _alias_bomb())
    with raises(f"config file {path}: not valid YAML (its aliases (*name) expand it to more than 200,000 values"):
        load_config(RunConfig, path)
    path = write(tmp_path / "loop.yaml", "strategy: &s [*s]\n")
    with raises("or refer to themselves"):
        load_config(RunConfig, path)
    task = write(tmp_path / "task.yaml", _alias_bomb())
    with raises(f"{task}: not valid YAML"):
        get_task(str(task))
    path = write(tmp_path / "anchors.yaml", "rounds: &r 2\ntrain: {<<: {epochs: *r}}\n")
    assert load_config(RunConfig, path).train.epochs == 2


def test_check_range_formats_the_allowed_range() -> None:
    with raises("x must be < 2, got 3"):
        check_range("x", 3, high=2, high_open=True)
    with raises("x must be in [0.5, 1e-06], got nan"):
        check_range("x", float("nan"), 0.5, 1e-6)
    check_range("x", None, 1)  # an unset optional value passes


# ---------------------------------------------------------------- unknown names


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: load_config(RunConfig, None, ["strategy=actve"]),
         "strategy 'actve' is unknown (did you mean 'active'?); choose one of active, static, rejection"),
        (lambda: load_config(RunConfig, None, ["selection.method=topk"]),
         "selection.method: unknown selection method 'topk'. Did you mean 'top-k'? Valid selection methods: diverse"),
        (lambda: load_config(RunConfig, None, ["selection.acquisition=0.5*los + 0.5*diversity"]),
         "selection.acquisition: unknown acquisition 'los'. Did you mean 'loss'? Valid acquisitions: answer-variance"),
        (lambda: get_task("maths"),
         "unknown task 'maths'. Did you mean 'math'? Valid tasks: code, exact, math, math-answer, mcqa (or give the path"),
        (lambda: hf_model_path("smollm2-135m"),
         "model 'smollm2-135m' is neither an alias, an existing directory or .gguf file, nor a hub id (owner/name). "
         "Did you mean 'smollm2-135m-instruct'?"),
        (lambda: load_template("mathh"),
         "generator template 'mathh': no such file (did you mean 'math'?) (built-in templates:"),
        (lambda: load_generator("llamacpp:smollm2"),
         "'smollm2' has no GGUF form for llama.cpp (did you mean 'smollm2-135m-instruct'?); give a causal-LM alias "
         "(qwen2.5-coder-0.5b-instruct, smollm2-135m-instruct) or a .gguf file"),
    ],
)
def test_unknown_names_list_the_valid_ones_with_a_suggestion(call: Callable[[], object], message: str) -> None:
    with raises(message):
        call()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.name=gsm8", "data.name: unknown dataset 'gsm8'. Did you mean 'gsm8k'? Valid datasets: arc-challenge"),
        ("data.task=maths", "data.task: unknown task 'maths'. Did you mean 'math'? Valid tasks: code, exact, math, math-answer, mcqa"),
        ("data.eval_split=test", "data.eval_split: unknown split 'test'. Valid splits: all, eval, pool, seed"),
        ("student.model=smolm2-135m-instruct", "student.model: model 'smolm2-135m-instruct' is neither an alias, a path, "
         "a .gguf file nor a hub id (owner/name). Did you mean 'smollm2-135m-instruct'? Aliases: minilm-l6"),
        ("generator.embedder=minilm", "generator.embedder: model 'minilm' is neither an alias"),
        ("generator.model=llamacpp:qwen2.5-coder", "Did you mean 'qwen2.5-coder-0.5b-instruct'?"),
        ("selection.acquisition=loss(answer=[)", "acquisition 'loss(answer=[)': parameter 'answer=[' has an unreadable value"),
        ("selection.acquisition=nan*loss + confidence", "term 'nan*loss' of 'nan*loss + confidence': the weight must be a "
         "finite number, got nan"),
    ],
)
def test_names_in_a_config_are_checked_when_it_is_loaded(override: str, message: str) -> None:
    """A misspelt dataset, task, split, model alias or acquisition stops the run before it starts,
    not when the name is first used (maybe an hour in)."""
    with raises(message):
        load_config(RunConfig, None, [override])
    assert load_config(RunConfig, None, ["student.model=runs/not/yet/written"])  # a path may not exist yet


def test_unknown_name_plurals() -> None:
    assert "Valid model aliases: a" in str(unknown_name("model alias", "b", ["a"]))
    assert "Valid strategies: a" in str(unknown_name("strategy", "b", ["a"]))


# ---------------------------------------------------------------- data files


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"question": "q", "answer": "a"}\n{"question": "\xff", "answer": "b"}\n', ":2: not valid UTF-8 (byte 0xff"),
        (b'{"question": "q", "answer": "a"}\n\n[1, 2]\n', ":3: expected a JSON object, got list"),
        (b'{"question": "q\\ud800", "answer": "a"}\n', ":1: holds a \\u escape of a lone UTF-16 surrogate"),
        (b'{"question": "q", "answer": ' + b"9" * 5000 + b"}\n", ":1: unusable JSON (ValueError: Exceeds the limit"),
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", ":1: unusable JSON (RecursionError"),
        (b'{"question": "q", "answer": "a", "x": 1}\n{"question": "r", "answer": "b", "x": "s"}\n',
         ": extra column 'x' cannot be stored: its values (int, str) do not share one type"),
        (b'{"question": "q", "answer": "a", "x": ' + b"9" * 30 + b"}\n", ": extra column 'x' cannot be stored"),
        (b"\n  \n", ": the dataset holds no samples"),
    ],
)
def test_bad_jsonl_names_the_file_and_line(tmp_path: Path, content: bytes, message: str) -> None:
    path = write(tmp_path / "bad.jsonl", content)
    with raises(f"{path}{message}"):
        load_data(path)


def test_bad_jsonl_through_read_samples(tmp_path: Path) -> None:
    """The reader of `acqsynth score` / `grade` inputs gives the same errors."""
    path = write(tmp_path / "s.jsonl", b'{"id": "1", "question": "q", "answer": "a"}\n\xfe\n')
    with raises(f"{path}:2: not valid UTF-8 (byte 0xfe"):
        read_samples(path)
    rows = [{"id": "1", "question": "q", "answer": "a", "n": 1}, {"id": "2", "question": "r", "answer": "b", "n": [1]}]
    path = write(tmp_path / "m.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    with raises(f"{path}: extra column 'n' cannot be stored"):
        read_samples(path)
    path = write(tmp_path / "bom.jsonl", "\ufeff" + json.dumps({"id": "1", **ROW}) + "\n")
    assert read_samples(path)["question"] == [ROW["question"]]  # a BOM is not an error


def test_bad_json_array_file(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", b'[\n{"question": "q", "answer": "a"},\n{"question": "\xc3("}\n]')
    with raises(f"{path}:3: not valid UTF-8 (byte 0xc3)"):
        load_data(path)
    path = write(tmp_path / "b.json", '[\n{"question": "q", "answer": "a"},\n{"question": }\n]')
    with raises(f"{path}:3: malformed JSON (Expecting value at column 14)"):
        load_data(path)


def test_corrupt_and_truncated_parquet_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.parquet"
    pq.write_table(pa.table({"question": ["q1", "q2"], "answer": ["1", "2"]}), good)
    raw = good.read_bytes()
    for name, data in [("trunc.parquet", raw[: len(raw) // 2]), ("junk.parquet", b"PAR1" + b"\x00" * 64 + b"PAR1"),
                       ("empty.parquet", b"")]:
        path = write(tmp_path / name, data)
        with raises(f"{path}: cannot read Parquet ("):
            load_data(path)
        with raises(f"{path}: cannot read Parquet ("):
            read_samples(path)


def test_empty_datasets_are_named(tmp_path: Path) -> None:
    path = tmp_path / "zero.parquet"
    pq.write_table(pa.table({"question": pa.array([], pa.string()), "answer": pa.array([], pa.string())}), path)
    with raises(f"{path}: the dataset holds no samples"):
        load_data(str(path))
    with raises(f"{path}: the file holds no samples"):
        read_samples(path)
    from acqsynth.evaluation.accuracy import EvalConfig, evaluate

    with raises("cannot evaluate on an empty dataset (0 rows)"):
        evaluate(None, None, None, load_data(write(tmp_path / "one.jsonl", json.dumps(ROW) + "\n"), split="seed"),
                 EvalConfig())


# ---------------------------------------------------------------- through the CLI


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_cli_bad_config_exits_2_with_the_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = run_cli(capsys, "run", "budget.sampels=4")
    assert code == 2 and "acqsynth: error: unknown config key 'budget.sampels' (did you mean 'budget.samples'?)" in err
    code, err = run_cli(capsys, "run", "generator.top_p=2")
    assert code == 2 and "generator.top_p must be in (0, 1], got 2.0" in err
    exp = write(tmp_path / "exp.yaml", "methods:\n  static: {strategy: statc}\n")
    code, err = run_cli(capsys, "experiment", exp, "--output", str(tmp_path / "out"))
    assert code == 2 and "methods.static: strategy 'statc' is unknown (did you mean 'static'?)" in err


def test_cli_bad_data_exits_2_with_the_message(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = write(tmp_path / "d.jsonl", b'{"question": "q", "answer": "a"}\n{"question": "\xff"}\n')
    code, err = run_cli(capsys, "data", "show", path, "--split", "all")
    assert code == 2 and f"acqsynth: error: {path}:2: not valid UTF-8" in err
    code, err = run_cli(capsys, "data", "show", "gsm8kk")
    assert code == 2 and "unknown dataset 'gsm8kk'. Did you mean 'gsm8k'?" in err
    one = write(tmp_path / "one.jsonl", json.dumps(ROW) + "\n")
    code, err = run_cli(capsys, "eval", "--data", one, "--split", "seed", "--task", "math")
    assert code == 2 and f"dataset {one!r} has no rows to evaluate in its 'seed' split" in err


def test_cli_subprocess_exit_code_and_no_traceback(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.parquet", b"not parquet at all")
    proc = subprocess.run([sys.executable, "-m", "acqsynth.cli", "data", "show", path], capture_output=True,
                          text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert f"acqsynth: error: {path}: cannot read Parquet" in proc.stderr


# ---------------------------------------------------------------- a full disk


FULL_DISK = textwrap.dedent('''
    """Write larger results over small earlier ones under a file-size limit (EFBIG, as a full disk would)."""
    import json, os, resource, signal, sys
    from pathlib import Path
    from acqsynth.config import save_config
    from acqsynth.errors import AcqsynthError
    from acqsynth.generation.cache import CompletionCache
    from acqsynth.models.interfaces import Completion
    from acqsynth.run.config import RunConfig
    from acqsynth.samples import Sample, atomic_write_text, to_dataset, write_samples

    d = Path(sys.argv[1])
    big = to_dataset([Sample(id=str(i), question="q" * 300, answer="a") for i in range(300)])
    cache = CompletionCache(d / "cache.jsonl")
    cache.put("k1", [Completion(text="small", finish_reason="stop", prompt_tokens=1, completion_tokens=1)])
    earlier_cache = (d / "cache.jsonl").read_bytes()
    writes = {
        "s.jsonl": lambda p: write_samples(big, p),
        "s.parquet": lambda p: write_samples(big, p),
        "c.yaml": lambda p: save_config(RunConfig(output="x" * 20000), p),
        "r.md": lambda p: atomic_write_text(p, "y" * 20000),
        "new.jsonl": lambda p: write_samples(big, p),
    }
    for name in writes:
        if name != "new.jsonl":
            (d / name).write_text("EARLIER " + name)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    limit = max(4096, len(earlier_cache) + 64)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    out = {}
    for name, write in writes.items():
        try:
            write(d / name)
            out[name] = "no error"
        except AcqsynthError as e:
            out[name] = str(e)
    try:
        cache.put("k2", [Completion(text="z" * 20000, finish_reason="stop", prompt_tokens=1, completion_tokens=1)])
        out["cache"] = "no error"
    except AcqsynthError as e:
        out["cache"] = str(e)
    out["cache_intact"] = (d / "cache.jsonl").read_bytes() == earlier_cache
    out["files"] = sorted(p.name for p in d.iterdir())
    print(json.dumps(out))
''')


def test_full_disk_keeps_earlier_results_and_says_so(tmp_path: Path) -> None:
    """The real writers under a real failing write(2): each raises a clear error and the file it would
    have replaced is byte-for-byte the earlier one, with no temporary file left behind."""
    script = write(tmp_path / "full.py", FULL_DISK)
    data = tmp_path / "d"
    data.mkdir()
    proc = subprocess.run([sys.executable, script, str(data)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in ("s.jsonl", "s.parquet", "c.yaml", "r.md"):
        assert out[name] == (f"{data / name}: cannot write: the file is too large for this file system (or the "
                             "file-size limit); the earlier file is intact (free some space or choose another output)")
        assert (data / name).read_text() == f"EARLIER {name}"
    assert out["new.jsonl"].endswith("nothing was written (free some space or choose another output)")
    assert "cache.jsonl: " in out["cache"] and out["cache_intact"], out["cache"]
    assert out["files"] == ["c.yaml", "cache.jsonl", "r.md", "s.jsonl", "s.parquet"]  # no temp files left


def test_write_to_an_impossible_place_is_a_clear_error(tmp_path: Path) -> None:
    """An output path blocked by a directory, or under a file, is the user's to fix, not a traceback."""
    from acqsynth.samples import atomic_write_text

    (tmp_path / "taken.md").mkdir()
    with raises(f"{tmp_path / 'taken.md'}: cannot write: a directory of that name is in the way; nothing was written"):
        atomic_write_text(tmp_path / "taken.md", "report")
    (tmp_path / "file").write_text("keep")
    with raises(f"{tmp_path / 'file' / 'r.md'}: cannot write: a part of the path is a file, not a directory"):
        atomic_write_text(tmp_path / "file" / "r.md", "report")
    assert (tmp_path / "file").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "taken.md"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("answer-variance(k=0)", "parameter k=0 must be >= 1"),
        ("proximity(k=-3)", "parameter k=-3 must be >= 1"),
        ("reward-model(batch_size=0)", "parameter batch_size=0 must be >= 1"),
        ("semantic-entropy(threshold=.nan)", "threshold=nan must be a finite number >= 0"),
        ("confidence(epsilon=-1.0)", "epsilon=-1.0 must be a finite number >= 0"),
    ],
)
def test_acquisition_parameters_out_of_range_fail_when_parsed(spec: str, message: str) -> None:
    from acqsynth.acquisition import parse_acquisition

    with pytest.raises(AcqsynthError, match=re.escape(message)):
        parse_acquisition(spec)
    parse_acquisition(spec.split("(")[0])  # the defaults are in range
