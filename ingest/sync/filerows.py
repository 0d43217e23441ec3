"""Upsert of one file's row in the sync-state database (the writer's intent and commit steps)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ingest.model import make_doc_id
from ingest.sources.local import FileEntry
from ingest.sync.permissions import Access
from ingest.sync.state import FileRecord, FileRow, clamp_inode, encode_groups, utcnow


@dataclass(frozen=True)
class RowContext:
    """Which source and sync run the rows belong to."""

    source: str
    source_id: int
    run_id: int


@dataclass(frozen=True)
class FileRowUpdate:
    """What one file's row becomes.

    ``entry`` (the walked file) refreshes the stat fields; ``record`` (the row as it was) is
    ``None`` for a file seen for the first time. ``code``/``message`` are the reason a file is
    ``failed``/``skipped``; ``keep_reason`` leaves the stored reason as it is."""

    entry: FileEntry | None
    record: FileRecord | None
    sha256: str | None
    access: Access
    status: str
    chunk_count: int
    code: str | None = None
    message: str | None = None
    rel_path: str | None = None
    indexed_at: datetime | None = None
    keep_reason: bool = False


def write_file_row(ctx: RowContext, s: Session, row: FileRowUpdate) -> None:
    entry, record = row.entry, row.record
    rel = row.rel_path if row.rel_path is not None else (entry.rel_path if entry else "")
    doc_id = record.doc_id if record else make_doc_id(ctx.source, rel)
    values: dict[str, Any] = {
        "rel_path": rel,
        "status": row.status,
        "sha256": row.sha256,
        "chunk_count": row.chunk_count,
        "allowed_groups": encode_groups(row.access.groups),
        "classification": row.access.classification,
        "seen_run": ctx.run_id,
        "updated_at": utcnow(),
    }
    if not row.keep_reason:
        values["reason_code"] = row.code
        values["message"] = row.message
    if entry is not None:
        values.update(
            size=entry.size,
            mtime_ns=entry.mtime_ns,
            inode=clamp_inode(entry.inode),
            mode=entry.mode,
        )
    if row.indexed_at is not None:
        values["indexed_at"] = row.indexed_at
    if record is None:
        existing = s.scalar(select(FileRow.id).where(FileRow.doc_id == doc_id))
        if existing is None:
            values.setdefault("size", 0)
            values.setdefault("mtime_ns", 0)
            values.setdefault("inode", 0)
            values.setdefault("mode", 0)
            s.add(FileRow(source_id=ctx.source_id, doc_id=doc_id, **values))
            s.flush()
            return
    s.execute(update(FileRow).where(FileRow.doc_id == doc_id).values(**values))
