"""An on-disk cache of generator completions, so a rerun or resumed run never pays twice.

A completion set is keyed by (model name, chat prompt, generation parameters, root seed, the
prompt's seed index): exactly what decides the samples (see `models.sampling.sample_seed`). The
cache file is append-only JSONL; each record is written with one `write` on an `O_APPEND`
descriptor under an exclusive `flock`, so a killed process leaves at most a partial last line, and
that is cut off (under the lock) before anything else is appended or when the cache is opened:
nothing torn is ever read or appended to, even with several processes sharing the file.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from acqsynth.errors import AcqsynthError
from acqsynth.models.interfaces import Completion, GenerationParams, Generator
from acqsynth.models.sampling import seed_indices
from acqsynth.samples import WRITE_ERRNOS
from acqsynth.tasks.base import Messages


def completion_key(model: str, prompt: Messages, params: GenerationParams, seed_index: int) -> str:
    """A hex digest of everything that determines a prompt's completions."""
    fields = asdict(params)
    if fields["grammar"] is None:  # keys written before the field existed stay valid
        del fields["grammar"]
    payload = {
        "model": model,
        "prompt": list(prompt),
        "params": fields,
        "seed_index": int(seed_index),
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class CompletionCache:
    """Completions by key, loaded from and appended to one JSONL file.

    Several processes may share the file (an experiment's cells do): every append and every torn-tail
    repair happens under an exclusive `flock`, and a key missing from memory is looked up again in
    whatever other processes appended since, so a completion one process paid for is not paid again.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._entries: dict[str, list[Completion]] = {}
        self._offset = 0
        self._lines = 0
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        with self._locked():
            self._cut_torn_tail()
            self._read_new()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _cut_torn_tail(self) -> None:
        """Drop a partial last line (a writer killed mid-write); only called under the lock, when no
        live writer can be mid-write."""
        size = os.fstat(self._fd).st_size
        if size == 0 or os.pread(self._fd, 1, size - 1) == b"\n":
            return
        tail_start = max(0, size - (1 << 20))
        while True:
            chunk = os.pread(self._fd, size - tail_start, tail_start)
            cut = chunk.rfind(b"\n")
            if cut >= 0 or tail_start == 0:
                os.ftruncate(self._fd, tail_start + cut + 1)
                return
            tail_start = max(0, tail_start - (1 << 20))

    def _read_new(self) -> None:
        """Parse the whole lines appended since the last read (by this or another process)."""
        size = os.fstat(self._fd).st_size
        if size <= self._offset:
            return
        data = os.pread(self._fd, size - self._offset, self._offset)
        good = data.rfind(b"\n") + 1
        for line in data[:good].splitlines():
            self._lines += 1
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                self._entries[rec["key"]] = [Completion(**c) for c in rec["completions"]]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise AcqsynthError(
                    f"{self.path}:{self._lines}: corrupt cache record ({e}); delete the file to regenerate"
                ) from None
        self._offset += good

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get(self, key: str) -> list[Completion] | None:
        """The cached completions for `key` (fresh copies), or None."""
        found = self._entries.get(key)
        if found is None and os.fstat(self._fd).st_size > self._offset:  # another process may have it
            with self._locked():
                self._read_new()
            found = self._entries.get(key)
        return None if found is None else [Completion(**asdict(c)) for c in found]

    def put(self, key: str, completions: Sequence[Completion], meta: dict[str, Any] | None = None) -> None:
        """Store and append one record; completions that failed ('error') are never cached."""
        if any(c.finish_reason == "error" for c in completions):
            return
        record = {"key": key, "completions": [asdict(c) for c in completions], **(meta or {})}
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        with self._locked():
            self._cut_torn_tail()
            self._read_new()
            try:
                written = os.write(self._fd, line)
            except OSError as e:  # nothing was appended: the records already there are whole
                if e.errno not in WRITE_ERRNOS:
                    raise
                raise AcqsynthError(f"{self.path}: cannot append to the cache: {WRITE_ERRNOS[e.errno]}; "
                                    "the records already cached are intact") from e
            if written != len(line):  # a short write (disk full): cut it off so the file stays whole
                os.ftruncate(self._fd, os.fstat(self._fd).st_size - written)
                raise AcqsynthError(f"{self.path}: short write to the cache (disk full?)")
            self._offset += written
            self._lines += 1
        self._entries[key] = [Completion(**asdict(c)) for c in completions]

    def flush(self) -> None:
        """Make appended records durable (fsync)."""
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


class CachedGenerator:
    """A Generator that answers from a `CompletionCache` and asks the wrapped generator only for misses.

    Counts `hits` and `misses` (prompts) so a run can report how much came from the cache. If the
    wrapped generator fails with an AcqsynthError carrying `partial` (per prompt: its completions,
    or None; e.g. OpenAIGenerator's PartialGenerationError), the finished ones are cached before
    the error propagates.
    """

    def __init__(self, inner: Generator, cache: CompletionCache, chunk_size: int | None = None) -> None:
        """`chunk_size`: misses are sent to `inner` this many prompts at a time and cached after each
        chunk, so a crash loses at most one chunk. Default: the backend's own parallelism (its
        `batch_size` or `max_concurrency`), else 1 (llama.cpp generates one prompt at a time anyway)."""
        self.inner, self.cache = inner, cache
        default = getattr(inner, "batch_size", None) or getattr(inner, "max_concurrency", None) or 1
        self.chunk_size = max(1, int(chunk_size or default))
        self.name = inner.name
        self.hits = 0
        self.misses = 0
        self.last_fresh: list[bool] = []
        """Per prompt of the latest call: True if it was generated, False if it came from the cache."""

    def generate(
        self, prompts: list[Messages], params: GenerationParams, seed_index: Sequence[int] | None = None
    ) -> list[list[Completion]]:
        index = seed_indices(len(prompts), seed_index)
        keys = [completion_key(self.name, p, params, i) for p, i in zip(prompts, index, strict=True)]
        out: list[list[Completion] | None] = [self.cache.get(k) for k in keys]
        todo = [i for i, got in enumerate(out) if got is None]
        self.hits += len(prompts) - len(todo)
        self.misses += len(todo)
        self.last_fresh = [got is None for got in out]
        for start in range(0, len(todo), self.chunk_size):
            chunk = todo[start : start + self.chunk_size]
            try:
                fresh = self.inner.generate([prompts[i] for i in chunk], params, seed_index=[index[i] for i in chunk])
            except AcqsynthError as e:  # keep what the failed call finished (`partial`: per prompt, or None)
                partial = getattr(e, "partial", None) or []
                for i, comps in zip(chunk, partial, strict=False):
                    if comps is not None:
                        self.cache.put(keys[i], comps, {"model": self.name, "seed_index": index[i]})
                self.cache.flush()
                raise
            for i, comps in zip(chunk, fresh, strict=True):
                self.cache.put(keys[i], comps, {"model": self.name, "seed_index": index[i]})
                out[i] = comps
            self.cache.flush()
        return [c for c in out if c is not None]
