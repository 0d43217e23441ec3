"""Repair and deletion steps of a sync (see docs/ingest.md, "What a sync does").

- :meth:`Cleanup.rebuild_if_index_lost`: the index is empty while the state lists indexed
  files (a wiped index dir): those files go back to ``indexing`` and are redone.
- :meth:`Cleanup.remove_orphans`: after an interrupted run, points of the source that no row
  accounts for (unknown ``doc_id``, or a chunk index beyond the row's chunk count) are deleted.
- :meth:`Cleanup.delete_missing`: documents whose files the walk did not see are deleted
  (row ``deleting`` first, then the points, a flush, then the row), except below directories
  that could not be listed. Those files are kept, but their access is recomputed: groups come
  from the rules and need no file read, so a tightened rule takes effect there too
  (:meth:`Cleanup.reapply_access`).
"""

from __future__ import annotations

import stat

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from core.db import session_scope
from ingest import faults
from ingest.index.base import VectorIndex
from ingest.model import ids_for
from ingest.sources.base import Source, SourceEntry
from ingest.sync.permissions import Access, PermissionResolver
from ingest.sync.state import (
    DELETING,
    INDEXING,
    OK,
    FileRecord,
    FileRow,
    encode_groups,
    files_by_doc_id,
    mark_seen,
    utcnow,
)
from ingest.sync.summary import SyncSummary


class Cleanup:
    def __init__(
        self,
        engine: Engine,
        index: VectorIndex,
        source: str,
        source_id: int,
        summary: SyncSummary,
        files: Source | None = None,
    ) -> None:
        self.files = files
        self.engine = engine
        self.index = index
        self.source = source
        self.source_id = source_id
        self.summary = summary

    # -- repair --------------------------------------------------------------------------------
    def rebuild_if_index_lost(self) -> None:
        """The index lost its points (a wiped or replaced index dir) while the state still
        lists indexed files: put them back to ``indexing`` so this run re-creates them."""
        with session_scope(self.engine) as s:
            ok_rows = s.scalar(
                select(func.count())
                .select_from(FileRow)
                .where(
                    FileRow.source_id == self.source_id,
                    FileRow.status == OK,
                    FileRow.chunk_count > 0,
                )
            )
        if not ok_rows or self.index.count() > 0:
            return
        with session_scope(self.engine) as s:
            s.execute(
                update(FileRow)
                .where(
                    FileRow.source_id == self.source_id,
                    FileRow.status == OK,
                    FileRow.chunk_count > 0,
                )
                .values(status=INDEXING)
            )
        self.summary.repaired += int(ok_rows)

    def remove_orphans(self) -> None:
        """After an interrupted run: drop this source's points that no row accounts for."""
        orphans: list[str] = []
        batch: list[tuple[str, str]] = []
        for pair in self.index.iter_doc_ids(self.source):
            batch.append(pair)
            if len(batch) >= 512:
                orphans += self._orphans(batch)
                batch = []
        orphans += self._orphans(batch)
        for start in range(0, len(orphans), 512):
            self.index.delete(orphans[start : start + 512])
        if orphans:
            self.index.flush()
        self.summary.orphans_removed = len(orphans)

    def _orphans(self, batch: list[tuple[str, str]]) -> list[str]:
        if not batch:
            return []
        with session_scope(self.engine) as s:
            rows = files_by_doc_id(s, sorted({doc for _, doc in batch}))
        expected = {
            doc: set(ids_for(doc, 0, row.chunk_count))
            for doc, row in rows.items()
            if row.status == OK
        }
        out = []
        for pid, doc in batch:
            row = rows.get(doc)
            if row is None or row.status not in (OK, INDEXING, DELETING):
                out.append(pid)  # no row accounts for it (failed/skipped rows have no points)
            elif row.status == OK and pid not in expected[doc]:
                out.append(pid)  # a chunk index beyond the document's current chunk count
        return out

    # -- deletions -----------------------------------------------------------------------------
    def delete_missing(
        self,
        run_id: int,
        unreadable: list[str],
        renamed_from: set[str],
        resolver: PermissionResolver | None = None,
    ) -> None:
        """Drop documents whose files the walk did not see (keeping unreadable subtrees, whose
        access is recomputed with ``resolver``)."""
        keep_prefixes = tuple(f"{d}/" for d in unreadable if d)
        keep_all = "" in unreadable
        while True:
            with session_scope(self.engine) as s:
                rows = [
                    FileRecord.of(r)
                    for r in s.scalars(
                        select(FileRow)
                        .where(FileRow.source_id == self.source_id, FileRow.seen_run != run_id)
                        .order_by(FileRow.id)
                        .limit(500)
                    )
                ]
            if not rows:
                return
            kept = [r for r in rows if keep_all or r.rel_path.startswith(keep_prefixes)]
            gone = [r for r in rows if r not in kept]
            if resolver is not None and kept:
                self.reapply_access(kept, resolver)
            with session_scope(self.engine) as s:
                mark_seen(s, [r.id for r in kept], run_id)
                if gone:
                    s.execute(
                        update(FileRow)
                        .where(FileRow.id.in_([r.id for r in gone]))
                        .values(status=DELETING, updated_at=utcnow())
                    )
            if not gone:
                continue
            ids: list[str] = []
            for r in gone:
                if r.status == OK:
                    ids += ids_for(r.doc_id, 0, r.chunk_count)
                elif r.status in (INDEXING, DELETING):
                    ids += sorted(self.index.doc_point_ids(r.doc_id))
            for start in range(0, len(ids), 512):
                self.index.delete(ids[start : start + 512])
            faults.reach("delete")
            self.index.flush()
            with session_scope(self.engine) as s:
                s.execute(delete(FileRow).where(FileRow.id.in_([r.id for r in gone])))
            self.summary.deleted += sum(1 for r in gone if r.doc_id not in renamed_from)

    # -- access below unlistable directories ---------------------------------------------------
    def _access(self, record: FileRecord, resolver: PermissionResolver) -> Access:
        """The file's access from the rules: no read needed (the directory cannot be listed).
        Where the source's own permissions take part (POSIX permissions on a local tree), the
        last known mode decides and the owner group is unknown, so a group-only file keeps at
        most the groups it had (fail closed: a rule can narrow, never widen)."""
        entry = SourceEntry(
            rel_path=record.rel_path,
            size=record.size,
            mtime_ns=record.mtime_ns,
            file_key=record.inode,
            mode=record.mode,
        )
        access = resolver.access(entry)  # no facts: the rules alone decide
        if not getattr(self.files, "posix", False) or access.failure_code:
            return access
        if record.mode & stat.S_IROTH:
            groups = access.groups
        elif record.mode & stat.S_IRGRP:
            groups = tuple(g for g in access.groups if g in record.allowed_groups)
        else:
            groups = ()
        denied = tuple(sorted(set(access.denied) | set(record.denied_groups)))
        return Access(groups, access.classification, denied=denied)

    def reapply_access(self, records: list[FileRecord], resolver: PermissionResolver) -> None:
        """Rewrite the readers and classification of kept files whose access changed: the index
        first (flushed), then the rows, so a crash in between is redone next run. A file whose
        access cannot be decided any more (a rule excludes it, an unknown deny group) keeps no
        reader."""
        changed = []
        for r in records:
            a = self._access(r, resolver)
            if a.excluded or a.failure_code:
                a = Access((), a.classification)
            if not a.same_readers(r.allowed_groups, r.denied_groups, r.classification):
                changed.append((r, a))
        if not changed:
            return
        for r, a in changed:
            if r.status == OK:
                ids = ids_for(r.doc_id, 0, r.chunk_count)
            elif r.status in (INDEXING, DELETING):  # a killed run's points, if any
                ids = sorted(self.index.doc_point_ids(r.doc_id))
            else:
                continue
            if ids:
                payload = {
                    "allowed_groups": list(a.groups),
                    "denied_groups": list(a.denied),
                    "classification": a.classification,
                }
                self.index.set_payload(ids, payload)
        self.index.flush()
        with session_scope(self.engine) as s:
            for r, a in changed:
                s.execute(
                    update(FileRow)
                    .where(FileRow.id == r.id)
                    .values(
                        allowed_groups=encode_groups(a.groups),
                        denied_groups=encode_groups(a.denied),
                        classification=a.classification,
                        updated_at=utcnow(),
                    )
                )
        self.summary.permissions_updated += sum(
            1 for r, _ in changed if r.status == OK and r.chunk_count
        )
