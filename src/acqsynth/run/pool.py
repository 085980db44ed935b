"""The candidate pool of the pool design (docs/experiments.md#the-pool-design): what `random`,
`filtered` and `filtered-active` select from, the same for every method of a run seed.

Two sources (`data.pool_source`):

- real: rows of the dataset's pool split, the first `data.pool` or, with `data.pool_seeded`, a draw
  of them by the seed (`seeded_pool`);
- generated: `data.pool` samples the generator writes from the seed examples before any selection
  (`generated_pool`), so that selection is compared with the teacher held fixed. The pool is built
  once per seed into the completion cache's pools/ folder and reused by every run that shares the
  cache (an experiment's cells do): a lock makes parallel cells wait for the first one to build it.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from acqsynth.config import to_dict
from acqsynth.errors import AcqsynthError
from acqsynth.locks import claim
from acqsynth.samples import Sample, atomic_file, iter_samples, read_samples, to_dataset, write_samples
from acqsynth.strategies import GenerationBudget
from acqsynth.strategies.static import generate_round

if TYPE_CHECKING:
    from acqsynth.generation.setup import GenerationSetup
    from acqsynth.run.config import RunConfig

POOL_FILE = "pool.jsonl"
"""The finished generated pool in its folder; pool.json beside it records how it was made."""
GENERATED_PER_SAMPLE = 20
"""Generator completions a generated pool may spend per pool sample (as `budget.generated`'s default)."""


def seeded_pool(rows: list[Sample], size: int, seed: int) -> list[Sample]:
    """`size` of `rows` drawn by `seed` (`data.pool_seeded`): those with the smallest
    sha256("pool/SEED/ID"), in their order in `rows`. The draw depends only on the seed and the ids,
    so every method of a seed gets the same pool, and a larger pool holds a smaller one."""
    if size > len(rows):
        raise AcqsynthError(f"data.pool is {size} but the pool split has only {len(rows)} rows after the "
                            "warm-up to draw it from (lower data.pool or data.warmup)")
    keyed = sorted(range(len(rows)), key=lambda i: hashlib.sha256(f"pool/{seed}/{rows[i].id}".encode()).digest())
    return [rows[i] for i in sorted(keyed[:size])]


def pool_generation_seed(config: RunConfig) -> int:
    """The generator's root seed for the generated pool: round 0's generation seed, which no round uses
    to generate (rounds count from 1), so the pool's samples are not any round's."""
    return config.round_seeds(0)["generation"]


def generated_pool_key(config: RunConfig, task_name: str, template: str | None, warmup: Sequence[str]) -> str:
    """What decides a generated pool, as a short hash: the generator and everything it is given (data,
    task, seed examples, template), the pool's size and seed, and the warm-up ids it must not repeat.
    The strategy, selection, student and training do not enter it: every method of a seed shares it."""
    c = config
    g = to_dict(c.generator)
    for local in ("threads", "batch_size"):  # how it runs, not what it writes
        g.pop(local, None)
    what = {"generator": g, "template": template, "data": c.data.name, "task": task_name, "seeds": c.data.seeds,
            "eval_split": c.data.eval_split, "size": c.data.pool, "seed": pool_generation_seed(c),
            "warmup": list(warmup)}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def generated_pool(
    config: RunConfig,
    folder: Path,
    setup: Callable[[], GenerationSetup],
    warmup: Sequence[Sample],
) -> list[Sample]:
    """The generated pool in `folder` (cache/pools/KEY/): read when it is finished, otherwise generated
    there first (`data.pool` accepted samples from the seed examples, at most
    `GENERATED_PER_SAMPLE` × that many completions, none a duplicate of a warm-up sample). `setup`
    loads the generator only when the pool has to be built. A generator that cannot fill the pool
    within its budget gives a smaller one, recorded in pool.json and logged."""
    done = folder / POOL_FILE
    with claim(folder.parent / f".{folder.name}.lock", wait=True):
        if not done.exists():
            _build(config, folder, setup(), warmup)
    pool = list(iter_samples(read_samples(done, allow_empty=True)))
    if not pool:
        raise AcqsynthError(f"the generated pool {done} is empty: the generator wrote no usable sample "
                            f"(see {folder / 'generation'}); check generator.model and generator.template")
    return pool


def _build(config: RunConfig, folder: Path, s: GenerationSetup, warmup: Sequence[Sample]) -> None:
    c, size = config, config.data.pool
    assert size is not None  # RunConfig refuses pool_source "generated" without data.pool
    seed = pool_generation_seed(c)
    most = GENERATED_PER_SAMPLE * size
    _log(f"generating the candidate pool: {size} samples from {len(s.seeds)} seeds with {c.generator.model} "
         f"(seed {seed}, at most {most} completions) into {folder}")
    budget = GenerationBudget(generated=most, tokens=None)
    cfg = c.generator.generate_config(size, most, None, seed=seed)
    run = generate_round(s, s.seeds, size, budget, cfg, folder / "generation", earlier=warmup)
    assert run.ledger is not None
    accepted = list(run.accepted)
    if len(accepted) < size:
        _log(f"the generator filled {len(accepted)} of the pool's {size} samples within {most} completions")
    record = {"samples": len(accepted), "size": size, "seed": seed, "generated": run.ledger.generated,
              "tokens": run.ledger.tokens, "generator": c.generator.model}
    with atomic_file(folder / "pool.json") as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")
    write_samples(to_dataset(accepted), folder / POOL_FILE)  # last (atomic): it marks the pool finished


def _log(message: str) -> None:
    print(f"[acqsynth run] {message}", file=sys.stderr, flush=True)
