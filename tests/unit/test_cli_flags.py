"""Every command's flags come from dataclass fields: same defaults, help from the docstrings, and the
configs a command builds from its parsed arguments are the ones the flags describe."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import subprocess
import sys
import typing
from typing import Any

import pytest

from acqsynth.cli.commands import FLAGS, build_parser, eval_job, generate_job, grade_job, score_job
from acqsynth.cli.flags import FIELD_DEFAULT, REQUIRED, SCALARS, Flag, field_specs, module_constant
from acqsynth.errors import AcqsynthError

ALL_FLAGS = [(command, flag) for command, flags in FLAGS.items() for flag in flags]


def real_class(source: str) -> Any:
    module, _, name = source.partition(":")
    return getattr(importlib.import_module(module), name)


def real_default(field: dataclasses.Field[Any]) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    return field.default_factory() if field.default_factory is not dataclasses.MISSING else REQUIRED


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_flag_defaults_and_types_are_the_dataclass_fields() -> None:
    for command, flag in ALL_FLAGS:
        cls = real_class(flag.source)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        assert flag.field in fields, f"{command}: {flag.dest} names no field"
        assert flag.spec.default == real_default(fields[flag.field]), f"{command}: {flag.dest} default read wrong"
        hint = typing.get_type_hints(cls)[flag.field]
        base = {typing.get_origin(a) or a for a in typing.get_args(hint) if a is not type(None)} or {hint}
        assert base <= {SCALARS[flag.spec.type], list, dict} and (flag.spec.optional == (type(None) in typing.get_args(hint)))
        if flag.default is not FIELD_DEFAULT:
            assert flag.note, f"{command}: {flag.dest} overrides the field's default without saying why"


def test_parser_defaults_are_the_flags_defaults() -> None:
    commands = subparsers(build_parser())
    for command, flag in ALL_FLAGS:
        action = next(a for a in commands[command]._actions if a.dest == flag.dest)
        if flag.value_default is REQUIRED:
            assert action.required
        else:
            assert action.default == flag.value_default and not action.required
        if flag.choices:
            assert action.choices == module_constant(flag.choices)
            assert flag.value_default in action.choices


def test_the_documented_overrides() -> None:
    overridden = {(c, f.dest): f.default for c, f in ALL_FLAGS if f.default is not FIELD_DEFAULT}
    assert overridden == {("data", "acqsynth.data.request:DataRequest.n"): 3}


def test_every_option_has_help() -> None:
    for command, sub in subparsers(build_parser()).items():
        for action in sub._actions:
            if action.help == argparse.SUPPRESS:  # experiment --no-collect: the worker processes' own flag
                assert action.option_strings == ["--no-collect"]
                continue
            assert action.help and action.help.strip(), f"{command} {action.option_strings or action.dest} has no help"


def test_every_field_flag_has_its_docstring() -> None:
    for command, flag in ALL_FLAGS:
        assert flag.spec.doc, f"{command}: {flag.source}.{flag.field} has no docstring"
        assert flag.spec.doc[1:20].replace("%", "%%") in flag.help(), f"{command}: {flag.dest} help is not its docstring"


@pytest.mark.parametrize("command", sorted(subparsers(build_parser())))
def test_help_works_for_every_command(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args([command, "--help"])
    assert e.value.code == 0
    assert f"usage: acqsynth {command}" in capsys.readouterr().out


def test_help_without_a_command() -> None:
    proc = subprocess.run([sys.executable, "-m", "acqsynth.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "generate" in proc.stdout


def test_start_up_imports_no_heavy_library() -> None:
    code = ("import sys, acqsynth.cli; acqsynth.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'numpy') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "[]", proc.stderr


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_defaults_round_trip_to_the_dataclass_defaults() -> None:
    from acqsynth.acquisition.score_file import ScoreJob
    from acqsynth.data.request import DataRequest
    from acqsynth.evaluation.grade_file import GradeJob
    from acqsynth.evaluation.run_eval import EvalJob
    from acqsynth.generation.run_generate import GenerateJob

    assert eval_job(parse("eval", "--data", "gsm8k")) == EvalJob(data=DataRequest("gsm8k"))
    assert generate_job(parse("generate", "--output", "o")) == GenerateJob(output="o")
    assert score_job(parse("score", "-a", "loss", "--input", "i", "--output", "o")) == ScoreJob("loss", "i", "o")
    assert grade_job(parse("grade", "--task", "math", "--input", "i", "--output", "o")) == GradeJob("math", "i", "o")


def test_given_flags_round_trip_to_the_configs() -> None:
    from acqsynth.data.request import DataRequest
    from acqsynth.evaluation.accuracy import EvalConfig
    from acqsynth.generation.labelling import LabelConfig
    from acqsynth.generation.pipeline import GenerateConfig

    job = eval_job(parse("eval", "--data", "x.jsonl", "--split", "all", "-n", "5", "--task", "math", "--map",
                         "question=q", "answer= a ", "--output", "o.jsonl", "--batch-size", "4",
                         "--max-new-tokens", "9", "--seed", "3", "--mcq-metric", "acc", "--student", "s"))
    assert job.data == DataRequest("x.jsonl", "all", 5, "math", {"question": "q", "answer": "a"})
    assert job.eval == EvalConfig(batch_size=4, max_new_tokens=9, seed=3, mcq_metric="acc")
    assert (job.student, job.output) == ("s", "o.jsonl")

    job = generate_job(parse(
        "generate", "--output", "o", "--data", "gsm8k", "--seeds", "20", "--num-samples", "30", "--label", "compute",
        "--k", "4", "--min-agreement", "0.75", "--answer-max-new-tokens", "64", "--answer-temperature", "0.5",
        "--max-generated", "99", "--max-tokens", "1000", "--batch-size", "2", "--max-new-tokens", "100",
        "--temperature", "0.3", "--top-p", "0.9", "--n-choices", "4", "--decontaminate", "gsm8k@eval", "math500",
        "--no-embedding-hygiene", "--cache", "c", "--threads", "2", "--seed", "7", "--template", "t.txt"))
    assert job.config == GenerateConfig(
        num_samples=30, max_generated=99, max_tokens=1000, batch_size=2, max_new_tokens=100, temperature=0.3,
        top_p=0.9, seed=7, n_choices=4,
        label=LabelConfig(method="compute", k=4, min_agreement=0.75, max_new_tokens=64, temperature=0.5))
    assert (job.data, job.seeds, job.decontaminate, job.embedding_hygiene, job.cache, job.threads, job.template) == (
        "gsm8k", 20, ["gsm8k@eval", "math500"], False, "c", 2, "t.txt")

    job = score_job(parse("score", "-a", "loss", "--input", "i", "--output", "o", "--student", "", "--normalize",
                          "rank", "--batch-size", "2", "--max-new-tokens", "8", "--temperature", "1.5"))
    assert (job.student, job.normalize, job.batch_size, job.max_new_tokens, job.temperature) == ("", "rank", 2, 8, 1.5)


def test_data_show_prints_three_rows_unless_told() -> None:
    from acqsynth.cli.flags import values

    assert values(parse("data", "show", "gsm8k"), FLAGS["data"], "acqsynth.data.request:DataRequest")["n"] == 3


def test_bad_mapping_item_is_named() -> None:
    from acqsynth.cli.flags import values

    with pytest.raises(AcqsynthError, match="--map expects FIELD=COLUMN, got 'question'"):
        values(parse("eval", "--data", "d", "--map", "question"), FLAGS["eval"], "acqsynth.data.request:DataRequest")


def test_a_flag_refuses_a_field_it_cannot_carry() -> None:
    parser = argparse.ArgumentParser()
    with pytest.raises(TypeError, match="cannot carry"):  # a nested config, not a command-line value
        Flag("acqsynth.evaluation.run_eval:EvalJob", "eval").add_to(parser)
    with pytest.raises(TypeError, match="cannot carry"):  # a default_factory list
        Flag("acqsynth.evaluation.accuracy:EvalConfig", "pass_k").add_to(parser)
    with pytest.raises(KeyError, match="no field"):
        Flag("acqsynth.evaluation.accuracy:EvalConfig", "nope").add_to(parser)


def test_field_specs_read_the_source() -> None:
    specs = field_specs("acqsynth.generation.pipeline:GenerateConfig")
    assert specs["max_generated"].type == "int" and specs["max_generated"].optional
    assert specs["label"].type == "LabelConfig"
    assert specs["top_p"].default == 0.95 and specs["top_p"].doc == "Generator nucleus sampling."
    assert field_specs("acqsynth.generation.run_generate:GenerateJob")["decontaminate"].shape == "list"
    assert field_specs("acqsynth.data.request:DataRequest")["mapping"].shape == "dict"
