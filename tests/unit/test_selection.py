"""Selection rules against plain-loop references, and the properties each rule must have."""

from __future__ import annotations

import itertools
import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from acqsynth.errors import AcqsynthError
from acqsynth.selection import (
    METHODS,
    SelectionConfig,
    SelectionWarning,
    allocate,
    diverse_top_k,
    k_center,
    kmeans_pp,
    quantile_k,
    random_k,
    select,
    stratified_top_k,
    threshold,
    top_k,
)

# ---- naive references: one row at a time, plain Python ----


def naive_order(scores: list[float]) -> list[int]:
    finite = [i for i in range(len(scores)) if math.isfinite(scores[i])]
    finite.sort(key=lambda i: (-scores[i], i))
    return finite + [i for i in range(len(scores)) if not math.isfinite(scores[i])]


def naive_top_k(scores: list[float], k: int) -> list[int]:
    return naive_order(scores)[: min(k, len(scores))]


def naive_threshold(scores: list[float], min_score: float) -> list[int]:
    return [i for i in naive_order(scores) if math.isfinite(scores[i]) and scores[i] >= min_score]


def naive_allocate(k: int, sizes: list[int], caps: list[int]) -> list[int]:
    k = min(k, sum(caps))
    full: set[int] = set()
    while True:
        free = [g for g in range(len(sizes)) if g not in full]
        rest = k - sum(caps[g] for g in full)
        total = sum(sizes[g] for g in free)
        alloc = [caps[g] if g in full else 0 for g in range(len(sizes))]
        quota = {g: Fraction(rest * sizes[g], total) for g in free}
        for g in free:
            alloc[g] = math.floor(quota[g])
        leftover = rest - sum(alloc[g] for g in free)
        for g in sorted(free, key=lambda g: (-(quota[g] - math.floor(quota[g])), g))[:leftover]:
            alloc[g] += 1
        over = [g for g in free if alloc[g] > caps[g]]
        if not over:
            return alloc
        full.update(over)


def naive_stratified(scores: list[float], strata: list[object], k: int) -> list[int]:
    groups: list[object] = []
    members: dict[object, list[int]] = {}
    for i, s in enumerate(strata):
        if s not in members:
            members[s] = []
            groups.append(s)
        members[s].append(i)
    sizes = [len(members[g]) for g in groups]
    caps = [sum(1 for i in members[g] if math.isfinite(scores[i])) for g in groups]
    alloc = naive_allocate(min(k, len(scores)), sizes, caps)
    chosen: list[int] = []
    for g, a in zip(groups, alloc, strict=True):
        best = sorted((i for i in members[g] if math.isfinite(scores[i])), key=lambda i: (-scores[i], i))
        chosen += best[:a]
    chosen.sort(key=lambda i: (-scores[i], i))
    bad = [i for i in range(len(scores)) if not math.isfinite(scores[i])]
    return chosen + bad[: min(k, len(scores)) - len(chosen)]


def sq(p: list[float], q: list[float]) -> float:
    return sum((a - b) ** 2 for a, b in zip(p, q, strict=True))


def naive_k_center(points: list[list[float]], k: int, seed: int, initial: tuple[int, ...] = ()) -> list[int]:
    n = len(points)
    centres = sorted(set(initial))
    k = min(k, n - len(centres))
    out: list[int] = []
    if not centres and k > 0:
        out.append(int(np.random.default_rng(seed).integers(n)))
    while len(out) < k:
        best, best_d = -1, -1.0
        for i in range(n):
            if i in centres or i in out:
                continue
            d = min(sq(points[i], points[c]) for c in centres + out)
            if d > best_d:
                best, best_d = i, d
        out.append(best)
    return out


def naive_kmeans_pp(points: list[list[float]], k: int, seed: int) -> list[int]:
    n = len(points)
    k = min(k, n)
    if k == 0:
        return []
    rng = np.random.default_rng(seed)
    norms = [sq(p, [0.0] * len(p)) for p in points]
    out = [max(range(n), key=lambda i: (norms[i], -i))]
    while len(out) < k:
        d2 = [0.0 if i in out else min(sq(points[i], points[c]) for c in out) for i in range(n)]
        total = 0.0
        for v in d2:
            total += v
        if total <= 0:
            out += [i for i in range(n) if i not in out][: k - len(out)]
            break
        u = rng.random() * total
        running = 0.0
        for i in range(n):
            running += d2[i]
            if running > u:
                out.append(i)
                break
        else:
            out.append(max(i for i in range(n) if d2[i] > 0))
    return out


def naive_diverse(
    scores: list[float], points: list[list[float]], k: int, method: str, pool: int | None, seed: int
) -> list[int]:
    order = [i for i in naive_order(scores) if math.isfinite(scores[i])]
    size = min(len(scores), 4 * k) if pool is None else pool
    cand = order[:size]
    sub = [points[i] for i in cand]
    if method == "k-center":
        local = [0] + naive_k_center(sub, k - 1, seed, initial=(0,))
    else:
        local = naive_kmeans_pp(sub, k, seed)
    return [cand[j] for j in local]


def naive_random(n: int, k: int, seed: int) -> list[int]:
    rng = np.random.default_rng(seed)
    keys = [rng.random() for _ in range(n)]
    return sorted(range(n), key=lambda i: (keys[i], i))[: min(k, n)]


def covering_radius(points: np.ndarray, centres: list[int]) -> float:
    return max(min(math.sqrt(sq(list(p), list(points[c]))) for c in centres) for p in points)


def quiet(fn, *args, **kwargs):
    """Call fn with SelectionWarnings silenced (tests of warnings use pytest.warns instead)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionWarning)
        return fn(*args, **kwargs)


def random_scores(rng: np.random.Generator, n: int, ties: bool, nonfinite: bool) -> np.ndarray:
    s = rng.integers(0, 4, n).astype(float) if ties else rng.normal(size=n)
    if nonfinite and n:
        s[rng.choice(n, size=max(1, n // 5), replace=False)] = rng.choice(
            [np.nan, np.inf, -np.inf], max(1, n // 5)
        )
    return s


# ---- top_k / threshold ----


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("nonfinite", [False, True])
def test_top_k_and_threshold_match_naive(ties, nonfinite):
    rng = np.random.default_rng(1)
    for n in (0, 1, 7, 40):
        s = random_scores(rng, n, ties, nonfinite)
        for k in (0, 1, 3, n, n + 2):
            got = quiet(top_k, s, k)
            assert got.dtype == np.int64
            assert got.tolist() == naive_top_k(s.tolist(), k)
        for m in (-1.0, 0.0, 1.5, 2.0):
            assert quiet(threshold, s, m).tolist() == naive_threshold(s.tolist(), m)


score_lists = st.lists(
    st.floats(allow_nan=True, allow_infinity=True, width=64)
    | st.sampled_from([0.0, 1.0, np.nan, np.inf, -np.inf]),
    max_size=30,
)


@settings(max_examples=150, deadline=None)
@given(scores=score_lists, k=st.integers(0, 35), strata_seed=st.integers(0, 2**16))
def test_rankings_never_put_nonfinite_first(scores, k, strata_seed):
    s = np.array(scores, dtype=float)
    n = len(s)
    nonfinite = int((~np.isfinite(s)).sum())
    strata = np.random.default_rng(strata_seed).integers(0, 3, n).tolist()
    for got in (
        _record(top_k, s, k),
        _record(stratified_top_k, s, strata, k),
    ):
        result, caught = got
        assert len(result) == min(k, n)
        assert len(set(result.tolist())) == len(result)
        finite_flags = np.isfinite(s[result])
        # every finite row comes before every non-finite one, and non-finite rows are only taken
        # when the finite rows have run out
        assert finite_flags.tolist() == sorted(finite_flags.tolist(), reverse=True)
        assert (~finite_flags).sum() == max(0, min(k, n) - (n - nonfinite))
        assert (np.diff(s[result[finite_flags]]) <= 0).all()
        texts = [str(w.message) for w in caught]
        assert any(f"{nonfinite} of {n} rows have non-finite scores" in t for t in texts) == (nonfinite > 0)
        assert any("exceeds" in t for t in texts) == (k > n > 0)
    result, _ = _record(top_k, s, k)
    assert result.tolist() == naive_top_k(scores, k)
    result, _ = _record(threshold, s, 0.0)
    assert result.tolist() == naive_threshold(scores, 0.0)
    assert np.isfinite(s[result]).all()


def _record(fn, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args)
    return result, caught


def test_nonfinite_warning_names_at_most_five_ids():
    s = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, np.nan, 3.0, np.nan, np.nan, np.nan])
    ids = [f"s{i}" for i in range(len(s))]
    with pytest.warns(SelectionWarning, match="7 of 10 rows have non-finite scores") as rec:
        got = top_k(s, 4, ids=ids)
    assert got.tolist() == [6, 2, 0, 1]
    msg = str(rec[0].message)
    assert "ids s1, s3, s4, s5, s7, ..." in msg
    assert "s8" not in msg
    with pytest.warns(SelectionWarning, match="rows 1, 3, 4, 5, 7, ..."):
        top_k(s, 1)


def test_threshold_property_and_errors():
    rng = np.random.default_rng(3)
    s = random_scores(rng, 50, ties=True, nonfinite=True)
    with pytest.warns(SelectionWarning, match="never selected"):
        got = threshold(s, 2.0)
    assert (s[got] >= 2.0).all()
    rest = np.setdiff1d(np.arange(50), got)
    assert not (np.isfinite(s[rest]) & (s[rest] >= 2.0)).any()
    assert np.isposinf(s).any() and not np.isposinf(s[got]).any()
    with pytest.raises(AcqsynthError, match="min_score"):
        threshold(s, float("nan"))


def test_k_larger_than_n_selects_all_with_warning():
    with pytest.warns(SelectionWarning, match="k=5 exceeds the 3 rows"):
        assert top_k([0.1, 0.3, 0.2], 5).tolist() == [1, 2, 0]
    with pytest.warns(SelectionWarning, match="exceeds"):
        assert sorted(random_k(3, 9, seed=0).tolist()) == [0, 1, 2]


def test_empty_input_gives_empty_result():
    e = np.empty((0, 4))
    for got in (
        top_k([], 3),
        threshold([], 0.0),
        stratified_top_k([], [], 3),
        k_center(e, 2, seed=0),
        kmeans_pp(e, 2, seed=0),
        diverse_top_k([], e, 2),
        random_k(0, 2, seed=0),
        select(SelectionConfig(k=2), []),
    ):
        assert got.dtype == np.int64 and got.shape == (0,)


def test_bad_arguments_are_named():
    s = np.arange(4.0)
    emb = np.zeros((4, 2))
    cases = [
        (lambda: top_k(s, -1), "k must be >= 0"),
        (lambda: top_k(s, 1.5), "k must be an integer"),
        (lambda: top_k(np.zeros((2, 2)), 1), "scores must be a 1-D"),
        (lambda: top_k(s, 1, ids=["a"]), "ids has 1 entries"),
        (lambda: stratified_top_k(s, ["a"], 1), "strata has 1 entries"),
        (lambda: stratified_top_k(s, [[1], [2], [3], [4]], 1), "hashable"),
        (lambda: k_center(s, 1, seed=0), "embeddings must be a 2-D"),
        (lambda: k_center(emb, 1, seed=0, initial=[4]), "initial holds indices"),
        (lambda: kmeans_pp(emb, -2, seed=0), "k must be >= 0"),
        (lambda: diverse_top_k(s, np.zeros((3, 2)), 1), "embeddings has 3 rows"),
        (lambda: diverse_top_k(s, emb, 3, pool=2), r"pool \(2\) must be at least k \(3\)"),
        (lambda: diverse_top_k(s, emb, 1, method="badge"), "Valid diverse methods: k-center, kmeans\\+\\+"),
        (lambda: random_k(-1, 1, seed=0), "n must be >= 0"),
    ]
    for call, match in cases:
        with pytest.raises(AcqsynthError, match=match):
            call()


# ---- stratified ----


def test_allocate_matches_naive_and_respects_caps():
    rng = np.random.default_rng(4)
    for _ in range(300):
        g = int(rng.integers(1, 6))
        sizes = rng.integers(1, 12, g).tolist()
        caps = [int(rng.integers(0, s + 1)) for s in sizes]
        k = int(rng.integers(0, sum(sizes) + 3))
        got = allocate(k, sizes, caps)
        assert got.tolist() == naive_allocate(k, sizes, caps)
        assert got.sum() == min(k, sum(caps))
        assert (got <= np.array(caps)).all() and (got >= 0).all()


@pytest.mark.parametrize("nonfinite", [False, True])
def test_stratified_matches_naive(nonfinite):
    rng = np.random.default_rng(5)
    for n in (1, 9, 30):
        s = random_scores(rng, n, ties=True, nonfinite=nonfinite)
        strata = [["x", "y", None, 3][int(j)] for j in rng.integers(0, 4, n)]
        for k in (0, 1, 4, n, n + 1):
            assert quiet(stratified_top_k, s, strata, k).tolist() == naive_stratified(s.tolist(), strata, k)


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 15), min_size=1, max_size=6),
    k_frac=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_stratified_allocation_is_proportional(sizes, k_frac, seed):
    n = sum(sizes)
    k = round(k_frac * n)
    rng = np.random.default_rng(seed)
    strata = rng.permutation(np.repeat(np.arange(len(sizes)), sizes)).tolist()
    s = rng.normal(size=n)
    got = stratified_top_k(s, strata, k)
    assert len(got) == k == len(set(got.tolist()))
    picked = [strata[i] for i in got]
    for g, size in enumerate(sizes):
        quota = Fraction(k * size, n)
        assert math.floor(quota) <= picked.count(g) <= math.ceil(quota)
        # within a stratum the chosen rows are its best ones
        members = sorted((i for i in range(n) if strata[i] == g), key=lambda i: -s[i])
        assert sorted(i for i in got if strata[i] == g) == sorted(members[: picked.count(g)])
    assert (np.diff(s[got]) <= 0).all()


def test_stratified_ties_go_to_first_stratum_and_surplus_is_redistributed():
    # two strata of one row each and k=1: equal remainders, the first-appearing stratum ("b") wins
    assert stratified_top_k([1.0, 5.0], ["b", "a"], 1).tolist() == [0]
    # stratum "a" would get 2 of 4 but has only one finite score: its surplus moves to "b"
    s = [9.0, np.nan, 1.0, 2.0, 3.0, 4.0, np.nan, np.nan]
    strata = ["a", "a", "b", "b", "b", "b", "a", "a"]
    with pytest.warns(SelectionWarning, match="3 of 8 rows"):
        assert stratified_top_k(s, strata, 4).tolist() == [0, 5, 4, 3]


@settings(max_examples=100, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 15), min_size=1, max_size=5),
    weights=st.lists(st.integers(0, 9), min_size=5, max_size=5),
    k_frac=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_stratified_with_proportions_splits_k_by_them(sizes, weights, k_frac, seed):
    """`proportions` (e.g. the eval split's mix) decide the split in place of the strata's sizes: each
    stratum gets its Hamilton share of k among the weighted strata, capped at its rows, the surplus
    re-split; unweighted strata only fill what the weighted ones cannot."""
    n = sum(sizes)
    k = round(k_frac * n)
    rng = np.random.default_rng(seed)
    strata = rng.permutation(np.repeat(np.arange(len(sizes)), sizes)).tolist()
    order = list(dict.fromkeys(strata))
    props = {g: weights[g] for g in range(len(sizes))}
    props[99] = 3  # a stratum with no candidates: its share is re-split over the others
    if not any(props[g] for g in order):
        props[order[0]] = 1
    s = rng.normal(size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SelectionWarning)
        got = stratified_top_k(s, strata, k, proportions=props)
    assert len(got) == k == len(set(got.tolist()))
    picked = [strata[i] for i in got]
    weighted = [g for g in order if props[g] > 0]
    want = allocate(k, [props[g] for g in weighted] + [3], [sizes[g] for g in weighted] + [0])
    short = k - int(want.sum())
    for g, count in zip(weighted, want[:-1], strict=True):
        assert picked.count(g) == count
    assert sum(picked.count(g) for g in order if props[g] == 0) == short
    for g in order:  # within a stratum the chosen rows are its best ones
        members = sorted((i for i in range(n) if strata[i] == g), key=lambda i: -s[i])
        assert sorted(i for i in got if strata[i] == g) == sorted(members[: picked.count(g)])
    assert (np.diff(s[got]) <= 0).all()


def test_stratified_with_proportions_by_hand():
    s = [8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    strata = ["+", "+", "+", "+", "+", "+", "/", "z"]
    # the eval's mix is 1:1 over + and /, but / has one row: + takes the rest; z (no count) is not taken
    assert stratified_top_k(s, strata, 4, proportions={"+": 250, "/": 250}).tolist() == [0, 1, 2, 6]
    # more than the counted strata hold: the best of the others fill up, with a warning
    with pytest.warns(SelectionWarning, match="1 rows taken from other strata"):
        assert stratified_top_k(s, strata, 8, proportions={"+": 1, "/": 1}).tolist() == list(range(8))
    # two rows: one per stratum of the mix; without proportions the split is by the strata's sizes, as before
    assert stratified_top_k(s, strata, 2, proportions={"+": 250, "/": 250}).tolist() == [0, 6]
    assert stratified_top_k(s, strata, 2).tolist() == [0, 1]
    with pytest.raises(AcqsynthError, match="give at least one stratum a positive count"):
        stratified_top_k(s, strata, 2, proportions={"+": 0})
    with pytest.raises(AcqsynthError, match="count of stratum '/' must be >= 0"):
        stratified_top_k(s, strata, 2, proportions={"+": 1, "/": -1})
    config = SelectionConfig(method="stratified", k=4, stratify_by="operation")
    assert select(config, s, strata=strata, proportions={"+": 1, "/": 1}).tolist() == [0, 1, 2, 6]


# ---- k-center ----


def grid_points(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    """Small-integer points: many exact ties and duplicates, so tie-breaking is exercised."""
    return rng.integers(-2, 3, (n, d)).astype(float)


@pytest.mark.parametrize("kind", ["gauss", "grid"])
def test_k_center_matches_naive(kind):
    rng = np.random.default_rng(6)
    for n, d in ((1, 2), (12, 3), (25, 2)):
        x = rng.normal(size=(n, d)) if kind == "gauss" else grid_points(rng, n, d)
        for k in (0, 1, 4, n):
            for seed in (0, 7):
                assert quiet(k_center, x, k, seed).tolist() == naive_k_center(x.tolist(), k, seed)
            initial = tuple(int(i) for i in rng.choice(n, size=min(2, n), replace=False))
            got = quiet(k_center, x, k, 0, initial=initial)
            assert got.tolist() == naive_k_center(x.tolist(), k, 0, initial)
            assert not set(got.tolist()) & set(initial)


def test_k_center_ties_go_to_lowest_index():
    x = np.array([[0.0], [-1.0], [1.0], [0.5]])
    assert k_center(x, 1, seed=0, initial=[0]).tolist() == [1]
    assert k_center(x, 3, seed=0, initial=[0]).tolist() == [1, 2, 3]


def test_k_center_covers_within_twice_the_optimum():
    for trial in range(15):
        rng = np.random.default_rng(100 + trial)
        x = rng.normal(size=(9, 2)) * rng.uniform(0.1, 3.0, 2)
        k = 3
        optimum = min(covering_radius(x, list(c)) for c in itertools.combinations(range(9), k))
        for seed in range(3):
            chosen = k_center(x, k, seed)
            assert len(set(chosen.tolist())) == k
            assert covering_radius(x, chosen.tolist()) <= 2 * optimum + 1e-12


def test_k_center_duplicates_and_nonfinite_rows():
    x = np.array([[0.0, 0.0]] * 3 + [[1.0, 1.0]] * 2 + [[np.nan, 0.0]])
    with pytest.warns(SelectionWarning, match="1 of 6 rows have non-finite embeddings"):
        got = k_center(x, 6, seed=0, ids=list("abcdef"))
    assert sorted(got.tolist()) == list(range(6))
    assert got[-1] == 5
    assert k_center(x[:5], 2, seed=0, initial=[0]).tolist() == [3, 1]
    # all rows identical: after the start every distance is 0 and the lowest unused indices follow
    same = np.ones((6, 2))
    assert k_center(same, 3, seed=0, initial=[0]).tolist() == [1, 2, 3]
    first = int(np.random.default_rng(5).integers(6))
    assert k_center(same, 3, seed=5).tolist() == [first] + [i for i in range(6) if i != first][:2]


# ---- k-means++ ----


@pytest.mark.parametrize("kind", ["gauss", "grid"])
def test_kmeans_pp_matches_naive(kind):
    rng = np.random.default_rng(8)
    for n, d in ((1, 3), (15, 2), (40, 4)):
        x = rng.normal(size=(n, d)) if kind == "gauss" else grid_points(rng, n, d)
        for k in (0, 1, 5, n):
            for seed in (0, 1, 2):
                assert quiet(kmeans_pp, x, k, seed).tolist() == naive_kmeans_pp(x.tolist(), k, seed)


def test_kmeans_pp_starts_at_largest_norm_and_skips_duplicates():
    rng = np.random.default_rng(9)
    x = rng.normal(size=(30, 5))
    assert kmeans_pp(x, 1, seed=0).tolist() == [int(np.argmax(np.linalg.norm(x, axis=1)))]
    base = np.array([[3.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    x = base[np.arange(30) % 3]
    for seed in range(40):
        got = kmeans_pp(x, 3, seed)
        assert sorted(x[got].tolist()) == sorted(base.tolist())  # one row per distinct point
        assert got[0] == 0
        assert kmeans_pp(x, 6, seed).tolist()[3:] == [i for i in range(30) if i not in got][:3]


def test_kmeans_pp_samples_proportional_to_squared_distance():
    # after the largest-norm row A, B is 3 away and C is 1 away: P(B) = 9 / 10
    x = np.array([[10.0, 0.0], [7.0, 0.0], [9.0, 0.0]])
    seconds = [int(kmeans_pp(x, 2, seed)[1]) for seed in range(1000)]
    assert 860 <= seconds.count(1) <= 940
    assert seconds.count(1) + seconds.count(2) == 1000


def test_kmeans_pp_and_random_depend_on_seed_only():
    x = np.random.default_rng(10).normal(size=(50, 3))
    assert kmeans_pp(x, 6, 3).tolist() == kmeans_pp(x, 6, 3).tolist()
    assert len({tuple(kmeans_pp(x, 6, seed).tolist()) for seed in range(10)}) > 1
    assert random_k(50, 6, 3).tolist() == random_k(50, 6, 3).tolist()
    assert len({tuple(random_k(50, 6, seed).tolist()) for seed in range(10)}) > 1


def test_kmeans_pp_nonfinite_rows_come_last():
    x = np.array([[1.0, 0.0], [np.inf, 0.0], [0.0, 2.0], [np.nan, np.nan]])
    with pytest.warns(SelectionWarning, match="2 of 4 rows have non-finite embeddings.*: rows 1, 3$"):
        got = kmeans_pp(x, 3, seed=0)
    assert got.tolist() == [2, 0, 1]


# ---- diverse top-k ----


@pytest.mark.parametrize("method", ["k-center", "kmeans++"])
def test_diverse_top_k_matches_naive(method):
    rng = np.random.default_rng(11)
    for n in (1, 10, 40):
        s = random_scores(rng, n, ties=True, nonfinite=False)
        x = rng.normal(size=(n, 3))
        for k in (1, 3, n):
            for pool in (None, k, min(n, k + 5)):
                for seed in (0, 4):
                    got = quiet(diverse_top_k, s, x, k, method=method, pool=pool, seed=seed)
                    assert got.tolist() == naive_diverse(s.tolist(), x.tolist(), k, method, pool, seed)


def test_diverse_top_k_properties():
    rng = np.random.default_rng(12)
    s = rng.normal(size=60)
    s[[3, 17]] = [np.nan, np.inf]
    x = rng.normal(size=(60, 4))
    x[5] = np.nan
    usable = [i for i in naive_order(s.tolist()) if i not in (3, 5, 17)]
    pool_rows = set(usable[:20])
    for method in ("k-center", "kmeans++"):
        with pytest.warns(SelectionWarning):
            got = diverse_top_k(s, x, 5, method=method, pool=20, ids=[f"r{i}" for i in range(60)])
        assert len(set(got.tolist())) == 5
        assert set(got.tolist()) <= pool_rows
    with pytest.warns(SelectionWarning):
        assert diverse_top_k(s, x, 1, method="k-center").tolist() == [usable[0]]
        # more rows than usable ones: the usable rows first, then the rest in score order
        got = diverse_top_k(s, x, 60, method="kmeans++")
    assert sorted(got.tolist()) == list(range(60))
    assert got[-3:].tolist() == [5, 3, 17]


# ---- random ----


def test_random_k_matches_naive_and_is_uniform():
    for n, k, seed in ((1, 1, 0), (10, 3, 1), (57, 20, 2), (5, 5, 3)):
        assert random_k(n, k, seed).tolist() == naive_random(n, k, seed)
    counts = np.zeros(10)
    for seed in range(2000):
        got = random_k(10, 3, seed)
        assert len(set(got.tolist())) == 3
        counts[got] += 1
    assert (np.abs(counts - 600) < 90).all()


# ---- config and dispatch ----


def test_select_dispatches_to_each_method():
    rng = np.random.default_rng(13)
    s = rng.normal(size=30)
    x = rng.normal(size=(30, 3))
    strata = rng.integers(0, 3, 30).tolist()
    expected = {
        "top-k": top_k(s, 5),
        "threshold": threshold(s, 0.5)[:5],
        "stratified": stratified_top_k(s, strata, 5),
        "diverse": diverse_top_k(s, x, 5, method="kmeans++", pool=12, seed=3),
        "kmeans++": kmeans_pp(x, 5, 3),
        "k-center": k_center(x, 5, 3),
        "random": random_k(30, 5, 3),
        "quantile": quantile_k(s, 5, 2, 3, 3),
    }
    assert set(expected) == set(METHODS)
    for method, want in expected.items():
        config = SelectionConfig(
            method=method, k=5, min_score=0.5, diverse_method="kmeans++", pool=12, seed=3, quantile=2, quantiles=3
        )
        assert select(config, s, embeddings=x, strata=strata).tolist() == want.tolist()
    assert (
        select(SelectionConfig(method="threshold", min_score=0.5), s).tolist() == threshold(s, 0.5).tolist()
    )


def test_select_reports_unknown_method_and_missing_inputs():
    s = np.arange(5.0)
    with pytest.raises(
        AcqsynthError, match="Did you mean 'top-k'.*Valid selection methods: diverse, k-center"
    ):
        select(SelectionConfig(method="topk", k=2), s)
    cases = [
        (SelectionConfig(method="top-k"), {}, "'top-k' needs k"),
        (SelectionConfig(method="threshold", k=2), {}, "needs min_score"),
        (
            SelectionConfig(method="stratified", k=2, stratify_by="topic"),
            {},
            "needs strata \\(values of 'topic'",
        ),
        (SelectionConfig(method="diverse", k=2), {}, "'diverse' needs embeddings"),
        (SelectionConfig(method="kmeans++", k=2), {}, "needs embeddings"),
        (SelectionConfig(method="k-center", k=2), {"embeddings": np.zeros((4, 2))}, "embeddings has 4 rows"),
        (
            SelectionConfig(method="diverse", k=2, diverse_method="vendi"),
            {"embeddings": np.zeros((5, 2))},
            "Valid diverse methods",
        ),
    ]
    for config, kwargs, match in cases:
        with pytest.raises(AcqsynthError, match=match):
            select(config, s, **kwargs)


def test_quantile_k_draws_from_one_score_bin():
    s = np.arange(20, dtype=float)[::-1].copy()  # row i has score 19 - i
    for q, rows in [(1, range(15, 20)), (2, range(10, 15)), (3, range(5, 10)), (4, range(0, 5))]:
        got = quantile_k(s, 3, q, 4, seed=1)
        assert len(got) == 3 and set(got.tolist()) <= set(rows)
    assert sorted(quantile_k(s, 10, 4, 4, seed=0).tolist()) == [0, 1, 2, 3, 4]  # capped at the bin size
    assert quantile_k(s, 3, 2, 4, seed=5).tolist() == quantile_k(s, 3, 2, 4, seed=5).tolist()
    with pytest.raises(AcqsynthError, match="quantile must be in 1..4"):
        quantile_k(s, 3, 5, 4, seed=0)
    with pytest.raises(AcqsynthError, match="needs quantile"):
        select(SelectionConfig(method="quantile", k=3), s)
