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
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from core.db import session_scope
from ingest import faults
from ingest.index.base import VectorIndex
from ingest.model import ChunkPoint, ids_for, payload_mtime
from ingest.parsing.workers import ChunkData
from ingest.sources.base import SourceEntry
from ingest.sync.filerows import FileRowUpdate, RowContext, refresh_rows, write_file_row
from ingest.sync.permissions import Access
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
from policies import aclstore

UPSERT_BATCH = 256
SET_PAYLOAD_BATCH = 2048
RefreshRow = tuple[FileRecord, SourceEntry, Access, str]


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


@dataclass
class _Group:
    """What one commit group writes: files to (re)index, files that end without points
    (``gone``: skipped, failed, no longer indexable), content-unchanged files whose stat fields
    or access changed (``refresh``), and ids of files left exactly as they were."""

    ready: list[_Ready]
    gone: list[NotIndexable]
    refresh: list[Refresh]
    unchanged: list[int]

    def gone_from_index(self) -> list[NotIndexable]:
        """Gone files that may still have points in the index (they must be deleted)."""
        return [g for g in self.gone if g.record is not None and _may_have_points(g.record)]

    def payload_refresh(self) -> list[Refresh]:
        """Refreshed files whose points' payload must be rewritten."""
        return [
            f
            for f in self.refresh
            if f.record.status == OK and f.record.chunk_count and f.payload_changed
        ]

    def touches_index(self) -> bool:
        return bool(self.ready or self.gone_from_index() or self.payload_refresh())

    def intent_rows(self) -> tuple[list[FileRowUpdate], list[RefreshRow]]:
        """Step 1: every document the index writes touch is marked ``indexing`` (new hash,
        stat fields and access already in place), so a crash leaves it to be redone."""
        rows = [_ready_row(r, intent=True) for r in self.ready]
        rows += [_gone_row(g, intent=True) for g in self.gone_from_index()]
        refreshed = [(f.record, f.entry, f.access, INDEXING) for f in self.payload_refresh()]
        return rows, refreshed

    def final_rows(self, indexed_at: datetime) -> tuple[list[FileRowUpdate], list[RefreshRow]]:
        """Step 4: the states the files end in (a refreshed file keeps its state and reason)."""
        rows = [_ready_row(r, intent=False, indexed_at=indexed_at) for r in self.ready]
        rows += [_gone_row(g, intent=False) for g in self.gone]
        refreshed = [(f.record, f.entry, f.access, f.record.status) for f in self.refresh]
        return rows, refreshed


def _ready_row(r: _Ready, *, intent: bool, indexed_at: datetime | None = None) -> FileRowUpdate:
    """Indexed with ``len(r.points)`` chunks: ``ok`` once the points are durable."""
    return FileRowUpdate(
        entry=r.item.entry,
        record=r.item.record,
        sha256=r.item.sha256,
        access=r.item.access,
        status=INDEXING if intent else OK,
        chunk_count=len(r.points),
        indexed_at=indexed_at,
    )


def _gone_row(g: NotIndexable, *, intent: bool) -> FileRowUpdate:
    """No points: ``skipped``/``failed`` with the file's reason once its old points are gone."""
    return FileRowUpdate(
        entry=g.entry,
        record=g.record,
        sha256=g.sha256,
        access=g.access,
        status=INDEXING if intent else g.status,
        chunk_count=0,
        code=None if intent else g.code,
        message=None if intent else g.message,
        rel_path=g.rel_path,
    )


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
        group = self._take_group()
        if group.touches_index():
            rows, refreshed = group.intent_rows()
            with session_scope(self.engine) as s:  # 1. intent
                self._write_rows(s, rows, refreshed, keep_reason=False)
            faults.reach("intent")
            self._index_writes(group)  # 2. index
            faults.reach("upsert")
            self.index.flush()  # 3. flush
        rows, refreshed = group.final_rows(indexed_at=utcnow())
        with session_scope(self.engine) as s:  # 4. commit
            self._write_rows(s, rows, refreshed, keep_reason=True)
            mark_seen(s, group.unchanged, self.run_id)
            self._store_facts(s, group)
        faults.reach("commit")
        self._count(group)

    def _take_group(self) -> _Group:
        """The next group: ready files up to ``group_chunks`` chunks (at least one file), and
        everything else that is pending."""
        cut, size = 0, 0
        while cut < len(self._ready) and (cut == 0 or size < self.group_chunks):
            size += len(self._ready[cut].points)
            cut += 1
        group = _Group(
            ready=self._ready[:cut],
            gone=self._not_indexable,
            refresh=self._refresh,
            unchanged=self._unchanged,
        )
        self._ready = self._ready[cut:]
        self._ready_chunks -= size
        self._not_indexable, self._refresh, self._unchanged = [], [], []
        self._group_started = time.monotonic()
        return group

    def _write_rows(
        self,
        s: Session,
        rows: list[FileRowUpdate],
        refreshed: list[RefreshRow],
        *,
        keep_reason: bool,
    ) -> None:
        """File rows: one by one, and refreshed (content-unchanged) rows in one executemany."""
        for row in rows:
            write_file_row(self.rows, s, row)
        refresh_rows(self.rows, s, refreshed, keep_reason=keep_reason)

    def _index_writes(self, group: _Group) -> None:
        points = [p for r in group.ready for p in r.points]
        for start in range(0, len(points), UPSERT_BATCH):
            self.index.upsert(points[start : start + UPSERT_BATCH])
        stale: list[str] = []
        for r in group.ready:
            doc_id = doc_id_of(self.source, r.item)
            stale += self._stale_ids(doc_id, r.item.record, {p.id for p in r.points})
        for g in group.gone_from_index():
            assert g.record is not None
            stale += self._stale_ids(g.record.doc_id, g.record, set())
        for start in range(0, len(stale), UPSERT_BATCH):
            self.index.delete(stale[start : start + UPSERT_BATCH])
        # Permission-only changes: files that end with the same readers (thousands inheriting
        # one folder's ACL) share one set_payload call per group of ids.
        by_access: dict[tuple[tuple[str, ...], tuple[str, ...], str | None], list[str]] = {}
        for f in group.payload_refresh():
            ids = ids_for(f.record.doc_id, 0, f.record.chunk_count)
            if f.access_changed:
                key = (f.access.groups, f.access.denied, f.access.classification)
                by_access.setdefault(key, []).extend(ids)
            if f.record.mtime_ns != f.entry.mtime_ns:
                self.index.set_payload(ids, {"mtime": payload_mtime(f.entry.mtime_ns)})
        for (allowed, denied, cls), ids in by_access.items():
            for start in range(0, len(ids), SET_PAYLOAD_BATCH):
                self.index.set_payload(
                    ids[start : start + SET_PAYLOAD_BATCH],
                    {
                        "allowed_groups": list(allowed),
                        "denied_groups": list(denied),
                        "classification": cls,
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

    def _store_facts(self, s: Session, group: _Group) -> None:
        """Keep the permissions each reader decision came from (``policies check-access``)."""
        items: list[tuple[str, FileRecord | None, Access]] = [
            (r.item.entry.rel_path, r.item.record, r.item.access) for r in group.ready
        ]
        items += [(g.rel_path, g.record, g.access) for g in group.gone if g.entry is not None]
        items += [(f.entry.rel_path, f.record, f.access) for f in group.refresh]
        changed = []
        for rel_path, record, access in items:
            if access.facts is None:
                continue
            moved = record is not None and record.rel_path != rel_path
            if record is None or moved or record.acl_sha256 != access.facts_sha:
                kind, data = access.facts
                changed.append((rel_path, kind, data, str(access.facts_sha)))
        aclstore.put_many(s, self.source, changed)

    def _count(self, group: _Group) -> None:
        sm = self.summary
        for r in group.ready:
            sm.chunks += len(r.points)
            if r.item.rename:
                sm.renamed += 1
            elif r.item.record is None or r.item.record.status == DELETING:
                sm.added += 1
            else:
                sm.updated += 1
        for g in group.gone:
            sm.add_issue(g.status, FileIssue(g.rel_path, g.code, g.message))
        for f in group.refresh:
            if f.access_changed and f.record.status == OK and f.record.chunk_count:
                sm.permissions_updated += 1
            else:
                sm.unchanged += 1


def _may_have_points(record: FileRecord) -> bool:
    if record.status == OK:
        return record.chunk_count > 0
    return record.status in (INDEXING, DELETING)
