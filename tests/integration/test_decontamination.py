"""Decontamination and deduplication for real: the `minilm-l6` embedder against the GSM8K eval split.

Eval items pasted verbatim or lightly edited must all be caught; genuinely different GSM8K questions
(the seed and pool splits, disjoint from eval) show the false-positive rate. These numbers are the
measurements behind `HygieneConfig`'s defaults (see the docstring of acqsynth.generation.hygiene).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from acqsynth.data import load_data
from acqsynth.generation.hygiene import HygieneConfig, HygieneIndex, deduplicate_and_decontaminate

pytestmark = pytest.mark.integration

TEMPLATED_TWINS = {"gsm8k/558": "gsm8k/418", "gsm8k/488": "gsm8k/761"}
"""Pool items that are the same problem as an eval item with the unknown swapped (GSM8K's inverse
pairs: "Timothy's locker is 24 cubic inches. Zack's locker is half as big ..." / "... If Peter's
locker is 5 cubic inches, how big is Timothy's locker?"), sharing 39-46% of their 8-grams. A
generated question like that is rightly flagged, so they are not counted as clean."""
MAX_CLEAN_FLAGGED = 8
"""Measured 6 of the 817 clean seed + pool questions flagged against eval (0 of 132 seed, 6 of 685
pool: five at cosine 0.81-0.84, one sharing 6% of its 8-grams), a 0.7% false-positive rate; the limit
leaves room for 2 of the 13 pool questions at cosine 0.78-0.80 to cross 0.8 on another torch build."""
MIN_REWRITES_CAUGHT = 0.9
"""Measured 40 of 42 heavier rewrites (numbers, name and wording changed at once) caught (95%)."""
MAX_SEED_DUPLICATES_FLAGGED = 1
"""Measured 0 of 200 pool questions flagged as duplicates of the 132 seeds."""

_NOT_NAMES = {
    "The", "A", "An", "If", "How", "What", "He", "She", "They", "It", "In", "On", "At", "Each", "There",
    "Every", "His", "Her", "Their", "After", "Then", "When", "One", "Two", "Three", "Four", "Five", "Half",
    "This", "That", "For", "To", "Of", "Mr", "Mrs", "Ms", "Dr", "Monday", "Tuesday", "Wednesday",
    "Thursday", "Friday", "Saturday", "Sunday", "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December", "Some", "All", "Since", "While", "I",
    "You", "We", "Which", "Who", "Find", "Calculate", "But", "And", "So", "Last", "Next", "First",
}
"""Capitalised words that are not names (sentence starts, days, months)."""
SYNONYMS = {
    "buys": "purchases", "bought": "purchased", "has": "owns", "wants": "would like", "total": "overall",
    "each": "every", "many": "much", "more": "additional", "costs": "is priced at", "makes": "produces",
    "gets": "receives", "needs": "requires", "spent": "paid", "store": "shop", "cost": "price",
    "sells": "offers", "money": "cash", "takes": "needs", "days": "days in all", "does": "will",
}  # fmt: skip
_SENTENCE_END = re.compile(r"(?<=[.?!])\s+")


def change_numbers(q: str) -> str:
    return re.sub(r"\d+", lambda m: str(int(m.group()) + 3), q)


def change_name(q: str) -> str:
    """Every occurrence of the first proper name replaced by another one."""
    names = [w for w in re.findall(r"\b[A-Z][a-z]+\b", q) if w not in _NOT_NAMES]
    if not names:
        return "Priya asks: " + q
    return re.sub(rf"\b{names[0]}\b", "Priya" if names[0] != "Priya" else "Marcus", q)


def reorder(q: str) -> str:
    s = _SENTENCE_END.split(q.strip())
    if len(s) >= 2:
        s[0], s[1] = s[1], s[0]
    return " ".join(s)


def drop_clause(q: str) -> str:
    """The last clause of the first statement with a comma dropped, else the shortest statement."""
    s = _SENTENCE_END.split(q.strip())
    for k, sentence in enumerate(s[:-1]):
        if ", " in sentence:
            s[k] = sentence.rsplit(", ", 1)[0] + sentence[-1]
            return " ".join(s)
    if len(s) >= 3:
        del s[min(range(len(s) - 1), key=lambda k: len(s[k]))]
    elif ", " in s[-1]:
        rest = s[-1].split(", ", 1)[1]
        s[-1] = rest[:1].upper() + rest[1:]
    return " ".join(s)


def synonyms(q: str) -> str:
    """Up to four words replaced by synonyms."""
    count = 0

    def swap(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return SYNONYMS[m.group()] if count <= 4 else m.group()

    return re.sub(r"\b(" + "|".join(SYNONYMS) + r")\b", swap, q)


LIGHT_EDITS = {
    "verbatim": lambda q: q,
    "prefix": lambda q: "Question: " + q,
    "case+punctuation": lambda q: re.sub(r"[,.?!;:'\"$]", "", q.upper()) + " ?",
    "numbers": change_numbers,
    "name": change_name,
    "reorder": reorder,
    "drop clause": drop_clause,
    "synonyms": synonyms,
}


def rewrite(q: str) -> str:
    """A heavier edit: numbers, a name and some wording changed at once."""
    return synonyms(change_name(change_numbers(q)))


@pytest.fixture(scope="module")
def embedder():
    from acqsynth.models.embedder import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder("minilm-l6")


@pytest.fixture(scope="module")
def eval_split():
    return load_data("gsm8k", split="eval")


@pytest.fixture(scope="module")
def eval_index(embedder, eval_split) -> HygieneIndex:
    index = HygieneIndex("eval:gsm8k", HygieneConfig(), embedder)
    index.add(eval_split["id"][:], eval_split["question"][:])
    return index


def edited_items(split, edits, step: int) -> tuple[list[str], list[str], list[str]]:
    """(texts, source ids, edit names): every `step`-th item of `split`, the edits taken in turn."""
    names = list(edits)
    texts, sources, kinds = [], [], []
    for k, row in enumerate(split.select(range(0, len(split), step))):
        kind = names[k % len(names)]
        texts.append(edits[kind](row["question"]))
        sources.append(row["id"])
        kinds.append(kind)
    return texts, sources, kinds


def test_light_edits_of_eval_items_are_all_caught_with_few_false_positives(embedder, eval_split, eval_index):
    dirty, sources, kinds = edited_items(eval_split, LIGHT_EDITS, step=11)  # 46 items, 5-6 per edit
    clean_rows = [r for name in ("seed", "pool") for r in load_data("gsm8k", split=name)]
    clean = [r for r in clean_rows if r["id"] not in TEMPLATED_TWINS]
    assert len(dirty) >= 40 and len(clean) == 817
    texts = [r["question"] for r in clean]
    ids = [r["id"] for r in clean]
    for k, text in enumerate(dirty):  # mixed in, one edited eval item every ~18 clean ones
        at = k * len(texts) // len(dirty) + k
        texts.insert(at, text)
        ids.insert(at, f"generated/{k}")
    kept, removals = deduplicate_and_decontaminate(
        texts, ids, seed_pool=None, evals=[eval_index], config=HygieneConfig(), embedder=embedder
    )
    by_id = {ids[r.index]: r for r in removals}
    contaminated = {f"generated/{k}" for k in range(len(dirty))}
    missed = [(kinds[k], dirty[k]) for k in range(len(dirty)) if f"generated/{k}" not in by_id]
    wrong = [(i, r.hit.item_id) for i, r in by_id.items() if i in contaminated and r.against != "eval:gsm8k"]
    flagged = [(i, r.reason) for i, r in by_id.items() if i not in contaminated and r.against == "eval:gsm8k"]
    batch_dups = [(i, r.reason) for i, r in by_id.items() if i not in contaminated and r.against == "batch"]
    dirty_kinds = Counter(by_id[f"generated/{k}"].hit.kind for k in range(len(dirty)) if f"generated/{k}" in by_id)
    print(f"\nlight edits caught {len(dirty) - len(missed)}/{len(dirty)}; hit kinds {dict(dirty_kinds)}")
    print(f"clean flagged as contaminated: {len(flagged)}/{len(clean)}", *flagged, sep="\n  ")
    print(f"clean removed as duplicates within the batch: {len(batch_dups)}", *batch_dups, sep="\n  ")
    assert missed == [] and wrong == []
    for k, source in enumerate(sources):
        assert by_id[f"generated/{k}"].hit.item_id == source, (kinds[k], dirty[k])
    assert len(flagged) <= MAX_CLEAN_FLAGGED
    assert sorted(kept) == kept and len(kept) == len(texts) - len(removals)


def test_heavier_rewrites_are_mostly_caught(embedder, eval_split, eval_index):
    rows = eval_split.select(range(0, len(eval_split), 12))
    texts = [rewrite(q) for q in rows["question"]]
    hits = eval_index.check(texts, decontamination=True)
    caught = sum(h is not None and h.item_id == i for h, i in zip(hits, rows["id"], strict=True))
    print(f"\nheavier rewrites caught {caught}/{len(texts)}", dict(Counter(h.kind for h in hits if h)))
    assert caught >= MIN_REWRITES_CAUGHT * len(texts)


def test_light_edits_of_seeds_are_duplicates(embedder):
    seed = load_data("gsm8k", split="seed")
    seed_pool = HygieneIndex("seed-pool", HygieneConfig(), embedder)
    seed_pool.add(seed["id"][:], seed["question"][:])
    texts, sources, kinds = edited_items(seed, LIGHT_EDITS, step=3)  # 44 items
    emb = embedder.encode(texts)
    hits = seed_pool.check(texts, emb)
    missed = [(kinds[k], texts[k]) for k, h in enumerate(hits) if h is None or h.item_id != sources[k]]
    kinds_found = dict(Counter(h.kind for h in hits if h))
    print(f"\nlight edits of seeds caught as duplicates {len(texts) - len(missed)}/{len(texts)} {kinds_found}")
    assert missed == []
    others = load_data("gsm8k", split="pool")["question"][:200]
    flagged = [h for h in seed_pool.check(others) if h is not None]
    print(f"pool questions flagged as duplicates of seeds: {len(flagged)}/200")
    assert len(flagged) <= MAX_SEED_DUPLICATES_FLAGGED
