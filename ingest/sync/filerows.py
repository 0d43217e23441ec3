"""Upserts of files' rows in the sync-state database (the writer's intent and commit steps).

:func:`write_file_row` writes one row; :func:`refresh_rows` rewrites the rows of many known
files in one executemany (a permission change on a folder touches every file below it: one
ORM update per file cost 3.6 ms, 87 % of a permission-only re-sync of 1,200 files).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ingest.model import make_doc_id
from ingest.sources.base import SourceEntry
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

    entry: SourceEntry | None
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


def _access_values(access: Access) -> dict[str, Any]:
    return {
        "allowed_groups": encode_groups(access.groups),
        "denied_groups": encode_groups(access.denied),
        "acl_sha256": access.facts_sha,
        "classification": access.classification,
    }


def _stat_values(entry: SourceEntry) -> dict[str, Any]:
    return {
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "inode": clamp_inode(entry.file_key),
        "mode": entry.mode,
    }


def write_file_row(ctx: RowContext, s: Session, row: FileRowUpdate) -> None:
    entry, record = row.entry, row.record
    rel = row.rel_path if row.rel_path is not None else (entry.rel_path if entry else "")
    doc_id = record.doc_id if record else make_doc_id(ctx.source, rel)
    values: dict[str, Any] = {
        "rel_path": rel,
        "status": row.status,
        "sha256": row.sha256,
        "chunk_count": row.chunk_count,
        **_access_values(row.access),
        "seen_run": ctx.run_id,
        "updated_at": utcnow(),
    }
    if not row.keep_reason:
        values["reason_code"] = row.code
        values["message"] = row.message
    if entry is not None:
        values.update(_stat_values(entry))
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


def refresh_rows(
    ctx: RowContext,
    s: Session,
    rows: list[tuple[FileRecord, SourceEntry, Access, str]],
    *,
    keep_reason: bool,
) -> None:
    """Rewrite known files' rows (content unchanged): ``(record, entry, access, status)``."""
    if not rows:
        return
    now = utcnow()
    params: list[dict[str, Any]] = []
    for record, entry, access, status in rows:
        values: dict[str, Any] = {
            "id": record.id,
            "rel_path": entry.rel_path,
            "status": status,
            "sha256": record.sha256,
            "chunk_count": record.chunk_count,
            **_access_values(access),
            "seen_run": ctx.run_id,
            "updated_at": now,
            **_stat_values(entry),
        }
        if not keep_reason:
            values["reason_code"] = None
            values["message"] = None
        params.append(values)
    s.execute(update(FileRow), params)
