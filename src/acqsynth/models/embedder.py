"""Sentence embedders (sentence-transformers) for proximity, diversity, clustering and hygiene; each is an
`acqsynth.models.interfaces.Embedder`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from acqsynth.models.aliases import hf_model_path


class SentenceTransformerEmbedder:
    """Any sentence-transformers model (the `minilm-l6` alias, a local directory or a hub id)."""

    def __init__(self, spec: str = "minilm-l6", device: str | None = None, batch_size: int = 64) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(hf_model_path(spec), device=device or "cpu")
        self.batch_size = batch_size

    @property
    def dim(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:  # a model without a fixed output size cannot back a vector index
            raise ValueError("this sentence-transformers model reports no embedding dimension")
        return int(dim)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        emb = self.model.encode(
            list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True,
            show_progress_bar=False,
        )
        return emb.astype(np.float32)


class LazyEmbedder:
    """An embedder loaded only when the first embedding is asked for (many runs never need one)."""

    def __init__(self, spec: str) -> None:
        self.spec = spec
        self._model: SentenceTransformerEmbedder | None = None

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            self._model = SentenceTransformerEmbedder(self.spec)
        return self._model.encode(texts)
