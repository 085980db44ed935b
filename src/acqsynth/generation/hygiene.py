"""Data hygiene for generated samples: exact and near-duplicate removal, and decontamination.

A `HygieneIndex` holds texts (a seed pool, the samples accepted so far, one evaluation split) for
three lookups: the SHA-256 of the normalised text (exact), word n-grams (near-verbatim copies with
small edits) and sentence embeddings (paraphrases; only with an embedder). `check` gives, for each
candidate, its strongest hit (exact > n-gram > embedding) naming the matching indexed item, so every
removal can be reported with its nearest item. Indexes grow incrementally: the generation pipeline
checks one batch at a time and adds what it accepts. `deduplicate_and_decontaminate` is the batch
form over a seed pool and evaluation splits.

Defaults of `HygieneConfig`, measured with `minilm-l6` on GSM8K (500 eval questions indexed; the
132 seed and 687 pool questions, disjoint from eval, as clean data; 42 eval questions each edited
eight ways: verbatim, a "Question:" prefix, upper case without punctuation, every number changed,
the first name changed everywhere, two sentences swapped, a clause dropped, four words replaced by
synonyms; tests/integration/test_decontamination.py repeats this on other items):

- n-grams: 8 words, a hit above 5% of the candidate's 8-grams shared with one item. 13-grams miss a
  question whose name, repeated five times, is changed (no 13-gram survives; cosine 0.74), 8-grams
  keep 10% of it. Distinct clean questions share at most 6% of their 8-grams with an eval question
  (one of 817, a boilerplate phrase); any-shared-8-gram (0.0) flags 6 clean questions instead of 1.
- embeddings, decontamination at cosine >= 0.8: every light edit above is caught (336/336, almost all
  already by hash or n-grams); of heavier rewrites (numbers, name and four words at once) 40/42 are
  caught at 0.8, 37/42 at 0.85. Clean questions flagged: 6 of 817 (0.7%; 0 of 132 seed): five at
  cosine 0.81-0.84, one by n-grams. Two further pool questions, GSM8K's inverse twins of eval items
  (same sentences, unknown swapped: 39-46% shared 8-grams), are flagged too, rightly.
- embeddings, duplicates at cosine >= 0.9: light edits of seed questions are all caught as seed-pool
  duplicates (44/44), and 0 of 200 pool questions are flagged against the seeds. Between two distinct
  GSM8K questions cosine >= 0.9 occurs only for templated twins (3 pairs in 1,319 questions). Within
  the 819 clean questions as one batch, 2 are removed as duplicates of earlier ones (an inverse twin,
  and a shared "calculate the total amount of money the company pays to" at 9% of 8-grams).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from acqsynth.errors import check_range
from acqsynth.models.interfaces import Embedder

_MARKUP = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*=[^<>]*)?\s*/?>|&[a-zA-Z]+;|&#\d+;")
"""HTML/XML tags and entities, removed (as spaces) before hashing and n-grams. A tag's attributes
need an `=`, so inequalities such as `x <y and z> 3` are kept."""
_JOINED = re.compile(r"(?<=\w)['’](?=\w)|(?<=\d),(?=\d{3}\b)")
"""Apostrophes inside words (`don't`, `Jana's`) and thousands separators (`1,000`): removed, not spaced."""
_NON_WORD = re.compile(r"[\W_]+")
"""Runs of anything but letters and digits (punctuation, symbols, whitespace, underscores)."""


def normalise_text(text: str) -> str:
    """NFKC, casefold, strip punctuation/markup to spaces, collapse whitespace. Used for hashing and n-grams.

    Apostrophes inside words and thousands separators are dropped rather than spaced, so `Jana's`
    and `Janas`, `1,000` and `1000` normalise alike."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _JOINED.sub("", _MARKUP.sub(" ", text))
    return _NON_WORD.sub(" ", text).strip()


def text_hash(text: str) -> str:
    """The first 16 hex digits of the SHA-256 of `normalise_text(text)`."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()[:16]


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """Word n-grams of normalise_text(text); a text shorter than n words gives one gram: all its words (non-empty texts only)."""
    if n < 1:
        raise ValueError(f"n-gram length must be at least 1, got {n}")
    words = normalise_text(text).split()
    if not words:
        return set()
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class Hit:
    """An indexed item that a candidate text matches."""

    kind: str
    """How it matched: `exact`, `ngram` or `embedding`."""
    item_id: str
    """Id of the matching (nearest) indexed item."""
    item_text: str
    """Text of that item."""
    score: float
    """1.0 for exact; for ngram the fraction of the candidate's n-grams found in that item; for
    embedding the cosine similarity."""


def _active(threshold: float | None) -> bool:
    return threshold is not None and threshold > 0


@dataclass
class HygieneConfig:
    """Thresholds for duplicate and contamination checks (defaults measured, see the module docstring).

    Decontamination has its own, lower embedding threshold: a missed contamination inflates an
    evaluation, while a dropped generated sample costs little; duplicates of seeds or of accepted
    samples are judged more strictly because generated data is meant to resemble its seeds in topic
    and form, and distinct questions on one topic reach cosine 0.8-0.85 (measured on GSM8K)."""

    ngram_n: int = 8
    """Words per n-gram."""
    ngram_min_overlap: float = 0.05
    """An n-gram hit when the fraction of the candidate's n-grams shared with one item is above this
    (0.0: any shared n-gram counts)."""
    ngram_min_shared: int = 2
    """...and at least this many n-grams are shared. One shared 8-gram is boilerplate more often
    than a copy: "which of the following is the most appropriate" is 1 of the 4 8-grams of a short
    MedMCQA question, 25% of it (seen in acceptance runs on 2026-11-22). A copied question shares
    many n-grams; a short edited one that shares fewer is left to the embedding check."""
    embedding_threshold: float | None = 0.9
    """Cosine similarity at or above which a candidate is a near-duplicate of a seed, accepted or
    earlier item (None or <= 0 disables the embedding check for duplicates)."""
    decontam_embedding_threshold: float | None = 0.8
    """Cosine similarity at or above which a candidate counts as contaminated by an evaluation item
    (None or <= 0 disables the embedding check for decontamination)."""

    def __post_init__(self) -> None:
        check_range("ngram_n", self.ngram_n, 1)
        check_range("ngram_min_overlap", self.ngram_min_overlap, 0, 1)
        check_range("ngram_min_shared", self.ngram_min_shared, 1)
        check_range("embedding_threshold", self.embedding_threshold, high=1)
        check_range("decontam_embedding_threshold", self.decontam_embedding_threshold, high=1)

    def threshold(self, decontamination: bool) -> float | None:
        """The embedding threshold for a duplicate check or a decontamination check (None: disabled)."""
        value = self.decontam_embedding_threshold if decontamination else self.embedding_threshold
        return value if _active(value) else None


class HygieneIndex:
    """Texts indexed for exact-hash, n-gram and embedding lookups."""

    def __init__(self, name: str, config: HygieneConfig, embedder: Embedder | None = None) -> None:
        self.name = name
        """Shown in removal reasons: `seed-pool`, `accepted`, `eval:gsm8k`, ..."""
        self.config = config
        """Thresholds used by `check`; `ngram_n` is read here, once."""
        self.embedder = embedder
        """Encodes texts for the embedding check; None runs exact and n-gram checks only."""
        self.ids: list[str] = []
        """Ids of the indexed items, in the order added."""
        self.texts: list[str] = []
        """Texts of the indexed items, in the order added."""
        self._n = config.ngram_n
        self._by_hash: dict[str, int] = {}
        self._by_gram: dict[tuple[str, ...], list[int]] = {}
        self._emb = np.zeros((0, 0), dtype=np.float32)
        """Row buffer, grown by doubling; its first `_embedded` rows are the items' embeddings."""
        self._embedded = 0

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def uses_embeddings(self) -> bool:
        """Whether items are embedded: an embedder, and an embedding check that is not disabled."""
        return self.embedder is not None and (
            _active(self.config.embedding_threshold) or _active(self.config.decontam_embedding_threshold)
        )

    def embeddings(self) -> np.ndarray:
        """The indexed items' embeddings [len(self), dim] (a view; empty when embeddings are not used)."""
        return self._emb[: self._embedded]

    def _encode(self, texts: Sequence[str], embeddings: np.ndarray | None) -> np.ndarray:
        """`embeddings` validated, or the texts encoded in one call of the embedder."""
        if embeddings is None:
            if self.embedder is None:
                raise ValueError(f"{self.name}: no embedder to encode texts with")
            embeddings = self.embedder.encode(list(texts))
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != len(texts):
            raise ValueError(f"{self.name}: expected embeddings of shape [{len(texts)}, dim], got {emb.shape}")
        if self._embedded and emb.shape[1] != self._emb.shape[1]:
            raise ValueError(f"{self.name}: embedding width {emb.shape[1]} differs from the index's {self._emb.shape[1]}")
        return emb

    def add(self, ids: Sequence[str], texts: Sequence[str], embeddings: np.ndarray | None = None) -> None:
        """Index items; `embeddings` (one row per text, from this index's embedder) avoid re-encoding.

        Without an embedder, `embeddings` are ignored. When several items normalise to the same
        text, exact hits name the first one added."""
        if len(ids) != len(texts):
            raise ValueError(f"{self.name}: {len(ids)} ids for {len(texts)} texts")
        if len(texts) == 0:
            return
        start = len(self)
        emb = None
        if self.uses_embeddings:
            if self._embedded != start:
                raise ValueError(f"{self.name}: items were added without embeddings; rebuild the index")
            emb = self._encode(texts, embeddings)
        for pos, (item_id, text) in enumerate(zip(ids, texts, strict=True), start=start):
            self.ids.append(str(item_id))
            self.texts.append(text)
            self._by_hash.setdefault(text_hash(text), pos)
            for gram in word_ngrams(text, self._n):
                self._by_gram.setdefault(gram, []).append(pos)
        if emb is not None:
            self._append_embeddings(start, emb)

    def _append_embeddings(self, start: int, emb: np.ndarray) -> None:
        """Write rows `start..` of the embedding buffer, doubling its capacity when full."""
        end = start + len(emb)
        if self._emb.shape[0] < end:
            grown = np.zeros((max(end, 2 * self._emb.shape[0], 64), emb.shape[1]), dtype=np.float32)
            if start:
                grown[:start] = self._emb[:start]
            self._emb = grown
        self._emb[start:end] = emb
        self._embedded = end

    def _ngram_hit(self, text: str) -> Hit | None:
        """The item sharing the largest fraction of the text's n-grams, if above the minimum overlap."""
        grams = word_ngrams(text, self._n)
        if not grams:
            return None
        shared: Counter[int] = Counter()
        for gram in grams:
            shared.update(self._by_gram.get(gram, ()))
        if not shared:
            return None
        pos, count = min(shared.items(), key=lambda kv: (-kv[1], kv[0]))  # most shared, then first added
        fraction = count / len(grams)
        if fraction <= self.config.ngram_min_overlap or count < min(self.config.ngram_min_shared, len(grams)):
            return None
        return Hit("ngram", self.ids[pos], self.texts[pos], fraction)

    def check(
        self, texts: Sequence[str], embeddings: np.ndarray | None = None, *, decontamination: bool = False
    ) -> list[Hit | None]:
        """For each text the strongest hit (exact > ngram > embedding), or None. Embeddings may be passed in to avoid re-encoding.

        `decontamination` selects the decontamination embedding threshold (for evaluation indexes)
        instead of the duplicate one. Texts are encoded at most once per call, and only those
        without an exact or n-gram hit, when the index is not empty."""
        hits: list[Hit | None] = [None] * len(texts)
        if len(texts) == 0 or len(self) == 0:
            return hits
        for i, text in enumerate(texts):
            pos = self._by_hash.get(text_hash(text))
            hits[i] = Hit("exact", self.ids[pos], self.texts[pos], 1.0) if pos is not None else self._ngram_hit(text)
        rest = [i for i, hit in enumerate(hits) if hit is None]
        threshold = self.config.threshold(decontamination)
        if not rest or threshold is None or not self.uses_embeddings:
            return hits
        if self._embedded != len(self):
            raise ValueError(f"{self.name}: items were added without embeddings; rebuild the index")
        if embeddings is None:
            emb = self._encode([texts[i] for i in rest], None)
        else:
            emb = self._encode(texts, embeddings)[rest]
        sims = emb @ self.embeddings().T
        nearest = sims.argmax(axis=1)
        for row, i in enumerate(rest):
            pos = int(nearest[row])
            score = float(sims[row, pos])
            if score >= threshold:
                hits[i] = Hit("embedding", self.ids[pos], self.texts[pos], score)
        return hits


@dataclass
class Removal:
    """A text dropped by `deduplicate_and_decontaminate`, and why."""

    index: int
    """Position of the text in the input."""
    reason: str
    """Human-readable reason naming the matching item, e.g. `contaminated: gsm8k/17 in eval:gsm8k (embedding 0.93)`."""
    hit: Hit
    """The match itself."""
    against: str
    """Name of the index matched: `seed-pool`, `accepted`, `eval:gsm8k`, `batch` (an earlier text of the input)."""


def _describe(hit: Hit) -> str:
    """`kind score`, as shown in removal reasons."""
    return f"{hit.kind} {hit.score:.2f}"


def deduplicate_and_decontaminate(
    texts: Sequence[str],
    ids: Sequence[str],
    *,
    seed_pool: HygieneIndex | None,
    evals: Sequence[HygieneIndex],
    config: HygieneConfig,
    embedder: Embedder | None,
    accepted: HygieneIndex | None = None,
    embeddings: np.ndarray | None = None,
) -> tuple[list[int], list[Removal]]:
    """Batch form: keep-order indices of the texts that survive (first occurrence wins within the batch), and the removals with reasons. Decontamination is checked first (its reason wins), then seed-pool duplicates, then duplicates of earlier kept texts.

    Earlier kept texts are those of `accepted` (earlier batches; read, never changed: add the
    survivors yourself once they are finally accepted) and the survivors earlier in this batch,
    compared with `config`'s thresholds. Each index uses its own config. The texts are encoded
    once with `embedder` (or `embeddings` are used), and the vectors are reused by every index whose
    embedder is that same object.
    """
    if len(ids) != len(texts):
        raise ValueError(f"{len(ids)} ids for {len(texts)} texts")
    batch = HygieneIndex("batch", config, embedder)
    emb = batch._encode(texts, embeddings) if batch.uses_embeddings and len(texts) else None
    removed: dict[int, Removal] = {}

    def hits_in(index: HygieneIndex, decontamination: bool) -> list[tuple[int, Hit]]:
        """(position, hit) for the texts not yet removed that match `index`."""
        pending = [i for i in range(len(texts)) if i not in removed]
        if not pending or len(index) == 0:
            return []
        shared = emb[pending] if emb is not None and index.embedder is embedder else None
        found = index.check([texts[i] for i in pending], shared, decontamination=decontamination)
        return [(i, hit) for i, hit in zip(pending, found, strict=True) if hit is not None]

    for index in evals:
        for i, hit in hits_in(index, decontamination=True):
            reason = f"contaminated: {hit.item_id} in {index.name} ({_describe(hit)})"
            removed[i] = Removal(i, reason, hit, index.name)
    for pool in (seed_pool, accepted):
        if pool is not None:
            for i, hit in hits_in(pool, decontamination=False):
                reason = f"duplicate of {hit.item_id} in {pool.name} ({_describe(hit)})"
                removed[i] = Removal(i, reason, hit, pool.name)
    kept: list[int] = []
    for i, text in enumerate(texts):
        if i in removed:
            continue
        row = emb[i : i + 1] if emb is not None else None
        earlier = batch.check([text], row)[0]
        if earlier is not None:
            reason = f"duplicate of {earlier.item_id} earlier in the batch ({_describe(earlier)})"
            removed[i] = Removal(i, reason, earlier, batch.name)
            continue
        batch.add([ids[i]], [text], row)
        kept.append(i)
    return kept, [removed[i] for i in sorted(removed)]
