"""The run report: a short markdown summary and a plot of accuracy against training samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from acqsynth.evaluation.stats import item_mde, paired_bootstrap
from acqsynth.run.summary import RoundRecord, RunSummary
from acqsynth.samples import atomic_write_text, read_samples


def plot_accuracy(rounds: list[RoundRecord], path: Path, title: str, xlabel: str = "training samples") -> Path:
    """Accuracy (with its 95% interval) against the number of training samples, one point per round."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [r.total_samples for r in rounds]
    acc = [r.accuracy["accuracy"] for r in rounds]
    ys = [a["mean"] for a in acc]
    err = [[a["mean"] - a["lo"] for a in acc], [a["hi"] - a["mean"] for a in acc]]
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _acc(a: dict[str, Any]) -> str:
    return f"{a['mean']:.4f} [{a['lo']:.4f}, {a['hi']:.4f}]"


def paired_gain(run_dir: Path, last_round: int) -> str | None:
    """The accuracy gain from round 0's student (untrained, or warmed with `data.warmup`) to round
    `last_round` on the same items: the paired item bootstrap interval, the paired t's p, and the
    minimum detectable effect at 80% power from the observed item differences; None when either
    round's eval.jsonl is missing."""
    paths = [run_dir / f"round-{r:02d}" / "eval.jsonl" for r in (0, last_round)]
    if last_round == 0 or not all(p.is_file() for p in paths):
        return None
    before, after = (np.array(read_samples(p)["correct"], dtype=float) for p in paths)
    if before.shape != after.shape:
        return None
    est = paired_bootstrap(after, before)
    mde, test = item_mde(after, before, exact=True)
    verdict = "above zero" if est.lo > 0 else "below zero" if est.hi < 0 else "includes zero"
    return (f"- gain after − before, paired on the same {before.size} items: {est.mean:+.4f} "
            f"[{est.lo:+.4f}, {est.hi:+.4f}] (interval {verdict}; paired t p {test.p:.4f}); the smallest gain "
            f"these items detect at 80% power is {mde:.4f}")


def write_report(run_dir: Path, summary: RunSummary | dict[str, Any], out_dir: Path | None = None) -> Path:
    """Write `report.md` and `accuracy.png` of the run in `run_dir` into `out_dir` (default `run_dir`);
    `summary` is the run's, or metrics.json as read from disk."""
    s = RunSummary.from_dict(summary) if isinstance(summary, dict) else summary
    source, run_dir = run_dir, out_dir or run_dir
    rounds = s.rounds
    title = f"{s.strategy}: {s.student} on {s.data}"
    warm = s.warmup["samples"] if s.warmup else 0
    xlabel = f"training samples (after {warm} warm-up samples)" if warm else "training samples"
    plot_accuracy(rounds, run_dir / "accuracy.png", title, xlabel)
    lines = [
        f"# {title}",
        "",
        f"- strategy: **{s.strategy}**; generator: {s.generator or '— (real pool samples)'}",
        f"- budget: {s.budget}",
        f"- training samples: {s.samples} (ids unique: {s.unique_ids}); generator completions: "
        f"{s.generated}; teacher completion tokens: {s.teacher_tokens}",
        f"- accuracy before: {_acc(s.accuracy_before)}; after: {_acc(s.accuracy_after)} "
        "(95% bootstrap intervals over evaluation items)",
    ]
    if warm:
        lines.insert(-1, f"- warm start: the student first trained on {warm} real pool samples "
                         "(round-00/warmup.jsonl), never selected and not counted in the budget; \"before\" is "
                         "that warmed student, and every round trains on them plus its selected samples")
    gain = paired_gain(source, rounds[-1].round) if rounds else None
    if gain:
        lines.append(gain)
    if s.forgetting_before and s.forgetting_after:
        lines.append(f"- forgetting suite (cloze acc_norm, lm-eval style): before "
                     f"{_acc(s.forgetting_before)}; after {_acc(s.forgetting_after)}")
    t = s.transfer
    if t:
        kind = "to another student" if t["cross_student"] else "to the same student"
        lines.append(
            f"- transfer: the generator was trained with GRPO against {t['student']} ({t['reward']} reward, "
            f"{t['prompts']} prompts, {t['steps']} steps); used here {kind} ({t['this_student']}) with a budget of "
            f"{t['budget_samples']} samples ({t['budget_over_training_prompts']}× its training prompts)"
        )
    if s.stop_reason:
        lines.append(f"- stopped early: {s.stop_reason}")
    lines += [
        "",
        "| round | new samples | total | generated | accepted rate | train loss first → last | accuracy (95% CI) | wall s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rounds:
        g = r.generation or {}
        rate = f"{g['acceptance_rate']:.1%}" if g.get("acceptance_rate") is not None else "—"
        tr = r.train or {}
        loss = f"{tr['loss_first']:.3f} → {tr['loss_last']:.3f}" if tr.get("loss_first") is not None else "—"
        lines.append(
            f"| {r.round} | {r.new_samples} | {r.total_samples} | {r.generated} | {rate} | {loss} | "
            f"{_acc(r.accuracy['accuracy'])} | {r.wall_s:.1f} |"
        )
    lines += ["", "![accuracy against training samples](accuracy.png)", ""]
    path = run_dir / "report.md"
    return atomic_write_text(path, "\n".join(lines))  # a full disk leaves the earlier report, not half of one
