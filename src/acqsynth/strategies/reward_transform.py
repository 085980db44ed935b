"""How an acquisition score becomes the GRPO reward's acquisition term, per reward function.

The paper's term is `clip(A, 0, 2)`. That suits scores that live on about [0, 2] (confidence = 1 /
mean margin, cosine proximity and diversity, answer variance), but not the others: a 135M
student's gradient norms lie far above 2 and all clip to 2, so every completion of a group gets the
same reward and GRPO learns nothing from the score; `learnability` is at most 0, so it all clips
to 0. Each transform maps A
into [0, cap] (cap = `reward_clip`):

- `clip`:  clip(A, 0, cap), the paper's;
- `scale`: clip(A / m, 0, cap), m the median |A| of every parsable completion scored so far (this
  step's included): non-negative scores of any magnitude, the typical one worth 1;
- `rank`:  cap · (the percentile rank of A among this step's parsable completions, ties averaged):
  any score of any sign or scale; only its order within the step counts;
- `auto` (the default): `clip` for the functions whose paper scale is [0, 2] or that are bounded
  on it, `scale` for non-negative unbounded ones, `rank` for the rest and for user functions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import rankdata

TRANSFORMS = ("auto", "clip", "scale", "rank")

AUTO: dict[str, str] = {
    "confidence": "clip", "least-confidence": "clip", "el2n": "clip", "proximity": "clip",
    "diversity": "clip", "diversity-archive": "clip", "answer-variance": "clip", "random": "clip",
    "combination": "clip",  # non-negative weights of terms normalised into [0, 1] (else `resolve` ranks)
    "loss": "scale", "entropy": "scale", "gradient": "scale", "badge": "scale", "semantic-entropy": "scale",
    "llm-judge": "scale",
    "learnability": "rank", "reward-model": "rank",
}  # fmt: skip
"""`auto`'s choice per acquisition name; any other name (a user's function) gets `rank`."""


def resolve(transform: str, acquisition: Any) -> str:
    """The transform `auto` stands for with this acquisition (an object with a `name`, or its name);
    any other transform as it is. A weighted sum is clipped only when every weight is >= 0 and its
    terms are normalised into [0, 1] (min-max or rank), else ranked."""
    if transform != "auto":
        return transform
    name = acquisition if isinstance(acquisition, str) else acquisition.name
    if name == "combination" and not isinstance(acquisition, str):
        bounded = getattr(acquisition, "normalize", "") in ("minmax", "rank")
        if not bounded or any(w < 0 for w, _ in getattr(acquisition, "terms", [])):
            return "rank"
    return AUTO.get(name, "rank")


class RewardTransform:
    """Maps a step's acquisition scores to acquisition terms in [0, cap]; keeps `scale`'s running history."""

    def __init__(self, transform: str, cap: float) -> None:
        if transform not in TRANSFORMS[1:]:
            raise ValueError(f"transform must be one of {TRANSFORMS[1:]} (resolve 'auto' first), got {transform!r}")
        self.transform, self.cap = transform, cap
        self.history: list[float] = []
        """|A| of every finite score seen so far (`scale`)."""

    def __call__(self, scores: list[float]) -> list[float]:
        """The term of each score; a NaN or infinite score (or an unparsable completion's NaN) gets 0."""
        x = np.asarray(scores, dtype=np.float64)
        finite = np.isfinite(x)
        out = np.zeros_like(x)
        if not finite.any():
            return out.tolist()
        if self.transform == "clip":
            out[finite] = np.clip(x[finite], 0.0, self.cap)
        elif self.transform == "scale":
            self.history.extend(np.abs(x[finite]).tolist())
            m = float(np.median(self.history))
            out[finite] = np.clip(x[finite] / m, 0.0, self.cap) if m > 0 and math.isfinite(m) else 0.0
        else:  # rank
            n = int(finite.sum())
            out[finite] = self.cap * (rankdata(x[finite]) - 1) / (n - 1) if n > 1 else self.cap / 2
        return out.tolist()
