"""Hygiene: normalisation, exact / n-gram / embedding hits, incremental indexes, and the batch
deduplication + decontamination with its order of reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from embedders import HashingEmbedder, TableEmbedder

from acqsynth.generation.hygiene import (
    Hit,
    HygieneConfig,
    HygieneIndex,
    deduplicate_and_decontaminate,
    normalise_text,
    text_hash,
    word_ngrams,
)

QUESTIONS = [
    "Maria buys 3 notebooks at $4 each and a pen for $2. How much does she spend in total?",
    "A train travels 240 miles in 4 hours. What is its average speed in miles per hour?",
    "Tom has 18 apples. He gives a third of them to his sister and eats 2. How many apples are left?",
    "A rectangle is 12 cm long and 5 cm wide. What is its perimeter?",
    "Lena reads 25 pages a day. How many days does she need to finish a 300-page book?",
    "A bakery sells 120 muffins on Monday and twice as many on Tuesday. How many muffins did it sell on both days?",
    "Jake saves $15 every week. How many weeks will it take him to save $180 for a bike?",
    "There are 28 students in a class and 4 of them are absent. What fraction of the class is present?",
    "A farmer plants 7 rows of corn with 32 plants in each row. How many corn plants are there?",
    "The price of a jacket is $80. It is on sale for 25% off. What is the sale price?",
    "Sam runs 3 laps around a 400-meter track each morning. How many kilometers does he run in a week?",
    "A pizza is cut into 8 slices. If 3 friends each eat 2 slices, how many slices remain?",
    "Olivia is 4 years older than her brother, who is 9. How old will Olivia be in 5 years?",
    "A water tank holds 500 liters and is 40% full. How many more liters are needed to fill it?",
    "Each box holds 24 pencils. How many boxes are needed to pack 300 pencils?",
    "A car uses 6 liters of fuel per 100 km. How much fuel does it use on a 450 km trip?",
    "Nina earns $12 an hour and works 35 hours a week. What are her weekly earnings?",
    "A garden has roses and tulips in the ratio 3 to 5. If there are 40 flowers, how many are tulips?",
    "Ben scored 78, 85 and 92 on three tests. What is his average score?",
    "A movie starts at 7:45 pm and lasts 2 hours and 20 minutes. When does it end?",
]
"""Twenty distinct word problems, several on shared topics (money, rates, fractions)."""
IDS = [f"q/{i}" for i in range(len(QUESTIONS))]
TOM = QUESTIONS[2]
TOM_NUMBER_CHANGED = TOM.replace("18 apples", "21 apples")
TOM_REWORDED = "Tom has 18 apples. A third of them he gives to his sister and he eats 2. How many apples are left?"
"""No 8-gram in common with TOM; HashingEmbedder cosine 0.906."""


def make_index(
    texts: list[str], name: str = "seed-pool", config: HygieneConfig | None = None, embedder=None, prefix: str = "s"
) -> HygieneIndex:
    index = HygieneIndex(name, config or HygieneConfig(), embedder)
    index.add([f"{prefix}/{i}" for i in range(len(texts))], texts)
    return index


# --- normalisation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("How MANY Apples?", "how many apples"),
        ("Wait... what?!  (yes) -- no;", "wait what yes no"),
        ("ＨＯＷ　ｍａｎｙ １２３", "how many 123"),  # full-width letters, digits and space (NFKC)
        ("  a\tb\n\n c  ", "a b c"),
        ("<b>Bold</b> &amp; <i>it</i><br/>", "bold it"),
        ('<question>Hi</question> <a href="x">y</a>', "hi y"),
        ("If x <y and z> 3", "if x y and z 3"),  # an inequality, not a tag: its words stay
        ("Jana's 1,000 dogs don’t bark", "janas 1000 dogs dont bark"),
        ("Straße", "strasse"),  # casefold, not lower
        ("snake_case x_y", "snake case x y"),
        ("", ""),
        ("?!...", ""),
    ],
)
def test_normalise_text(text, expected):
    assert normalise_text(text) == expected


def test_text_hash_ignores_case_punctuation_width_and_spacing():
    variants = [TOM, TOM.upper(), TOM.replace(".", " . "), "  " + TOM.replace(" ", "   ") + "\n", TOM.replace("18", "１８")]
    assert len({text_hash(v) for v in variants}) == 1
    assert text_hash(TOM) != text_hash(TOM_NUMBER_CHANGED)
    assert len(text_hash(TOM)) == 16
    assert all(c in "0123456789abcdef" for c in text_hash(TOM))


def test_word_ngrams():
    assert word_ngrams("A b c d", 2) == {("a", "b"), ("b", "c"), ("c", "d")}
    assert word_ngrams("A b, c!", 3) == {("a", "b", "c")}
    assert word_ngrams("Only three words", 8) == {("only", "three", "words")}  # shorter than n: one gram
    assert word_ngrams("", 8) == set()
    assert word_ngrams(" ... ", 8) == set()
    assert len(word_ngrams(TOM, 8)) == len(normalise_text(TOM).split()) - 7
    with pytest.raises(ValueError):
        word_ngrams("a b", 0)


# --- index hits ------------------------------------------------------------------------------------


def test_exact_duplicate_after_normalisation():
    index = make_index(QUESTIONS)
    hits = index.check([TOM.upper().replace("?", " ??"), QUESTIONS[5]])
    assert hits[0] == Hit("exact", "s/2", TOM, 1.0)
    assert hits[1] == Hit("exact", "s/5", QUESTIONS[5], 1.0)


def test_exact_hit_names_the_first_item_with_that_text():
    index = HygieneIndex("seed-pool", HygieneConfig())
    index.add(["a", "b"], ["What is 2 + 2?", "what is 2 2"])
    assert index.check(["WHAT IS 2+2"])[0] == Hit("exact", "a", "What is 2 + 2?", 1.0)
    assert len(index) == 2


def test_one_number_changed_is_an_ngram_hit():
    index = make_index(QUESTIONS)  # no embedder: exact and n-gram checks only
    (hit,) = index.check([TOM_NUMBER_CHANGED])
    assert hit is not None and hit.kind == "ngram" and hit.item_id == "s/2" and hit.item_text == TOM
    grams = word_ngrams(TOM_NUMBER_CHANGED, 8)
    assert hit.score == pytest.approx(len(grams & word_ngrams(TOM, 8)) / len(grams))
    assert 0.5 < hit.score < 1.0


def test_ngram_score_is_the_fraction_of_the_candidates_grams_and_respects_min_overlap():
    item = "one two three four five six seven eight nine ten eleven twelve"
    candidate = "one two three four five six seven eight nine ten zz yy"  # 5 grams of 8, 3 shared
    index = make_index([item], config=HygieneConfig(ngram_n=8, ngram_min_overlap=0.0))
    (hit,) = index.check([candidate])
    assert hit is not None and hit.kind == "ngram" and hit.score == pytest.approx(3 / 5)
    strict = make_index([item], config=HygieneConfig(ngram_n=8, ngram_min_overlap=0.6))
    assert strict.check([candidate]) == [None]  # 0.6 is not above 0.6
    looser = make_index([item], config=HygieneConfig(ngram_n=8, ngram_min_overlap=0.59))
    assert looser.check([candidate])[0] is not None


def test_ngram_hit_names_the_item_sharing_most():
    base = "the farmer sold twelve baskets of ripe red apples at the market on sunday morning"
    partial = "the farmer sold twelve baskets of ripe red apples and then went home to rest"
    index = HygieneIndex("seed-pool", HygieneConfig(ngram_n=4, ngram_min_overlap=0.0))
    index.add(["partial", "base"], [partial, base])
    (hit,) = index.check([base + " again"])
    assert hit is not None and hit.kind == "ngram" and hit.item_id == "base"


def test_short_texts():
    index = make_index(["What is 2 + 2?", "Name a prime number.", "Add 7 and 5."])
    hits = index.check(["what is 2+2", "What is 2 + 3?", "Name a prime", "Subtract 5 from 7.", ""])
    assert hits[0] == Hit("exact", "s/0", "What is 2 + 2?", 1.0)
    # Shorter than n words: the one gram is the whole text, so only the same word sequence matches.
    assert hits[1:] == [None, None, None, None]


def test_distinct_questions_are_not_flagged():
    """False positives: twenty distinct problems, each checked against the other nineteen, with both
    embedding thresholds and the n-gram check."""
    embedder = HashingEmbedder()
    emb = embedder.encode(QUESTIONS)
    for i, question in enumerate(QUESTIONS):
        others = [j for j in range(len(QUESTIONS)) if j != i]
        index = HygieneIndex("eval:test", HygieneConfig(), embedder)
        index.add([IDS[j] for j in others], [QUESTIONS[j] for j in others], emb[others])
        assert index.check([question], emb[i : i + 1]) == [None]
        assert index.check([question], emb[i : i + 1], decontamination=True) == [None]
    kept, removals = deduplicate_and_decontaminate(
        QUESTIONS, IDS, seed_pool=None, evals=[], config=HygieneConfig(), embedder=embedder
    )
    assert kept == list(range(len(QUESTIONS))) and removals == []


def test_embedding_hit_and_separate_thresholds():
    """A paraphrase with no shared n-gram is found by embedding; cosine 0.85 is contamination
    (threshold 0.8) but not a duplicate (threshold 0.9)."""
    item, para, far = "Tom has 18 apples.", "How many fruits does Thomas keep?", "Name a river."
    dim = 16
    table = {item: np.eye(dim)[0], para: 0.85 * np.eye(dim)[0] + math.sqrt(1 - 0.85**2) * np.eye(dim)[1]}
    table[far] = np.eye(dim)[2]
    embedder = TableEmbedder(table)
    index = make_index([item], embedder=embedder)
    assert index.check([para, far]) == [None, None]
    hit, miss = index.check([para, far], decontamination=True)
    assert miss is None
    assert hit is not None and hit.kind == "embedding" and hit.item_id == "s/0" and hit.item_text == item
    assert hit.score == pytest.approx(0.85, abs=1e-5)
    loose = make_index([item], config=HygieneConfig(embedding_threshold=0.85 - 1e-4), embedder=embedder)
    assert loose.check([para])[0] is not None  # cosine at or above the threshold is a hit


def test_strongest_hit_wins():
    """exact > ngram > embedding, even when a weaker kind of hit names an item with a higher score."""
    twin = "Completely different wording here."
    embedder = TableEmbedder({TOM: np.eye(8)[0], twin: np.eye(8)[0]})  # cosine 1.0 between the two
    index = make_index([twin, TOM_NUMBER_CHANGED, TOM.upper()], embedder=embedder)
    assert index.check([TOM])[0] == Hit("exact", "s/2", TOM.upper(), 1.0)
    index = make_index([twin, TOM_NUMBER_CHANGED], embedder=embedder)
    hit = index.check([TOM])[0]
    assert hit is not None and hit.kind == "ngram" and hit.item_id == "s/1" and hit.score < 1.0
    index = make_index([twin, QUESTIONS[0]], embedder=embedder)
    assert index.check([TOM])[0] == Hit("embedding", "s/0", twin, pytest.approx(1.0))


def test_embedding_hit_names_the_nearest_item():
    embedder = HashingEmbedder()
    texts = ["Lena reads 25 pages each day of the week.", "Lena reads 25 pages each day.", "Sam runs 3 laps."]
    index = make_index(texts, config=HygieneConfig(embedding_threshold=0.5), embedder=embedder)
    query = "Lena reads 25 pages each day!! Really."
    (hit,) = index.check([query])
    sims = embedder.encode(texts) @ embedder.encode([query])[0]
    assert hit is not None and hit.kind == "embedding"
    assert hit.item_id == f"s/{int(np.argmax(sims))}" and hit.score == pytest.approx(float(sims.max()), abs=1e-6)
    assert sims.max() < 1.0 and sorted(sims)[-2] >= 0.5  # two items above the threshold: the nearest is named


def test_without_embedder_or_with_embeddings_disabled_only_text_checks_run():
    embedder = HashingEmbedder()
    off = HygieneConfig(embedding_threshold=None, decontam_embedding_threshold=0.0)
    index = make_index(QUESTIONS, config=off, embedder=embedder)
    assert embedder.calls == 0 and not index.uses_embeddings
    near = TOM_REWORDED
    assert index.check([near], decontamination=True) == [None] and embedder.calls == 0
    assert make_index(QUESTIONS).check([near], decontamination=True) == [None]
    assert make_index(QUESTIONS, embedder=embedder).check([near], decontamination=True)[0] is not None


def test_passed_embeddings_agree_with_computed_ones_and_avoid_encoding():
    embedder = HashingEmbedder()
    candidates = [TOM, TOM_NUMBER_CHANGED, TOM_REWORDED, "Hi", ""]
    computed = make_index(QUESTIONS, embedder=embedder)
    calls = embedder.calls
    hits_computed = computed.check(candidates, decontamination=True)
    assert embedder.calls == calls + 1  # one batched call for the texts without a text hit
    passed = HygieneIndex("seed-pool", HygieneConfig(), embedder)
    passed.add([f"s/{i}" for i in range(len(QUESTIONS))], QUESTIONS, embedder.encode(QUESTIONS))
    cand_emb = embedder.encode(candidates)
    calls = embedder.calls
    hits_passed = passed.check(candidates, cand_emb, decontamination=True)
    assert embedder.calls == calls
    assert hits_passed == hits_computed
    assert [h.kind if h else None for h in hits_passed] == ["exact", "ngram", "embedding", None, None]
    np.testing.assert_array_equal(passed.embeddings(), computed.embeddings())


def test_incremental_adds_match_one_add():
    embedder = HashingEmbedder()
    texts = [f"Item {i}: {q}" for i, q in enumerate(QUESTIONS * 5)]  # 100 items, past the first buffer size
    ids = [f"i/{k}" for k in range(len(texts))]
    whole = HygieneIndex("accepted", HygieneConfig(), embedder)
    whole.add(ids, texts)
    grown = HygieneIndex("accepted", HygieneConfig(), embedder)
    for k in range(0, len(texts), 7):
        grown.add(ids[k : k + 7], texts[k : k + 7])
    assert len(grown) == len(whole) == 100
    np.testing.assert_allclose(grown.embeddings(), whole.embeddings())
    np.testing.assert_allclose(grown.embeddings(), embedder.encode(texts), atol=1e-7)
    probes = ["item 57 " + QUESTIONS[17], "Item 99: something else entirely, about boats and rivers"]
    assert grown.check(probes) == whole.check(probes)
    assert grown.check(probes)[0] == Hit("exact", "i/57", texts[57], 1.0)


def test_empty_inputs():
    embedder = HashingEmbedder()
    index = HygieneIndex("accepted", HygieneConfig(), embedder)
    assert index.check([]) == [] and index.check(["anything", ""]) == [None, None]
    assert embedder.calls == 0  # nothing indexed: nothing to compare, nothing encoded
    index.add([], [])
    index.add([], [], np.zeros((0, 256), dtype=np.float32))
    assert len(index) == 0
    index.add(["e"], [""])
    assert index.check([""])[0] == Hit("exact", "e", "", 1.0)
    assert index.check([]) == []
    assert deduplicate_and_decontaminate([], [], seed_pool=index, evals=[index], config=HygieneConfig(), embedder=embedder) == ([], [])


def test_bad_shapes_are_errors():
    embedder = HashingEmbedder()
    index = HygieneIndex("seed-pool", HygieneConfig(), embedder)
    with pytest.raises(ValueError, match="ids"):
        index.add(["a"], ["x", "y"])
    with pytest.raises(ValueError, match="shape"):
        index.add(["a", "b"], ["x", "y"], np.zeros((3, 256), dtype=np.float32))
    index.add(["a"], ["x"])
    with pytest.raises(ValueError, match="width"):
        index.check(["z"], np.zeros((1, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="ids"):
        deduplicate_and_decontaminate(["x"], [], seed_pool=None, evals=[], config=HygieneConfig(), embedder=None)
    config = HygieneConfig(embedding_threshold=None, decontam_embedding_threshold=None)
    built_without = make_index(QUESTIONS, config=config, embedder=embedder)
    config.embedding_threshold = 0.9  # switched on after items were indexed without embeddings
    with pytest.raises(ValueError, match="without embeddings"):
        built_without.check(["something new"])
    with pytest.raises(ValueError, match="without embeddings"):
        built_without.add(["n"], ["something new"])


# --- batch deduplication and decontamination -------------------------------------------------------


def test_within_batch_duplicates_keep_the_first():
    texts = [QUESTIONS[0], QUESTIONS[1], QUESTIONS[0].upper(), TOM, TOM_NUMBER_CHANGED, QUESTIONS[1]]
    ids = [f"g/{i}" for i in range(len(texts))]
    kept, removals = deduplicate_and_decontaminate(
        texts, ids, seed_pool=None, evals=[], config=HygieneConfig(), embedder=HashingEmbedder()
    )
    assert kept == [0, 1, 3]
    assert [(r.index, r.against, r.hit.kind, r.hit.item_id) for r in removals] == [
        (2, "batch", "exact", "g/0"),
        (4, "batch", "ngram", "g/3"),
        (5, "batch", "exact", "g/1"),
    ]
    assert removals[0].reason == "duplicate of g/0 earlier in the batch (exact 1.00)"


def test_contamination_wins_then_seed_pool_then_earlier_texts():
    embedder = HashingEmbedder()
    eval_index = make_index(QUESTIONS[:5], name="eval:toy", embedder=embedder, prefix="toy/eval")
    seed = make_index([QUESTIONS[2], *QUESTIONS[5:10]], name="seed-pool", embedder=embedder, prefix="toy/seed")
    accepted = make_index([QUESTIONS[10]], name="accepted", embedder=embedder, prefix="gen/old")
    texts = [
        TOM,  # in eval and seed pool: contamination wins
        QUESTIONS[6].lower(),  # seed pool only
        QUESTIONS[10],  # accepted in an earlier batch
        QUESTIONS[15],  # new
        QUESTIONS[15] + " ",  # duplicate of the previous text
        QUESTIONS[0],  # eval, also a later duplicate of nothing kept
        QUESTIONS[16],  # new
    ]
    ids = [f"gen/{i}" for i in range(len(texts))]
    calls = embedder.calls
    kept, removals = deduplicate_and_decontaminate(
        texts, ids, seed_pool=seed, evals=[eval_index], config=HygieneConfig(), embedder=embedder, accepted=accepted
    )
    assert embedder.calls == calls + 1  # encoded once, shared by every index with the same embedder
    assert kept == [3, 6]
    got = {r.index: (r.against, r.hit.item_id, r.reason) for r in removals}
    assert [r.index for r in removals] == [0, 1, 2, 4, 5]
    assert got[0] == ("eval:toy", "toy/eval/2", "contaminated: toy/eval/2 in eval:toy (exact 1.00)")
    assert got[1] == ("seed-pool", "toy/seed/2", "duplicate of toy/seed/2 in seed-pool (exact 1.00)")
    assert got[2][:2] == ("accepted", "gen/old/0")
    assert got[4][:2] == ("batch", "gen/3")
    assert got[5][:2] == ("eval:toy", "toy/eval/0")
    assert len(seed) == 6 and len(accepted) == 1  # the indexes passed in are only read


def test_batch_with_passed_embeddings_matches_computed():
    embedder = HashingEmbedder()
    eval_index = make_index(QUESTIONS[:10], name="eval:toy", embedder=embedder)
    texts = [TOM_NUMBER_CHANGED, TOM_REWORDED, *QUESTIONS[10:]]
    ids = [f"g/{i}" for i in range(len(texts))]
    args = {"seed_pool": None, "evals": [eval_index], "config": HygieneConfig(), "embedder": embedder}
    computed = deduplicate_and_decontaminate(texts, ids, **args)
    emb = embedder.encode(texts)
    calls = embedder.calls
    passed = deduplicate_and_decontaminate(texts, ids, **args, embeddings=emb)
    assert embedder.calls == calls
    assert passed == computed
    assert [r.hit.kind for r in computed[1]] == ["ngram", "embedding"]
    assert computed[0] == list(range(2, len(texts)))


def test_batch_without_embedder_uses_text_checks():
    eval_index = make_index(QUESTIONS[:10], name="eval:toy")
    texts = [TOM_NUMBER_CHANGED, TOM_REWORDED]
    kept, removals = deduplicate_and_decontaminate(
        texts, ["a", "b"], seed_pool=None, evals=[eval_index], config=HygieneConfig(), embedder=None
    )
    assert kept == [1] and [(r.index, r.hit.kind) for r in removals] == [(0, "ngram")]
    assert removals[0].reason.startswith("contaminated: s/2 in eval:toy (ngram 0.")
