"""Selection: turn per-sample scores (higher = more valuable) and embeddings into chosen row indices.

Scoring and selection are separate steps: an acquisition function gives one float per sample, and a
selection rule here picks rows from those scores (and, for the diversity rules, embeddings). Every
function returns an int64 array of row indices in the order the rows were selected.

Shared rules, so results never depend on the sort algorithm or on bad rows:

- Ties in score go to the lower index.
- A non-finite score (NaN, +inf, -inf) ranks after every finite score, ties among them by index,
  and a `SelectionWarning` names how many rows had one and up to five of them (by id when `ids`
  is given). Rows whose embedding is not finite are treated the same way by the diversity rules.
- Asking for more rows than there are selects all of them, with a warning; a negative k or arrays
  of the wrong shape raise `AcqsynthError` naming the argument; empty input gives an empty result.
- Randomness comes only from `np.random.default_rng(seed)`.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from acqsynth.errors import AcqsynthError, unknown_name

METHODS = ("top-k", "threshold", "stratified", "diverse", "kmeans++", "k-center", "random", "quantile")
DIVERSE_METHODS = ("k-center", "kmeans++")
_MAX_NAMED = 5
_CHUNK_VALUES = 1 << 22  # rows × dims per block when computing distances, to bound memory
T = TypeVar("T")


class SelectionWarning(UserWarning):
    """Selection went ahead but not as asked: non-finite rows ranked last, or fewer rows than k."""


def _as_scores(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise AcqsynthError(f"scores must be a 1-D array, got shape {arr.shape}")
    return arr


def _as_embeddings(embeddings: np.ndarray, n: int | None = None) -> np.ndarray:
    arr = np.asarray(embeddings, dtype=np.float64)
    if arr.ndim != 2:
        raise AcqsynthError(f"embeddings must be a 2-D array [rows, dims], got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise AcqsynthError(f"embeddings has {arr.shape[0]} rows but scores has {n}")
    return arr


def _check_k(k: int, name: str = "k") -> int:
    try:
        value = operator.index(k)
    except TypeError:
        raise AcqsynthError(f"{name} must be an integer, got {k!r}") from None
    if value < 0:
        raise AcqsynthError(f"{name} must be >= 0, got {value}")
    return value


def _check_ids(ids: Sequence[str] | None, n: int) -> None:
    if ids is not None and len(ids) != n:
        raise AcqsynthError(f"ids has {len(ids)} entries but there are {n} rows")


def _name_rows(rows: np.ndarray, ids: Sequence[str] | None) -> str:
    shown = [str(ids[i]) if ids is not None else str(int(i)) for i in rows[:_MAX_NAMED]]
    more = ", ..." if len(rows) > _MAX_NAMED else ""
    return ("ids " if ids is not None else "rows ") + ", ".join(shown) + more


def _warn_nonfinite(bad: np.ndarray, n: int, ids: Sequence[str] | None, what: str, effect: str) -> None:
    if len(bad):
        warnings.warn(
            f"{len(bad)} of {n} rows have non-finite {what} (NaN or ±inf); {effect}: {_name_rows(bad, ids)}",
            SelectionWarning,
            stacklevel=3,
        )


def _cap_k(k: int, available: int) -> int:
    if k > available:
        warnings.warn(
            f"k={k} exceeds the {available} rows available; selecting all {available}",
            SelectionWarning,
            stacklevel=3,
        )
        return available
    return k


def _rank(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(finite rows by descending score then index, non-finite rows by index)."""
    finite = np.isfinite(scores)
    good = np.flatnonzero(finite)
    good = good[np.argsort(-scores[good], kind="stable")]
    return good, np.flatnonzero(~finite)


def _scored_order(scores: np.ndarray, ids: Sequence[str] | None) -> np.ndarray:
    """Every row, best first, with non-finite scores last (warned)."""
    good, bad = _rank(scores)
    _warn_nonfinite(bad, len(scores), ids, "scores", "they rank after every finite score")
    return np.concatenate([good, bad])


def _sq_dist(x: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance from every row of `x` to `centre`, in row blocks to bound memory."""
    out = np.empty(len(x))
    step = max(1, _CHUNK_VALUES // max(1, x.shape[1]))
    for start in range(0, len(x), step):
        diff = x[start : start + step] - centre
        out[start : start + step] = np.einsum("ij,ij->i", diff, diff)
    return out


def _finite_rows(x: np.ndarray, ids: Sequence[str] | None) -> np.ndarray:
    """Mask of rows whose embedding is finite; warns about the others."""
    ok = np.isfinite(x).all(axis=1)
    _warn_nonfinite(
        np.flatnonzero(~ok), len(x), ids, "embeddings", "they are never chosen ahead of finite rows"
    )
    return ok


def _empty() -> np.ndarray:
    return np.empty(0, dtype=np.int64)


def top_k(scores: np.ndarray | Sequence[float], k: int, ids: Sequence[str] | None = None) -> np.ndarray:
    """The k highest-scoring rows, best first (ties to the lower index, non-finite scores last)."""
    arr = _as_scores(scores)
    k = _check_k(k)
    _check_ids(ids, len(arr))
    if len(arr) == 0:
        return _empty()
    k = _cap_k(k, len(arr))
    return _scored_order(arr, ids)[:k].astype(np.int64)


def threshold(
    scores: np.ndarray | Sequence[float], min_score: float, ids: Sequence[str] | None = None
) -> np.ndarray:
    """Every row with a finite score ≥ `min_score`, best first. Non-finite scores are never selected."""
    arr = _as_scores(scores)
    _check_ids(ids, len(arr))
    min_score = float(min_score)
    if np.isnan(min_score):
        raise AcqsynthError("min_score must be a number, got NaN")
    good, bad = _rank(arr)
    _warn_nonfinite(bad, len(arr), ids, "scores", "they are never selected by a threshold")
    return good[arr[good] >= min_score].astype(np.int64)


def _hamilton(seats: int, sizes: np.ndarray) -> np.ndarray:
    """Largest-remainder apportionment of `seats` in proportion to `sizes`, exact in integers.

    Leftover seats go to the largest remainders; equal remainders to the earlier entry.
    """
    total = int(sizes.sum())
    quota = seats * sizes
    alloc, rem = quota // total, quota % total
    leftover = seats - int(alloc.sum())
    order = np.lexsort((np.arange(len(sizes)), -rem))
    alloc[order[:leftover]] += 1
    return alloc


def allocate(
    k: int, sizes: Sequence[int] | np.ndarray, caps: Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """Split k over groups in proportion to `sizes` (Hamilton method), never giving a group more
    than its cap (default: its size); a capped group's surplus is re-split over the others the same
    way. Ties go to the earlier group. Returns one count per group summing to min(k, sum(caps))."""
    sizes_arr = np.asarray(sizes, dtype=np.int64)
    caps_arr = sizes_arr.copy() if caps is None else np.asarray(caps, dtype=np.int64)
    if sizes_arr.ndim != 1 or caps_arr.shape != sizes_arr.shape:
        raise AcqsynthError("sizes and caps must be 1-D and of the same length")
    if (sizes_arr <= 0).any() or (caps_arr < 0).any():
        raise AcqsynthError("sizes must be positive and caps non-negative")
    k = min(_check_k(k), int(caps_arr.sum()))
    alloc = np.zeros(len(sizes_arr), dtype=np.int64)
    full = np.zeros(len(sizes_arr), dtype=bool)
    # Grow the set of capped groups until splitting the rest over the others exceeds no cap.
    while True:
        free = np.flatnonzero(~full)
        rest = k - int(caps_arr[full].sum())
        alloc[full] = caps_arr[full]
        alloc[free] = _hamilton(rest, sizes_arr[free]) if len(free) else 0
        over = free[alloc[free] > caps_arr[free]]
        if len(over) == 0:
            return alloc
        full[over] = True


def stratified_top_k(
    scores: np.ndarray | Sequence[float],
    strata: Sequence[Hashable],
    k: int,
    ids: Sequence[str] | None = None,
    proportions: Mapping[Hashable, int] | None = None,
) -> np.ndarray:
    """The best rows within each stratum, k split over strata in proportion to their sizes, or to
    `proportions` (stratum → count, e.g. how many evaluation items each stratum has) when given.

    The split uses the largest-remainder (Hamilton) method with ties to the stratum that appears
    first (with `proportions`: the candidates' strata in order of appearance, then the mapping's
    others). A stratum never gets more rows than it has finite scores; the surplus is re-split over
    the other strata, so no non-finite score is taken while a finite one is left. With `proportions`,
    strata it gives no count get no share; only when the counted strata run out of finite rows are
    the best finite rows of the others added (with a warning). Only when there are fewer finite rows
    than k are non-finite rows added, by index. The result holds exactly min(k, n) rows, ordered by
    descending score overall.
    """
    arr = _as_scores(scores)
    k = _check_k(k)
    n = len(arr)
    _check_ids(ids, n)
    if len(strata) != n:
        raise AcqsynthError(f"strata has {len(strata)} entries but scores has {n}")
    if n == 0:
        return _empty()
    k = _cap_k(k, n)
    codes: dict[Hashable, int] = {}
    try:
        label = np.array([codes.setdefault(s, len(codes)) for s in strata], dtype=np.int64)
    except TypeError as err:
        raise AcqsynthError(f"strata values must be hashable: {err}") from None
    good, bad = _rank(arr)
    _warn_nonfinite(bad, n, ids, "scores", "they rank after every finite score")
    if proportions is None:
        sizes = np.bincount(label, minlength=len(codes))
        caps = np.bincount(label[good], minlength=len(codes))
        alloc = allocate(k, sizes, caps)
    else:
        alloc = _alloc_by_proportions(k, codes, label[good], proportions)
    # `good` is in global score order, so each stratum's first `alloc` members are its best rows.
    rank_in_stratum = np.empty(len(good), dtype=np.int64)
    seen = np.zeros(len(codes), dtype=np.int64)
    for pos, row in enumerate(good):
        rank_in_stratum[pos] = seen[label[row]]
        seen[label[row]] += 1
    taken = rank_in_stratum < alloc[label[good]]
    short = min(k, len(good)) - int(taken.sum())
    if short > 0:  # only with `proportions`: the counted strata ran out of finite rows
        extra = np.flatnonzero(~taken)[:short]
        taken[extra] = True
        warnings.warn(
            f"the strata given proportions hold {int(alloc.sum())} rows with finite scores, fewer than k={k}; "
            f"{short} rows taken from other strata ({_name_rows(good[extra], ids)})",
            SelectionWarning,
            stacklevel=2,
        )
    chosen = good[taken]
    return np.concatenate([chosen, bad[: k - len(chosen)]]).astype(np.int64)


def _alloc_by_proportions(
    k: int, codes: dict[Hashable, int], good_labels: np.ndarray, proportions: Mapping[Hashable, int]
) -> np.ndarray:
    """Rows per candidate stratum (by code) when k is split in proportion to `proportions`, each capped
    at the stratum's finite rows; strata of `proportions` with no candidates take part with cap 0, so
    their share is re-split over the others."""
    weights: dict[Hashable, int] = {}
    for stratum, count in proportions.items():
        try:
            value = operator.index(count)
        except TypeError:
            raise AcqsynthError(f"proportions: the count of stratum {stratum!r} must be an integer, "
                                f"got {count!r}") from None
        if value < 0:
            raise AcqsynthError(f"proportions: the count of stratum {stratum!r} must be >= 0, got {value}")
        weights[stratum] = value
    if not any(weights.values()):
        raise AcqsynthError("proportions: give at least one stratum a positive count")
    caps_by_code = np.bincount(good_labels, minlength=len(codes))
    groups = [s for s in codes if weights.get(s, 0) > 0] + [s for s in weights if s not in codes and weights[s] > 0]
    sizes = np.array([weights[s] for s in groups], dtype=np.int64)
    caps = np.array([caps_by_code[codes[s]] if s in codes else 0 for s in groups], dtype=np.int64)
    shares = allocate(k, sizes, caps)
    alloc = np.zeros(len(codes), dtype=np.int64)
    for s, share in zip(groups, shares, strict=True):
        if s in codes:
            alloc[codes[s]] = share
    return alloc


def k_center(
    embeddings: np.ndarray,
    k: int,
    seed: int,
    initial: Sequence[int] = (),
    ids: Sequence[str] | None = None,
) -> np.ndarray:
    """Greedy k-center (coreset) selection: k rows that spread out over the embedding space.

    Starts from the `initial` rows (already selected: they act as centres and are never returned)
    or, with none, from one row drawn by `np.random.default_rng(seed).integers`. Then repeatedly
    adds the row farthest (Euclidean) from its nearest centre, ties to the lowest index. The
    chosen set's covering radius is at most twice the optimum. Rows with non-finite embeddings are
    warned about and come last, by index, only if k exceeds the finite rows.
    """
    x = _as_embeddings(embeddings)
    k = _check_k(k)
    n = len(x)
    _check_ids(ids, n)
    try:
        init = np.unique(np.asarray([operator.index(i) for i in initial], dtype=np.int64))
    except TypeError:
        raise AcqsynthError(f"initial must be row indices, got {initial!r}") from None
    if len(init) and (init.min() < 0 or init.max() >= n):
        raise AcqsynthError(f"initial holds indices outside 0..{n - 1}: {init.tolist()}")
    if n == 0:
        return _empty()
    k = _cap_k(k, n - len(init))
    ok = _finite_rows(x, ids)
    taken = np.zeros(n, dtype=bool)
    taken[init] = True
    centres = init[ok[init]]
    out: list[int] = []
    min_d = np.full(n, np.inf)
    for c in centres:
        np.minimum(min_d, _sq_dist(x, x[c]), out=min_d)
    candidates = np.flatnonzero(ok & ~taken)
    if len(centres) == 0 and k > 0 and len(candidates):
        first = int(candidates[np.random.default_rng(seed).integers(len(candidates))])
        out.append(first)
        taken[first] = True
        min_d = _sq_dist(x, x[first])
    # Squared distances order the same as distances and are exact for integer coordinates.
    min_d[~ok | taken] = -1.0
    while len(out) < k and min_d.max() >= 0:
        nxt = int(np.argmax(min_d))
        out.append(nxt)
        taken[nxt] = True
        np.minimum(min_d, _sq_dist(x, x[nxt]), out=min_d)
        min_d[~ok | taken] = -1.0
    rest = np.flatnonzero(~ok & ~taken)[: k - len(out)]
    return np.concatenate([np.asarray(out, dtype=np.int64), rest]).astype(np.int64)


def kmeans_pp(embeddings: np.ndarray, k: int, seed: int, ids: Sequence[str] | None = None) -> np.ndarray:
    """k-means++ seeding as BADGE (Ash et al., 2020) uses it to pick a diverse, informative batch.

    The first row is the one with the largest Euclidean norm (BADGE's choice: for gradient
    embeddings that is the sample the model is most unsure about with the largest features; ties to
    the lowest index). Each next row is drawn with probability ∝ its squared distance to the nearest
    chosen row: u = rng.random() · Σ d², and the row is the first whose running sum of d² (in index
    order) exceeds u, with rng = np.random.default_rng(seed), one draw per row. Rows at distance 0
    (duplicates of a chosen row) are therefore never drawn; once every remaining distance is 0 the
    lowest unused indices fill the rest. Rows with non-finite embeddings are warned about and come
    last, by index, only if k exceeds the finite rows.
    """
    x = _as_embeddings(embeddings)
    k = _check_k(k)
    n = len(x)
    _check_ids(ids, n)
    if n == 0:
        return _empty()
    k = _cap_k(k, n)
    ok = _finite_rows(x, ids)
    cand = np.flatnonzero(ok)
    if k == 0 or len(cand) == 0:
        return np.flatnonzero(~ok)[:k].astype(np.int64)
    rng = np.random.default_rng(seed)
    xc = x[cand]
    norms = np.einsum("ij,ij->i", xc, xc)
    out = [int(cand[np.argmax(norms)])]
    taken = np.zeros(n, dtype=bool)
    taken[out[0]] = True
    d2 = np.zeros(n)
    d2[cand] = _sq_dist(xc, x[out[0]])
    target = min(k, len(cand))
    while len(out) < target:
        d2[taken] = 0.0
        cum = np.cumsum(d2)
        if cum[-1] <= 0:
            out.extend(int(i) for i in cand[~taken[cand]][: target - len(out)])
            break
        u = rng.random() * cum[-1]
        nxt = int(np.searchsorted(cum, u, side="right"))
        if nxt >= n:  # u rounded up to the total: take the last row with positive weight
            nxt = int(np.flatnonzero(d2 > 0)[-1])
        out.append(nxt)
        taken[nxt] = True
        d2[cand] = np.minimum(d2[cand], _sq_dist(xc, x[nxt]))
    rest = np.flatnonzero(~ok)[: k - len(out)]
    return np.concatenate([np.asarray(out, dtype=np.int64), rest]).astype(np.int64)


def diverse_top_k(
    scores: np.ndarray | Sequence[float],
    embeddings: np.ndarray,
    k: int,
    method: str = "k-center",
    pool: int | None = None,
    seed: int = 0,
    ids: Sequence[str] | None = None,
) -> np.ndarray:
    """k rows that score well and differ: the top `pool` rows by score (default min(n, 4k)), then k
    of them picked with `method` — "k-center" (starting from the best-scoring row) or "kmeans++".

    Only rows with a finite score and a finite embedding enter the pool (the others are warned
    about); if fewer than k such rows exist, all of them are chosen diversely and the rest follow
    in score order (non-finite scores last, by index). Returns indices into the full array.
    """
    if method not in DIVERSE_METHODS:
        raise unknown_name("diverse method", method, DIVERSE_METHODS)
    arr = _as_scores(scores)
    n = len(arr)
    x = _as_embeddings(embeddings, n)
    k = _check_k(k)
    _check_ids(ids, n)
    if n == 0:
        return _empty()
    k = _cap_k(k, n)
    if pool is not None and _check_k(pool, "pool") < k:
        raise AcqsynthError(f"pool ({pool}) must be at least k ({k})")
    order = _scored_order(arr, ids)
    usable = np.isfinite(arr[order]) & _finite_rows(x, ids)[order]
    cand = order[usable][: min(n, 4 * k) if pool is None else pool]
    want = min(k, len(cand))
    if want == 0:
        picked = _empty()
    elif method == "k-center":
        # Local index 0 is the best-scoring candidate; it starts the selection as the first centre.
        picked = cand[np.concatenate([[0], k_center(x[cand], want - 1, seed, initial=[0])])]
    else:
        picked = cand[kmeans_pp(x[cand], want, seed)]
    rest = order[~np.isin(order, picked)][: k - want]
    return np.concatenate([picked, rest]).astype(np.int64)


def random_k(n: int, k: int, seed: int) -> np.ndarray:
    """k distinct rows out of n, uniformly at random: each row gets a key from
    `np.random.default_rng(seed).random(n)` and the k smallest keys (ties to the lower index) win,
    in key order."""
    n = _check_k(n, "n")
    k = _check_k(k)
    if n == 0:
        return _empty()
    k = _cap_k(k, n)
    keys = np.random.default_rng(seed).random(n)
    return np.argsort(keys, kind="stable")[:k].astype(np.int64)


def quantile_k(
    scores: np.ndarray | Sequence[float], k: int, quantile: int, quantiles: int, seed: int,
    ids: Sequence[str] | None = None,
) -> np.ndarray:
    """k rows drawn at random from one score quantile: the rows ranked by score (ascending, the
    shared tie and non-finite rules) are cut into `quantiles` near-equal bins, bin 1 holding the
    lowest scores. This is the utility check's selection: does training on a higher-score bin teach
    the student more?"""
    arr = _as_scores(scores)
    if quantiles < 1 or not 1 <= quantile <= quantiles:
        raise AcqsynthError(f"quantile must be in 1..{quantiles} (quantiles = {quantiles}), got {quantile}")
    k = _check_k(k)
    ascending = _scored_order(arr, ids)[::-1]
    bin_rows = np.array_split(ascending, quantiles)[quantile - 1]
    if len(bin_rows) == 0:
        return _empty()
    k = _cap_k(k, len(bin_rows))
    return bin_rows[random_k(len(bin_rows), k, seed)].astype(np.int64)


@dataclass
class SelectionConfig:
    """Which selection rule to apply and its parameters."""

    method: str = "top-k"
    """One of `METHODS`: "top-k", "threshold", "stratified", "diverse", "kmeans++", "k-center", "random",
    "quantile"."""
    k: int | None = None
    """How many rows to select (for "threshold": an optional cap on the rows above min_score)."""
    min_score: float | None = None
    """Lowest score selected by "threshold"."""
    stratify_by: str | None = None
    """Column or metadata key whose values form the strata for "stratified" (read by the caller)."""
    diverse_method: str = "k-center"
    """How "diverse" picks among the top-scoring pool: "k-center" or "kmeans++"."""
    pool: int | None = None
    """Size of the top-scoring pool "diverse" picks from (default min(n, 4k))."""
    seed: int = 0
    """Seed for the random choices of "random", "kmeans++", "k-center", "diverse" and "quantile"."""
    quantile: int | None = None
    """Score bin "quantile" draws from (1 = lowest scores)."""
    quantiles: int = 4
    """Number of score bins for "quantile"."""


def _need(value: T | None, what: str, method: str) -> T:
    """`value`, or an error saying that `method` needs it."""
    if value is None:
        raise AcqsynthError(f"selection method {method!r} needs {what}, but none was given")
    return value


def select(
    config: SelectionConfig,
    scores: np.ndarray | Sequence[float],
    embeddings: np.ndarray | None = None,
    strata: Sequence[Hashable] | None = None,
    ids: Sequence[str] | None = None,
    proportions: Mapping[Hashable, int] | None = None,
) -> np.ndarray:
    """Apply the rule named by `config.method` and return the selected row indices in order
    (`strata` and `proportions`: see `stratified_top_k`)."""
    method = config.method
    if method not in METHODS:
        raise unknown_name("selection method", method, METHODS)
    arr = _as_scores(scores)
    _check_ids(ids, len(arr))
    if embeddings is not None:
        embeddings = _as_embeddings(embeddings, len(arr))
    if strata is not None and len(strata) != len(arr):
        raise AcqsynthError(f"strata has {len(strata)} entries but scores has {len(arr)}")
    if method == "threshold":
        chosen = threshold(arr, _need(config.min_score, "min_score", method), ids)
        return chosen if config.k is None else chosen[: _check_k(config.k)]
    k = _need(config.k, "k", method)
    if method == "top-k":
        return top_k(arr, k, ids)
    if method == "stratified":
        groups = _need(strata, f"strata (values of {config.stratify_by!r} per row)", method)
        return stratified_top_k(arr, groups, k, ids, proportions)
    if method == "random":
        return random_k(len(arr), k, config.seed)
    if method == "quantile":
        quantile = _need(config.quantile, "quantile", method)
        return quantile_k(arr, k, quantile, config.quantiles, config.seed, ids)
    x = _need(embeddings, "embeddings", method)
    if method == "diverse":
        return diverse_top_k(arr, x, k, config.diverse_method, config.pool, config.seed, ids)
    if method == "kmeans++":
        return kmeans_pp(x, k, config.seed, ids)
    return k_center(x, k, config.seed, ids=ids)
