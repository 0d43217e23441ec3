"""The sync's streaming loop: planned work -> parser pool -> embedding thread -> writer.

Three things run at once and every queue between them is bounded:

- the walk/diff (:class:`~ingest.sync.plan.Planner`) is pulled only while fewer than
  ``2 x capacity`` files wait for the pool and fewer than ``embed_pool`` chunks wait for the
  model;
- the pool parses: local parser processes (:class:`~ingest.parsing.workers.ParsePool`, one file
  each), or distributed workers (:class:`~ingest.distributed.pool.DistributedPool`) that also
  embed: their outcomes carry vectors and skip the embedding thread. Either reads the file
  through the local path the source fetched it to (released once parsed);
- one embedding thread runs the model on up to ``embed_pool`` chunks per call (the model sorts
  them by length, so its batches pad little); the runtime releases the GIL, so this loop keeps
  dispatching files and committing finished documents meanwhile.

Index and database writes happen only on this loop's thread (:class:`~ingest.sync.writer.Writer`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from ingest.parsing.workers import ParseOutcome
from ingest.sync.plan import Index, NotIndexable, Refresh, Unchanged, WorkItem
from ingest.sync.writer import Writer

EmbedFn = Callable[[Sequence[str]], list[list[float]]]


try:
    _MALLOC_TRIM: Callable[[int], int] | None = ctypes.CDLL(
        ctypes.util.find_library("c") or "libc.so.6"
    ).malloc_trim
except (OSError, AttributeError):  # not glibc
    _MALLOC_TRIM = None


def release_free_memory() -> None:
    """After each model call: the model's activations are freed but glibc keeps the pages in its
    per-thread arenas; ``malloc_trim`` returns them (~300 MB less peak memory on handbook-18f)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class FilePool(Protocol):
    """What the pipeline needs of a parser pool (local processes or distributed workers)."""

    def idle(self) -> int: ...

    def submit(
        self, task_id: int, path: Path, *, rel_path: str | None = None, sha256: str | None = None
    ) -> None: ...

    def poll(self, timeout: float) -> list[ParseOutcome]: ...

    def close(self) -> None: ...


class Pipeline:
    def __init__(
        self,
        *,
        items: Iterator[WorkItem],
        writer: Writer,
        pool_factory: Callable[[], FilePool],
        capacity: int,
        embed_pool: int,
        embed_fn: Callable[[], EmbedFn],
        on_first_parse: Callable[[], None],
        tick: Callable[[int, object], None],
        on_vectors: Callable[[int], None],
    ) -> None:
        """``capacity``: files the pool works on at once; ``on_vectors(dim)`` runs before the
        first outcome that carries its own vectors is written (the collection's dimension)."""
        self.items = items
        self.writer = writer
        self.pool_factory = pool_factory
        self.capacity = max(1, capacity)
        self.embed_pool = max(1, embed_pool)
        self.embed_fn = embed_fn
        self.on_first_parse = on_first_parse
        self.tick = tick
        self.on_vectors = on_vectors
        self._vectors_checked = False
        self.processed = 0
        self._to_parse: deque[Index] = deque()
        self._in_flight: dict[int, Index] = {}
        self._pool: FilePool | None = None
        self._next_task = 0
        self._exhausted = False
        self._future: Future[list[list[float]]] | None = None
        self._batch: list[Any] = []
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    def run(self, check: Callable[[], None]) -> None:
        """Process every planned item; ``check`` runs once per turn (e.g. lock lost -> raise)."""
        try:
            while True:
                self._intake()
                self._dispatch()
                drained = self._exhausted and not self._to_parse and not self._in_flight
                self._start_embedding(drained)
                if self._future is not None and self._future.done():
                    self.writer.apply_vectors(self._batch, self._future.result())
                    self._future, self._batch = None, []
                    release_free_memory()
                    continue
                self._collect(embedding=self._future is not None)
                check()
                waiting = bool(self.writer.pending_embed()) or self._future is not None
                if self.writer.should_commit() or (drained and not waiting):
                    self.writer.commit()
                if drained and not waiting and not self.writer.has_uncommitted():
                    return
                self.tick(len(self._in_flight), None)
        finally:
            if self._pool is not None:
                self._pool.close()
            self._executor.shutdown(wait=True, cancel_futures=True)
            for work in [*self._to_parse, *self._in_flight.values()]:
                if work.fetched is not None:
                    work.fetched.release()

    # -- steps ---------------------------------------------------------------------------------
    def _intake(self) -> None:
        while (
            not self._exhausted
            and len(self._to_parse) < 2 * self.capacity
            and self.writer.pending_embed() < self.embed_pool
        ):
            item = next(self.items, None)
            if item is None:
                self._exhausted = True
                return
            self._take(item)
            self.tick(len(self._in_flight), getattr(item, "entry", None))
            if self.writer.should_commit():
                self.writer.commit()

    def _take(self, item: WorkItem) -> None:
        w = self.writer
        if isinstance(item, Unchanged):
            w.unchanged(item.file_id)
        elif isinstance(item, Refresh):
            w.refresh(item)
        elif isinstance(item, NotIndexable):
            w.not_indexable(item)
            self.processed += 1
        elif item.donor is not None and w.reuse(item):
            self.processed += 1
            if item.fetched is not None:
                item.fetched.release()
        else:
            self._to_parse.append(replace(item, donor=None, rename=False))

    def _dispatch(self) -> None:
        while self._to_parse and (self._pool is None or self._pool.idle()):
            if self._pool is None:
                self._pool = self.pool_factory()
                self.on_first_parse()
            work = self._to_parse.popleft()
            assert work.fetched is not None  # the planner fetched every file it sends to parse
            # A path, also for a remote source (its staged copy): parser processes read it,
            # the distributed pool reads its bytes to send them to a worker.
            self._pool.submit(
                self._next_task, work.fetched.path, rel_path=work.entry.rel_path, sha256=work.sha256
            )
            self._in_flight[self._next_task] = work
            self._next_task += 1

    def _start_embedding(self, drained: bool) -> None:
        pending = self.writer.pending_embed()
        if self._future is not None or not pending:
            return
        if pending >= self.embed_pool or drained:
            embed = self.embed_fn()  # loads the model (here, not in the thread) on first use
            self._batch = self.writer.take_batch(self.embed_pool)
            self._future = self._executor.submit(embed, self.writer.batch_texts(self._batch))

    def _collect(self, *, embedding: bool) -> None:
        timeout = 0.05 if embedding else 0.5
        if self._pool is not None and self._in_flight:
            outcomes = self._pool.poll(timeout)
        else:
            if self._future is not None:
                wait_futures([self._future], timeout=timeout)
            outcomes = []
        for out in outcomes:
            self._finish(out)

    def _finish(self, out: ParseOutcome) -> None:
        work = self._in_flight.pop(out.task_id)
        if work.fetched is not None:
            work.fetched.release()
        self.processed += 1
        if out.chunks and out.vectors is not None:
            if not self._vectors_checked:
                self.on_vectors(len(out.vectors[0]))
                self._vectors_checked = True
            self.writer.embedded(work, out.chunks, out.vectors)
            return
        if out.chunks:
            self.writer.parsed(work, out.chunks)
            return
        self.writer.not_indexable(
            NotIndexable(
                work.entry.rel_path,
                work.entry,
                work.record,
                work.sha256,
                work.access,
                out.code or "ingest.empty",
                out.message or "no text could be extracted from the file",
            )
        )
