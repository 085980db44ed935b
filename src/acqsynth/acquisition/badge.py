"""BADGE gradient embeddings (Ash et al., 2020) for sequences, and their norm as an acquisition score.

For a classifier, BADGE embeds a sample as the gradient of the loss at the model's own prediction
ŷ with respect to the last layer: (p − e_ŷ) ⊗ h. For an answer of T tokens we average over tokens:
g = (1/T) Σ_t (p_t − e_{ŷ_t}) ⊗ h_t with ŷ_t = argmax p_t and h_t the lm_head input. Its norm is
computed exactly from token Gram matrices; the embedding itself (vocab × hidden: 28M numbers for
SmolLM2) is stored as a seeded Kronecker random projection (R_vᵀ a_t) ⊗ (R_hᵀ h_t), which preserves
inner products in expectation, so k-means++ on it approximates BADGE's selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from acqsynth.acquisition.base import ScoringContext
from acqsynth.acquisition.uncertainty import answer_texts
from acqsynth.errors import AcqsynthError
from acqsynth.samples import Sample


def projections(
    vocab: int, hidden: int, dim_v: int, dim_h: int, seed: int
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Gaussian projections R_v [vocab, dim_v] and R_h [hidden, dim_h] scaled by 1/√dim (None = no projection)."""
    gen = torch.Generator().manual_seed(seed)
    r_v = torch.randn(vocab, dim_v, generator=gen) / dim_v**0.5 if dim_v else None
    r_h = torch.randn(hidden, dim_h, generator=gen) / dim_h**0.5 if dim_h else None
    return r_v, r_h


def badge_batch(
    logits: torch.Tensor,
    hidden: torch.Tensor,
    lengths: Sequence[int],
    r_v: torch.Tensor | None,
    r_h: torch.Tensor | None,
    targets: torch.Tensor | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(sketched embeddings [B, dim_v·dim_h], exact norms [B]) from flattened continuation logits/hidden.

    The label of each position is the argmax (BADGE) or, if given, `targets` (the answer's own
    tokens: then the embedding is the gradient of the mean answer loss w.r.t. the output layer).
    """
    p = torch.softmax(logits.float(), -1)
    y_hat = p.argmax(-1) if targets is None else targets.to(p.device)
    if r_v is None:
        u = p.clone()
        u[torch.arange(len(u)), y_hat] -= 1.0
    else:
        u = p @ r_v.to(p) - r_v.to(p)[y_hat]  # R_vᵀ (p_t − e_ŷ)
    w = hidden.float() if r_h is None else hidden.float() @ r_h.to(p)
    embs, norms, start = [], [], 0
    for n in lengths:
        sl = slice(start, start + n)
        start += n
        if n == 0:
            embs.append(torch.full((u.shape[1] * w.shape[1],), float("nan")))
            norms.append(float("nan"))
            continue
        embs.append((u[sl].T @ w[sl]).flatten().cpu() / n)
        pt, yt, ht = p[sl].double(), y_hat[sl], hidden[sl].double()
        # ⟨p_t − e_ŷt, p_s − e_ŷs⟩ = ⟨p_t, p_s⟩ − p_t[ŷ_s] − p_s[ŷ_t] + [ŷ_t = ŷ_s]
        p_at = pt[:, yt]  # [t, s] = p_t[ŷ_s]
        aa = pt @ pt.T - p_at - p_at.T + (yt[:, None] == yt[None, :]).double()
        norms.append(float((aa * (ht @ ht.T)).sum().clamp(min=0).sqrt()) / n)
    return torch.stack(embs).numpy(), np.array(norms)


@dataclass
class Badge:
    """Norm of the BADGE last-layer gradient embedding at the student's own predictions: large when
    the student is unsure and its features are large. `embed` returns the embeddings for k-means++."""

    name: ClassVar[str] = "badge"
    answer: str = "own"
    """Tokens the embedding is averaged over: 'own' (student's sampled answer) or 'reference'."""
    dim_v: int = 64
    """Projection size on the vocabulary side (0 = exact, vocab-sized)."""
    dim_h: int = 16
    """Projection size on the hidden side (0 = exact, hidden-sized)."""
    label: str = "argmax"
    """'argmax' (BADGE's hypothetical label) or 'target' (the answer's tokens: the true last-layer loss
    gradient, e.g. as input to G-Vendi)."""

    def score(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        return self._compute(samples, ctx)[1]

    def embed(self, samples: Sequence[Sample], ctx: ScoringContext) -> np.ndarray:
        """Sketched gradient embeddings, shape [N, dim_v·dim_h] (cached with the scores)."""
        return self._compute(samples, ctx)[0]

    def _compute(self, samples: Sequence[Sample], ctx: ScoringContext) -> tuple[np.ndarray, np.ndarray]:
        student = ctx.need("student", self.name)
        if not samples:
            return np.zeros((0, 0), dtype=np.float32), np.zeros(0)
        completions = answer_texts(samples, ctx, self.answer, self.name)
        keys = [(ctx.prompt_text(s, self.name), c) for s, c in zip(samples, completions, strict=True)]
        if self.label not in ("argmax", "target"):
            raise AcqsynthError(f"acquisition 'badge': label={self.label!r} is not 'argmax' or 'target'")
        cache = ctx.memo(f"badge:{self.dim_v}:{self.dim_h}:{self.label}:{ctx.seed}", dict)
        todo = list(dict.fromkeys(k for k in keys if k not in cache))
        if todo:
            cfg = student.model.config
            r_v, r_h = ctx.memo(
                f"badge-proj:{self.dim_v}:{self.dim_h}:{ctx.seed}",
                lambda: projections(cfg.vocab_size, cfg.hidden_size, self.dim_v, self.dim_h, ctx.seed),
            )
            seqs, _ = student.fit([(student._ids(p), student._ids(c)) for p, c in todo])
            for idx in student.length_batches(seqs):
                batch = [seqs[i] for i in idx]
                logits, hidden = student.continuation_logits(batch, hidden=True)
                targets = torch.tensor([t for _, c in batch for t in c], dtype=torch.long)
                embs, norms = badge_batch(
                    logits, hidden, [len(c) for _, c in batch], r_v, r_h, targets if self.label == "target" else None
                )
                for j, i in enumerate(idx):
                    cache[todo[i]] = (embs[j], norms[j])
        return np.stack([cache[k][0] for k in keys]), np.array([cache[k][1] for k in keys], dtype=np.float64)
