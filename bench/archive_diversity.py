"""Archive diversity on real questions: the authors' gain, acqsynth's previous variant and the current one.

The first N GSM8K eval questions, embedded once (MiniLM-L6 by default), scored in order by three
definitions of the archive gain; prints one JSON line with each list of gains and how many of the
questions after the first two scored exactly 0.
- authors: gain = mean_i max(0, d_i − b_i), b_i the largest distance member i has seen, a new member b = 0;
- previous: the same with a new member's b = its largest distance to the archive;
- current: `ArchiveDiversity`, the distance to the nearest archive member.

Usage: python bench/archive_diversity.py [--n 12] [--embedder minilm-l6]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from acqsynth.acquisition import ArchiveDiversity, ScoringContext
from acqsynth.data import load_data
from acqsynth.models.embedder import SentenceTransformerEmbedder
from acqsynth.samples import iter_samples

THRESHOLD = 0.01


def mean_excess(vectors: np.ndarray, new_member_best_is_max: bool) -> list[float]:
    """The mean-excess archive gain; a new member's best distance starts at 0 or at its largest distance."""
    archive: list[np.ndarray] = []
    best: list[float] = []
    gains = []
    for e in vectors:
        d = np.array([1.0 - a @ e for a in archive])
        gain = 1.0 if not archive else float(np.mean(np.maximum(0.0, d - np.array(best))))
        gains.append(gain if gain > 1e-9 else 0.0)
        if gains[-1] > THRESHOLD:
            best = [max(b, x) for b, x in zip(best, d, strict=True)]
            archive.append(e)
            best.append(float(d.max()) if new_member_best_is_max and len(d) else 0.0)
    return gains


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=12)
    ap.add_argument("--embedder", default="minilm-l6")
    args = ap.parse_args()
    questions = list(iter_samples(load_data("gsm8k", split="eval").select(range(args.n))))
    embedder = SentenceTransformerEmbedder(args.embedder)
    vectors = embedder.encode([q.question for q in questions])
    vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    runs = {
        "authors": mean_excess(vectors, new_member_best_is_max=False),
        "previous": mean_excess(vectors, new_member_best_is_max=True),
        "current": ArchiveDiversity(threshold=THRESHOLD).score(questions, ScoringContext(embedder=embedder)).tolist(),
    }
    print(json.dumps({**{k: [round(g, 4) for g in v] for k, v in runs.items()},
                      **{f"{k}_zeros_after_two": sum(g == 0.0 for g in v[2:]) for k, v in runs.items()},
                      "n": args.n, "embedder": args.embedder}))


if __name__ == "__main__":
    main()
