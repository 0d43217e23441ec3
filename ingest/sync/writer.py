"""Applies planned work to the index and the state database in crash-safe groups.

Each group is written in four steps, so a ``kill -9`` at any moment leaves a state the next
sync repairs to exactly what a clean sync produces:

1. *intent*: one transaction marks every document the group touches ``indexing`` (with its new
   hash, stat fields and access) before the index is touched;
2. *index*: upsert the new points (deterministic ids), delete the document's stale ids, rewrite
   payloads of permission-only changes;
3. ``flush`` the index (durable before the state says so);
4. *commit*: one transaction writes the final states (``ok``/``failed``/``skipped``).

A document left ``indexing`` is redone by the next sync (reusing its points if they all carry
the right content hash, else re-parsing). Embedding happens in batches of
``embedding.batch_size`` across files, before step 1.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine

from core.db import session_scope
from ingest.index.base import VectorIndex
from ingest.model import ChunkPoint, ids_for, payload_mtime
from ingest.parsing.workers import ChunkData
from ingest.sync import faults
from ingest.sync.filerows import RowContext, write_file_row
from ingest.sync.plan import Index, NotIndexable, Refresh
from ingest.sync.points import doc_id_of, moved_points, new_points
from ingest.sync.state import (
    DELETING,
    INDEXING,
    OK,
    FileRecord,
    mark_seen,
    utcnow,
)
from ingest.sync.summary import FileIssue, SyncSummary

UPSERT_BATCH = 256


class EmbedderLike(Protocol):
    dim: int
    batch_size: int

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...


@dataclass
class _Pending:
    """A parsed file waiting for (some of) its vectors."""

    item: Index
    chunks: list[ChunkData]
    vectors: list[list[float] | None] = field(default_factory=list)
    missing: int = 0


@dataclass
class _Ready:
    item: Index
    points: list[ChunkPoint]
    reused: bool


class Writer:
    """Collects work, embeds in batches and commits groups (see the module docstring)."""

    def __init__(
        self,
        *,
        engine: Engine,
        index: VectorIndex,
        source: str,
        source_id: int,
        run_id: int,
        summary: SyncSummary,
        group_chunks: int = 256,
        group_seconds: float = 10.0,
    ) -> None:
        self.engine = engine
        self.index = index
        self.source = source
        self.source_id = source_id
        self.run_id = run_id
        self.summary = summary
        self.group_chunks = group_chunks
        self.group_seconds = group_seconds
        self._to_embed: deque[tuple[_Pending, int]] = deque()
        self._ready: list[_Ready] = []
        self._ready_chunks = 0
        self._not_indexable: list[NotIndexable] = []
        self._refresh: list[Refresh] = []
        self._unchanged: list[int] = []
        self._group_started = time.monotonic()
        self.renamed_from: set[str] = set()
        self.rows = RowContext(source, source_id, run_id)

    # -- intake --------------------------------------------------------------------------------
    def unchanged(self, file_id: int) -> None:
        self._unchanged.append(file_id)
        self.summary.unchanged += 1

    def refresh(self, item: Refresh) -> None:
        self._refresh.append(item)

    def not_indexable(self, item: NotIndexable) -> None:
        self._not_indexable.append(item)

    def parsed(self, item: Index, chunks: list[ChunkData]) -> None:
        pending = _Pending(item, chunks, [None] * len(chunks), len(chunks))
        for i in range(len(chunks)):
            self._to_embed.append((pending, i))

    def embedded(
        self, item: Index, chunks: list[ChunkData], vectors: Sequence[list[float]]
    ) -> None:
        """A file parsed *and* embedded elsewhere (distributed workers): ready to write."""
        self.summary.embedded += len(chunks)
        self._add_ready(_Ready(item, new_points(self.source, item, chunks, vectors), reused=False))

    def reuse(self, item: Index) -> bool:
        """Copy the donor's points for ``item``; ``False`` if they no longer match (parse it)."""
        donor = item.donor
        assert donor is not None
        expected = ids_for(donor.doc_id, 0, donor.chunk_count)
        found = {p.id: p for p in self.index.get_points(expected)}
        if len(found) != len(expected) or any(
            p.payload.get("content_hash") != item.sha256 for p in found.values()
        ):
            return False
        points = moved_points(self.source, item, [found[pid] for pid in expected])
        self._add_ready(_Ready(item, points, reused=True))
        if item.rename:
            self.renamed_from.add(donor.doc_id)
        return True

    # -- embedding -----------------------------------------------------------------------------
    def pending_embed(self) -> int:
        return len(self._to_embed)

    def take_batch(self, max_chunks: int) -> list[tuple[_Pending, int]]:
        """Up to ``max_chunks`` waiting chunks (across files), for one model call."""
        n = min(max_chunks, len(self._to_embed))
        return [self._to_embed.popleft() for _ in range(n)]

    @staticmethod
    def batch_texts(batch: list[tuple[_Pending, int]]) -> list[str]:
        return [pending.chunks[i][0] for pending, i in batch]

    def apply_vectors(self, batch: list[tuple[_Pending, int]], vectors: list[list[float]]) -> None:
        """Store the model's vectors; files whose chunks all have one become ready."""
        self.summary.embedded += len(batch)
        for (pending, i), vec in zip(batch, vectors, strict=True):
            pending.vectors[i] = vec
            pending.missing -= 1
            if pending.missing == 0:
                vecs = [v for v in pending.vectors if v is not None]
                points = new_points(self.source, pending.item, pending.chunks, vecs)
                self._add_ready(_Ready(pending.item, points, reused=False))

    def _add_ready(self, ready: _Ready) -> None:
        self._ready.append(ready)
        self._ready_chunks += len(ready.points)

    def should_commit(self) -> bool:
        items = len(self._ready) + len(self._not_indexable) + len(self._refresh)
        if self._ready_chunks >= self.group_chunks or items >= 512 or len(self._unchanged) >= 2000:
            return True
        return items > 0 and time.monotonic() - self._group_started >= self.group_seconds

    def has_uncommitted(self) -> bool:
        return bool(
            self._ready or self._not_indexable or self._refresh or self._unchanged or self._to_embed
        )

    # -- commit --------------------------------------------------------------------------------
    def commit(self) -> None:
        """Write pending changes in groups of about ``group_chunks`` chunks (4 steps each)."""
        while True:
            self._commit_group()
            if not self._ready:
                return

    def _commit_group(self) -> None:
        cut, size = 0, 0
        while cut < len(self._ready) and (cut == 0 or size < self.group_chunks):
            size += len(self._ready[cut].points)
            cut += 1
        ready, self._ready = self._ready[:cut], self._ready[cut:]
        self._ready_chunks -= size
        gone, self._not_indexable = self._not_indexable, []
        refresh, self._refresh = self._refresh, []
        unchanged, self._unchanged = self._unchanged, []
        self._group_started = time.monotonic()
        touching_refresh = [
            r
            for r in refresh
            if r.record.status == OK and r.record.chunk_count and r.payload_changed
        ]
        touching_gone = [g for g in gone if g.record is not None and _may_have_points(g.record)]

        if ready or touching_refresh or touching_gone:
            with session_scope(self.engine) as s:  # 1. intent
                for r in ready:
                    write_file_row(
                        self.rows,
                        s,
                        r.item.entry,
                        r.item.record,
                        r.item.sha256,
                        r.item.access,
                        INDEXING,
                        len(r.points),
                        None,
                        None,
                    )
                for g in touching_gone:
                    write_file_row(
                        self.rows,
                        s,
                        g.entry,
                        g.record,
                        g.sha256,
                        g.access,
                        INDEXING,
                        0,
                        None,
                        None,
                        rel_path=g.rel_path,
                    )
                for f in touching_refresh:
                    write_file_row(
                        self.rows,
                        s,
                        f.entry,
                        f.record,
                        f.record.sha256,
                        f.access,
                        INDEXING,
                        f.record.chunk_count,
                        None,
                        None,
                    )
            faults.reach("intent")
            self._index_writes(ready, touching_gone, touching_refresh)  # 2.
            faults.reach("upsert")
            self.index.flush()  # 3.

        now = utcnow()
        with session_scope(self.engine) as s:  # 4. commit
            for r in ready:
                write_file_row(
                    self.rows,
                    s,
                    r.item.entry,
                    r.item.record,
                    r.item.sha256,
                    r.item.access,
                    OK,
                    len(r.points),
                    None,
                    None,
                    indexed_at=now,
                )
            for g in gone:
                write_file_row(
                    self.rows,
                    s,
                    g.entry,
                    g.record,
                    g.sha256,
                    g.access,
                    g.status,
                    0,
                    g.code,
                    g.message,
                    rel_path=g.rel_path,
                )
            for f in refresh:
                write_file_row(
                    self.rows,
                    s,
                    f.entry,
                    f.record,
                    f.record.sha256,
                    f.access,
                    f.record.status,
                    f.record.chunk_count,
                    None,
                    None,
                    keep_reason=True,
                )
            for chunk in _batched(unchanged, 500):
                mark_seen(s, chunk, self.run_id)
        faults.reach("commit")
        self._count(ready, gone, refresh)

    def _index_writes(
        self, ready: list[_Ready], gone: list[NotIndexable], refresh: list[Refresh]
    ) -> None:
        points = [p for r in ready for p in r.points]
        for start in range(0, len(points), UPSERT_BATCH):
            self.index.upsert(points[start : start + UPSERT_BATCH])
        stale: list[str] = []
        for r in ready:
            doc_id = doc_id_of(self.source, r.item)
            stale += self._stale_ids(doc_id, r.item.record, {p.id for p in r.points})
        for g in gone:
            assert g.record is not None
            stale += self._stale_ids(g.record.doc_id, g.record, set())
        for start in range(0, len(stale), UPSERT_BATCH):
            self.index.delete(stale[start : start + UPSERT_BATCH])
        for f in refresh:
            self.index.set_payload(
                ids_for(f.record.doc_id, 0, f.record.chunk_count),
                {
                    "allowed_groups": list(f.access.groups),
                    "classification": f.access.classification,
                    "mtime": payload_mtime(f.entry.mtime_ns),
                },
            )

    def _stale_ids(self, doc_id: str, record: FileRecord | None, keep: set[str]) -> list[str]:
        if record is None:
            return []
        if record.status == OK:
            old = set(ids_for(doc_id, 0, record.chunk_count))
        elif _may_have_points(record):
            old = self.index.doc_point_ids(doc_id)
        else:
            return []
        return sorted(old - keep)

    def _count(self, ready: list[_Ready], gone: list[NotIndexable], refresh: list[Refresh]) -> None:
        sm = self.summary
        for r in ready:
            sm.chunks += len(r.points)
            if r.item.rename:
                sm.renamed += 1
            elif r.item.record is None or r.item.record.status == DELETING:
                sm.added += 1
            else:
                sm.updated += 1
        for g in gone:
            sm.add_issue(g.status, FileIssue(g.rel_path, g.code, g.message))
        for f in refresh:
            if f.access_changed and f.record.status == OK and f.record.chunk_count:
                sm.permissions_updated += 1
            else:
                sm.unchanged += 1


def _may_have_points(record: FileRecord) -> bool:
    if record.status == OK:
        return record.chunk_count > 0
    return record.status in (INDEXING, DELETING)


def _batched(items: list[int], size: int) -> list[list[int]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
