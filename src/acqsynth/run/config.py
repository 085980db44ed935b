"""The config of `acqsynth run`: which strategy makes the data, for which student, under which budget.

Every field can be set in a YAML file or on the command line (`budget.samples=64`); the resolved
config is saved in the run directory. The embedded default (`configs/default.yaml`) is the main job:
the active loop on bundled arithmetic with `smollm2-135m-instruct` as student and generator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from acqsynth.acquisition import parse_acquisition
from acqsynth.data import builtin_name
from acqsynth.data.splits import check_split
from acqsynth.errors import AcqsynthError, check_range, unknown_name
from acqsynth.evaluation.accuracy import EvalConfig
from acqsynth.generation.hygiene import HygieneConfig
from acqsynth.generation.labelling import LabelConfig
from acqsynth.generation.pipeline import GenerateConfig
from acqsynth.models.aliases import check_model_spec
from acqsynth.models.loader import check_grammar_backend
from acqsynth.selection import METHODS
from acqsynth.strategies import get_strategy
from acqsynth.strategies.scoring import NOT_IN_A_ROUND, ROUND_METHODS
from acqsynth.tasks import TASKS
from acqsynth.training import TrainConfig

TASK_FILES = (".yaml", ".yml", ".py")
"""Suffixes of user task files (see tasks/__init__.py)."""
POOL_SOURCES = ("real", "generated")
"""Values of `data.pool_source`."""


@dataclass
class DataSettings:
    """Where seeds, pool and evaluation rows come from."""

    name: str = "arithmetic"
    """Built-in dataset, .jsonl/.parquet file or HF dataset id (its seed / pool / eval splits are used)."""
    task: str | None = None
    """math, mcqa, code or a task file; None = the built-in dataset's own task."""
    seeds: int | None = 64
    """Seed examples to condition the generator on (first N of the seed split; None = all)."""
    pool: int | None = None
    """Rows of the pool split `random` draws from and `filtered` ranks (first N after the warm-up rows;
    None = all; with `pool_seeded`, N drawn with the run's seed)."""
    pool_seeded: bool = False
    """The candidate pool of the pool design (docs/experiments.md#the-pool-design): with `data.pool` N,
    the pool is N rows drawn from the pool split (the warm-up rows left out) by the run's `seed` instead
    of its first N, so every method of a seed selects from the same pool and another seed gets another
    pool. The draw depends only on the seed and the row ids (the N smallest sha256("pool/SEED/ID")), and
    the pool keeps the split's order. False = the first N rows."""
    pool_source: str = "real"
    """Where the candidate pool comes from: "real" (the pool split, as `pool` and `pool_seeded` say) or
    "generated": `data.pool` samples the generator (`generator.*`) writes from the seed examples once
    per run seed, before any selection, so every method of a seed selects from the same teacher
    output and selection is compared with the teacher held fixed. The pool is kept in the completion
    cache's pools/ folder (an experiment's cache/pools/), keyed by everything that decides it, and is
    built once however many runs use it (docs/experiments.md#the-pool-design). Needs `data.pool`."""
    warmup: int = 0
    """Warm start: before anything else the student trains on the first N rows of the pool split (hash
    order, so every method with the same data gets the same set), with the rounds' training settings
    and seed. That warmed student is round 0's ("before") and scores round 1's acquisitions, and every
    round trains on the warm-up samples plus all samples selected so far. They are never selected,
    count against neither budget, and are recorded in round-00/ (warmup.jsonl, adapter/) and
    marked `warmup` in data.jsonl. 0 = no warm start (docs/strategies.md#warm-start)."""
    eval_n: int = 500
    """Evaluation rows (first N of the eval split, an unbiased sample of it). The minimum detectable
    effect shrinks with √N: 500 items detect a 2.2× smaller difference than 100 (docs/experiments.md)."""
    eval_split: str = "eval"
    """Split evaluated on before and after training."""
    forgetting: int = 0
    """Items per source of the forgetting suite (evaluation/forgetting.py) scored before and after
    training; 0 = no forgetting evaluation."""

    def __post_init__(self) -> None:
        for key, check in (("name", builtin_name), ("eval_split", check_split)):
            try:  # names are checked now, files and hub ids when the run loads them
                check(getattr(self, key))
            except AcqsynthError as e:
                raise AcqsynthError(f"data.{key}: {e}") from None
        if self.task is not None and self.task not in TASKS and Path(self.task).suffix.lower() not in TASK_FILES:
            err = unknown_name("task", self.task, TASKS)
            raise AcqsynthError(f"data.task: {err} (or give the path of a .yaml or .py task file)")
        check_range("data.seeds", self.seeds, 1)
        check_range("data.pool", self.pool, 1)
        if self.pool_seeded and self.pool is None:
            raise AcqsynthError("data.pool_seeded draws data.pool rows of the pool split by the run's seed, "
                                "but data.pool is not set (give its size, e.g. data.pool=2048)")
        if self.pool_source not in POOL_SOURCES:
            raise AcqsynthError(f"data.pool_source: {unknown_name('pool source', self.pool_source, POOL_SOURCES)}")
        if self.pool_source == "generated" and self.pool is None:
            raise AcqsynthError("data.pool_source is 'generated' but data.pool is not set: give the number of "
                                "candidates the generator writes per seed (e.g. data.pool=2048)")
        check_range("data.warmup", self.warmup, 0)
        check_range("data.eval_n", self.eval_n, 1)
        check_range("data.forgetting", self.forgetting, 0)


@dataclass
class BudgetSettings:
    """What the whole run may spend; every strategy is held to the same budget."""

    samples: int = 32
    """Synthetic (or real, for `random`) training samples in total."""
    generated: int | None = None
    """Most generator completions in total, rejected ones included (None = 20 × samples)."""
    teacher_tokens: int | None = None
    """Most completion tokens of the generator and answer model in total (None = unlimited)."""

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise AcqsynthError(f"budget.samples must be >= 1, got {self.samples}")
        if self.generated is not None and self.generated < 1:
            raise AcqsynthError(f"budget.generated must be >= 1, got {self.generated}")
        check_range("budget.teacher_tokens", self.teacher_tokens, 1)

    @property
    def max_generated(self) -> int:
        return self.generated if self.generated is not None else 20 * self.samples


@dataclass
class GeneratorSettings:
    """The generator (teacher) and how its samples are labelled and cleaned."""

    model: str = "smollm2-135m-instruct"
    """Alias, checkpoint dir, .gguf, llamacpp:ALIAS, openai:URL@MODEL or FILE.py:NAME."""
    template: str | None = None
    """Prompt template: a built-in name (math, arithmetic, mcqa, code, default) or a file; None = the task's."""
    max_new_tokens: int = 160
    """Length limit of one generated sample."""
    temperature: float = 0.8
    """Sampling temperature."""
    top_p: float = 0.95
    """Nucleus sampling."""
    batch_size: int = 16
    """Requests per batch."""
    threads: int | None = None
    """CPU threads for the generator (llama.cpp n_threads / torch); None = the backend's default."""
    grammar: bool = False
    """Constrain decoding to the template's tagged format with a GBNF grammar (llama.cpp or an OpenAI-compatible
    server; not transformers)."""
    label: LabelConfig = field(default_factory=LabelConfig)
    """How answers are labelled (keep, self-consistency, execution, compute)."""
    answer_model: str | None = None
    """Answer model for self-consistency labelling."""
    hygiene: HygieneConfig = field(default_factory=HygieneConfig)
    """Duplicate and contamination thresholds (null an embedding threshold to switch that check off)."""
    embedder: str | None = "minilm-l6"
    """Sentence embedder for hygiene, clustering and embedding acquisitions (None = no embedder)."""

    def __post_init__(self) -> None:
        check_range("generator.max_new_tokens", self.max_new_tokens, 1)
        check_range("generator.temperature", self.temperature, 0)
        check_range("generator.top_p", self.top_p, 0, 1, low_open=True)
        check_range("generator.batch_size", self.batch_size, 1)
        check_range("generator.threads", self.threads, 1)
        if self.template is not None and not self.template.strip():
            raise AcqsynthError("generator.template must be a template name or file, got an empty string")

        for key in ("model", "answer_model", "embedder"):
            if getattr(self, key) is not None:
                check_model_spec(getattr(self, key), f"generator.{key}")
        if self.grammar:
            check_grammar_backend(self.model, "generator.grammar")

    def generate_config(self, num_samples: int, max_generated: int, max_tokens: int | None, seed: int) -> GenerateConfig:
        """The pipeline config of one generation call."""
        return GenerateConfig(
            num_samples=num_samples, max_generated=max_generated, max_tokens=max_tokens, batch_size=self.batch_size,
            max_new_tokens=self.max_new_tokens, temperature=self.temperature, top_p=self.top_p, seed=seed,
            label=self.label, hygiene=self.hygiene, grammar=self.grammar,
        )


@dataclass
class SelectionSettings:
    """How acquisition scores pick seeds (active), candidates (rejection) or pool samples (filtered)."""

    acquisition: str = "loss(answer=own)"
    """Acquisition function or weighted combination, e.g. "confidence", "0.5*loss + 0.5*diversity"."""
    method: str = "top-k"
    """top-k, diverse, kmeans++, k-center, random, quantile or stratified (with `strata`; see selection.py;
    threshold cannot pick a round's samples)."""
    strata: str | None = None
    """For method "stratified": the Sample metadata key whose values are the strata (e.g. `operation`).
    The round's share is split over the strata in proportion to how many of the evaluated items (the
    first `data.eval_n` of `data.eval_split`) have each value, each stratum taking its best-scoring
    samples (with acquisition `random`: a random draw in the eval's mix)."""
    diverse_pool: int = 4
    """For method "diverse": pick among the top `diverse_pool` × k samples by score (at most all of
    them). Lower it when the candidates are few for the budget (a pool of 4 × k would make "diverse"
    choose among all of them, whatever their scores)."""
    answer_max_new_tokens: int = 64
    """Length limit of the student's own sampled answers (for `answer=own` functions)."""
    answer_temperature: float = 0.7
    """Temperature of the student's own sampled answers."""
    quantile: int | None = None
    """For method "quantile": the score bin to draw from (1 = lowest scores; the utility check)."""
    quantiles: int = 4
    """For method "quantile": how many score bins."""

    def __post_init__(self) -> None:
        if self.method in NOT_IN_A_ROUND:
            raise AcqsynthError(f"selection.method {self.method!r} cannot pick a round's samples: "
                                f"{NOT_IN_A_ROUND[self.method]}; choose one of {', '.join(ROUND_METHODS)}")
        if self.method not in METHODS:
            err = unknown_name("selection method", self.method, ROUND_METHODS)
            raise AcqsynthError(f"selection.method: {err}")
        if self.method == "stratified" and not self.strata:
            raise AcqsynthError("selection.method 'stratified' needs selection.strata: the Sample metadata key "
                                "whose values are the strata (e.g. selection.strata=operation); the round's share "
                                "is then split over them in the evaluated items' mix")
        if self.strata is not None and self.method != "stratified":
            raise AcqsynthError(f"selection.strata ({self.strata!r}) only applies to selection.method 'stratified', "
                                f"not {self.method!r}; drop it or set the method")
        check_range("selection.diverse_pool", self.diverse_pool, 1)
        check_range("selection.answer_max_new_tokens", self.answer_max_new_tokens, 1)
        check_range("selection.answer_temperature", self.answer_temperature, 0)
        check_range("selection.quantiles", self.quantiles, 1)
        if ".py:" not in self.acquisition:  # a user's file is imported when the run starts, not here

            try:
                parse_acquisition(self.acquisition)
            except AcqsynthError as e:
                raise AcqsynthError(f"selection.acquisition: {e}") from None
        if self.method == "quantile" and (self.quantile is None or not 1 <= self.quantile <= self.quantiles):
            raise AcqsynthError(f"selection.method 'quantile' needs selection.quantile in 1..{self.quantiles} "
                                f"(selection.quantiles), got {self.quantile}")


@dataclass
class StudentSettings:
    """The student model."""

    model: str = "smollm2-135m-instruct"
    """Alias, checkpoint directory, GGUF file or hub id."""
    batch_size: int = 16
    """Rows per forward pass when scoring and evaluating."""
    max_length: int = 1024
    """Longest prompt + answer scored."""
    threads: int | None = None
    """torch intra-op threads (None = torch's default)."""

    def __post_init__(self) -> None:
        check_range("student.batch_size", self.batch_size, 1)
        check_range("student.max_length", self.max_length, 2)
        check_range("student.threads", self.threads, 1)

        check_model_spec(self.model, "student.model")


@dataclass
class RunConfig:
    """`acqsynth run`: make data for one student with one strategy under one budget, train, evaluate."""

    strategy: str = "active"
    """active (student in the loop), static (one-shot generation), rejection (oversample, keep the best),
    random (real pool samples), mistakes (the teacher sees the student's wrong answers), filtered (the
    top of the real pool by `selection.acquisition`), filtered-active (filtered in `rounds` rounds, the
    retrained student rescoring the rest of the pool), or your own as FILE.py:NAME (docs/strategies.md)."""
    rounds: int = 2
    """Rounds of a strategy that runs several (active, mistakes, filtered-active); the sample budget is
    spread evenly over them."""
    oversample: int = 4
    """Rejection sampling: candidates generated per kept sample (they count against the budget)."""
    seed: int = 0
    """Root seed of the run: it drives data selection, generation (and every other sampling of the data
    strategies) and, unless `train.seed` is set, training (see `round_seeds`)."""
    output: str | None = None
    """Run directory (None = runs/run-TIMESTAMP); rerunning with the same directory resumes it."""
    cache: str | None = None
    """Completion cache directory (None = the run directory's cache/); runs that share one never pay
    twice for the same completion (an experiment's cells share theirs)."""
    data: DataSettings = field(default_factory=DataSettings)
    """Seeds, pool and evaluation data."""
    student: StudentSettings = field(default_factory=StudentSettings)
    """The student."""
    generator: GeneratorSettings = field(default_factory=GeneratorSettings)
    """The generator and its labelling and hygiene."""
    selection: SelectionSettings = field(default_factory=SelectionSettings)
    """Acquisition and selection."""
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    """The budget."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """Student finetuning."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation before and after each round."""

    def __post_init__(self) -> None:
        get_strategy(self.strategy)  # a user's file is imported now: a broken one fails before anything runs
        check_range("seed", self.seed, 0, 2**32 - 1)
        if self.rounds < 1:
            raise AcqsynthError(f"rounds must be >= 1, got {self.rounds}")
        if self.oversample < 1:
            raise AcqsynthError(f"oversample must be >= 1, got {self.oversample}")

    @property
    def train_seed(self) -> int:
        """The seed every round trains with: `train.seed` when set, else the run's seed. The same one for
        every round: each round trains a fresh adapter on the base model, so rounds differ by their data
        alone, and a run at seed 0 trains exactly as runs did when `train.seed` was always 0."""
        return self.seed if self.train.seed is None else self.train.seed

    def round_seeds(self, r: int) -> dict[str, int]:
        """The seeds round `r` is given. selection: the selection method's (tie-breaks, random and
        diverse methods, quantile draws); generation: the generator's sampling and seed order, the
        student's sampled answers and other randomness of acquisition scores, the `random` strategy's pool
        draw and `mistakes`' pick; train: `train_seed`. (The formulas are those runs always used, so
        caches and earlier runs stay valid.)"""
        return {"selection": self.seed + r, "generation": self.seed * 1000 + r, "train": self.train_seed}


def keep_train_seed(config: RunConfig, saved: dict[str, Any]) -> RunConfig:
    """`config`, to continue a run (or experiment cell) started with the config `saved` (a dict as
    config.yaml or cells.json hold it): when `config` leaves `train.seed` unset (derived) and `saved`
    names one, the run keeps the training seed it started with. Every run started before the run seed
    drove training saved `train.seed: 0`; resuming it must not change its seeds under it."""
    train = saved.get("train") if isinstance(saved, dict) else None
    old = train.get("seed") if isinstance(train, dict) else None
    if config.train.seed is not None or old is None:
        return config
    return replace(config, train=replace(config.train, seed=int(old)))


def resolved_seeds(values: dict[str, Any]) -> dict[str, Any]:
    """A run config as a dict with `train.seed` resolved (unset → the run's seed), so that two configs
    that train with the same seed compare equal whether the seed was set or derived."""
    train = values.get("train")
    if not isinstance(train, dict) or train.get("seed") is not None:
        return values
    return {**values, "train": {**train, "seed": values.get("seed", 0)}}


def builtin_configs() -> dict[str, Path]:
    """Configs shipped with acqsynth, by name (`default`, `grpo-cpu`, ...)."""
    root = resources.files("acqsynth").joinpath("configs")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".yaml")}


def default_config_path() -> Path:
    """The embedded default config of the main job."""
    return builtin_configs()["default"]


def resolve_config(name_or_path: str) -> Path:
    """A config file path, or the path of a built-in config named `name_or_path`."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = builtin_configs()
    if name_or_path in shipped:
        return shipped[name_or_path]
    raise AcqsynthError(f"config file {name_or_path} does not exist (built-in configs: {', '.join(sorted(shipped))})")
