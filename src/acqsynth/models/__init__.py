"""Model backends (student, generator, embedder) and model aliases."""
